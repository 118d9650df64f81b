"""Word-level tokens (``--tokens word``): the tokeniser, its inverse, and a Vocab of whole words.

Tokenisation (:func:`tokenize_words`), left to right:

- ``\\n`` is a token of its own, so generated text keeps its line structure; other whitespace
  (spaces, tabs, ideographic spaces) only separates tokens and is dropped.
- every CJK ideograph is a token of its own: Chinese and Japanese write no spaces between words,
  and one ideograph is the unit a dictionary-free tokeniser can find (BERT's basic tokenizer, Devlin
  et al. 2019, does the same; kana and Hangul runs stay words).
- a number with decimal or thousands separators is one token: ``3.14``, ``1,000``.
- a word is a run of letters, digits and ``_``, and may go on through an inner apostrophe or hyphen:
  ``don't``, ``it’s``, ``well-known``, ``__init__``.
- every other character (punctuation, symbols, emoji) is a token of its own: ``"(x)."`` is
  ``(``, ``x``, ``)``, ``.``.

Detokenisation (:class:`Detokenizer`) joins tokens with one space, except: none at the start of a
line or before ``\\n``; none before closing punctuation (``. , ; : ! ? ) ] } %`` and the CJK ones);
none after opening brackets; none on the inner side of paired quotes (``"``, ``'``, `````: the first
of a pair opens, the next closes); none next to a CJK ideograph or CJK punctuation. So the text
comes back with single spaces (``decode(encode(text))`` equals ``text`` up to whitespace), and
tokenising it again gives the same tokens: no join ever glues two tokens into one.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from rnnlab.data.vocab import ON_UNKNOWN, UNK, Vocab
from rnnlab.errors import RnnlabError

# CJK Unified Ideographs and their extensions and compatibility blocks (BERT's _is_chinese_char).
_CJK = (
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\U00020000-\U0002a6df\U0002a700-\U0002ebef\U0002f800-\U0002fa1f\U00030000-\U0003134f"
)
_LETTER = rf"[^\W{_CJK}]"  # a word character that is not an ideograph
_TOKEN = re.compile(rf"\n|[{_CJK}]|\d+(?:[.,]\d+)+|{_LETTER}+(?:['’\-]{_LETTER}+)*|[^\w\s]")
_IS_CJK = re.compile(rf"[{_CJK}\u3000-\u303f\uff00-\uffef]")  # ideographs, CJK and full-width punctuation

_CLOSING = set(".,;:!?)]}%…。，、；：！？）」』】》〉")
_OPENING = set("([{¿¡（「『【《〈“‘")
_QUOTES = set("\"'`")  # the same mark opens and closes: which one it is alternates


def tokenize_words(text: str) -> list[str]:
    """Split ``text`` into word-level tokens (see the module docstring for the rules)."""
    return _TOKEN.findall(text)


class Detokenizer:
    """Joins word tokens into text one at a time (generation streams them): ``push`` returns the
    token with the space that goes before it, if any.

    Args:
        before: tokens already written (a prefix), so the first pushed token joins them correctly.
        after_space: the text written so far ends in whitespace: no space before the next token.
    """

    def __init__(self, before: Sequence[str] = (), after_space: bool = False):
        self.prev: str | None = None
        self.open_quotes: set[str] = set()  # quote marks opened and not yet closed on this line
        self.after_space = False
        for token in before:
            self.push(token)
        self.after_space = after_space

    def push(self, token: str) -> str:
        prev, opened = self.prev, self.open_quotes
        space = not (
            prev is None
            or self.after_space
            or prev == "\n"
            or token == "\n"
            or token in _CLOSING
            or token in opened  # a closing quote
            or prev in _OPENING
            or prev in opened  # just after an opening quote
            or bool(_IS_CJK.match(prev))
            or bool(_IS_CJK.match(token))
        )
        if token in _QUOTES:
            opened ^= {token}
        elif token == "\n":
            opened.clear()  # an unpaired quote (or an apostrophe) spoils one line at most
        self.prev, self.after_space = token, False
        return " " + token if space else token


def detokenize(tokens: Iterable[str]) -> str:
    """Join word tokens back into text (the inverse of :func:`tokenize_words` up to whitespace)."""
    join = Detokenizer()
    return "".join(join.push(t) for t in tokens)


class WordVocab(Vocab):
    """A vocabulary of word-level tokens with :class:`Vocab`'s interface: ``encode`` tokenises text
    with :func:`tokenize_words`, ``decode`` joins with :func:`detokenize`.

    Ids: specials first, then tokens by descending training count (ties in code-point order), so the
    same training text always gives the same ids. Tokens seen fewer than ``min_freq`` times become
    ``<unk>`` (the tokeniser never produces ``<unk>``: ``<`` is a token of its own).
    """

    kind = "word"
    unit = "word"

    def __init__(self, tokens, specials=(UNK,), counts=None):
        super().__init__(tokens, specials, counts)
        self._ids = {t: i for t, i in self.stoi.items() if t not in self.specials}

    @classmethod
    def build(cls, text: str, min_freq: int = 1, specials: Sequence[str] = (UNK,)) -> WordVocab:
        """The vocabulary of ``text``'s words seen at least ``min_freq`` times."""
        return cls.from_tokens(tokenize_words(text), min_freq, specials)

    @classmethod
    def from_tokens(
        cls, tokens: Iterable[str], min_freq: int = 1, specials: Sequence[str] = (UNK,)
    ) -> WordVocab:
        """The vocabulary of a token stream (as :meth:`build`)."""
        if min_freq < 1:
            raise RnnlabError(f"--min-freq must be at least 1, got {min_freq}")
        counts = Counter(tokens)
        kept = [t for t, n in counts.items() if n >= min_freq and t not in specials]
        kept.sort(key=lambda t: (-counts[t], t))
        unknown = sum(counts.values()) - sum(counts[t] for t in kept)
        special_counts = [unknown if s == UNK else 0 for s in specials]
        return cls([*specials, *kept], specials, special_counts + [counts[t] for t in kept])

    def encode(self, text: str, on_unknown: str = "unk") -> np.ndarray:
        """Tokenise ``text`` and map the tokens to ids (``on_unknown`` as :meth:`Vocab.encode`)."""
        return self.encode_tokens(tokenize_words(text), on_unknown)

    def encode_tokens(self, tokens: Sequence[str], on_unknown: str = "unk") -> np.ndarray:
        """Map tokens (already split) to ids of the vocabulary's compact dtype."""
        if on_unknown not in ON_UNKNOWN:
            raise ValueError(f"on_unknown must be one of {ON_UNKNOWN}, got {on_unknown!r}")
        get = self._ids.get
        ids = np.fromiter((get(t, -1) for t in tokens), dtype=np.int64, count=len(tokens))
        unknown = ids < 0
        if unknown.any():
            if on_unknown == "skip":
                ids = ids[~unknown]
            elif on_unknown == "unk" and self.unk_id is not None:
                ids[unknown] = self.unk_id
            else:
                words = " ".join(self.unknown_chars(tokens)[:20])
                hint = "no <unk> to map them to" if on_unknown == "unk" else "use --unknown unk|skip"
                raise RnnlabError(f"words not in the vocabulary: {words!r}; {hint}")
        return ids.astype(self.dtype)

    def unknown_chars(self, text: str | Sequence[str]) -> list[str]:
        """The distinct tokens of ``text`` (a string, or tokens) that have no id, in order of appearance."""
        tokens = tokenize_words(text) if isinstance(text, str) else text
        return list(dict.fromkeys(t for t in tokens if t not in self._ids))

    def decode(self, ids: Iterable[int]) -> str:
        """Map ids back to text joined by :func:`detokenize`; specials appear as their names."""
        itos = self.itos
        return detokenize(itos[int(i)] for i in np.asarray(ids).reshape(-1))

    def text_stream(self, prefix: str, rows: int) -> Callable[[Sequence[int]], list[str]]:
        """Per generation step, each row's new text: the token and the space before it, if any."""
        joins = [Detokenizer(tokenize_words(prefix), after_space=prefix[-1:].isspace()) for _ in range(rows)]
        itos = self.itos
        return lambda ids: [join.push(itos[i]) for join, i in zip(joins, ids)]
