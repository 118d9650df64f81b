"""Text features a unit may track, one number per character: quotes, brackets, line position, case, ...

Each feature maps a text of ``T`` characters to a ``(T,)`` float64 array whose entry ``t`` describes the
text *after reading character t*, which is what the recurrent state at step ``t`` has seen: an opening
quote is already inside the quotes and a closing one is outside again; an opening bracket already
counts in the depth.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from rnnlab.errors import RnnlabError

Feature = Callable[[str], np.ndarray]
"""``feature(text) -> (len(text),) float64``."""

# Straight double quotes toggle; the typographic and CJK pairs open and close (and may nest).
QUOTE_OPEN, QUOTE_CLOSE = "\u201c\u300c\u300e\u00ab", "\u201d\u300d\u300f\u00bb"  # “ 「 『 «  and  ” 」 』 »
BRACKET_OPEN, BRACKET_CLOSE = "([{\uff08\u3010", ")]}\uff09\u3011"  # ASCII, fullwidth （ and 【
CJK_RANGES = (  # Han (with extensions and compatibility), kana, Hangul, CJK punctuation, fullwidth forms
    (0x3000, 0x303F),
    (0x3040, 0x30FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xAC00, 0xD7AF),
    (0xF900, 0xFAFF),
    (0xFF00, 0xFFEF),
    (0x20000, 0x3134F),
)
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def _code_points(text: str) -> np.ndarray:
    """``(T,)`` uint32 code points of ``text``."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _each(text: str, test: Callable[[str], bool]) -> np.ndarray:
    return np.fromiter((test(ch) for ch in text), dtype=np.float64, count=len(text))


def inside_quotes(text: str) -> np.ndarray:
    """1 from an opening quote up to (not including) its closing quote, else 0.

    ``"`` toggles; ``“ ”``, ``「 」``, ``『 』`` and ``« »`` open and close, nested pairs counted. A
    closing mark with nothing open is ignored.
    """
    out = np.zeros(len(text))
    straight, depth = False, 0
    for t, ch in enumerate(text):
        if ch == '"':
            straight = not straight
        elif ch in QUOTE_OPEN:
            depth += 1
        elif ch in QUOTE_CLOSE:
            depth = max(depth - 1, 0)
        out[t] = straight or depth > 0
    return out


def bracket_depth(text: str) -> np.ndarray:
    """How many ``( [ {`` (and fullwidth ``（ 【``) are open after each character; unmatched closers
    are ignored, so the depth never goes below 0."""
    out = np.zeros(len(text))
    depth = 0
    for t, ch in enumerate(text):
        if ch in BRACKET_OPEN:
            depth += 1
        elif ch in BRACKET_CLOSE:
            depth = max(depth - 1, 0)
        out[t] = depth
    return out


def line_position(text: str) -> np.ndarray:
    """The character's 0-based column in its line (a newline ends its line: it gets the line's length)."""
    index = np.arange(len(text))
    newline = _code_points(text) == ord("\n")
    # the index of the newline before each character, -1 before the first one
    last = np.maximum.accumulate(np.where(newline, index, -1))  # (T,), includes a newline at t itself
    before = np.concatenate([[-1], last[:-1]])  # (T,): strictly before t
    return (index - before - 1).astype(np.float64)


def word_start(text: str) -> np.ndarray:
    """1 at the first character of a word (a run of letters, digits or ``_``), else 0."""
    word = _each(text, lambda ch: ch.isalnum() or ch == "_")
    previous = np.concatenate([[0.0], word[:-1]])
    return word * (1 - previous)


def digit(text: str) -> np.ndarray:
    """1 at a decimal digit (any script's), else 0."""
    return _each(text, str.isdecimal)


def upper(text: str) -> np.ndarray:
    """1 at an upper-case letter, else 0."""
    return _each(text, str.isupper)


def whitespace(text: str) -> np.ndarray:
    """1 at a space, tab, newline or any other Unicode whitespace, else 0."""
    return _each(text, str.isspace)


def cjk(text: str) -> np.ndarray:
    """1 at a CJK character (Han, kana, Hangul, CJK punctuation, fullwidth forms), else 0."""
    points = _code_points(text)
    out = np.zeros(len(text))
    for low, high in CJK_RANGES:
        out[(points >= low) & (points <= high)] = 1.0
    return out


FEATURES: dict[str, Feature] = {
    "inside_quotes": inside_quotes,
    "bracket_depth": bracket_depth,
    "line_position": line_position,
    "word_start": word_start,
    "digit": digit,
    "upper": upper,
    "whitespace": whitespace,
    "cjk": cjk,
}
"""The built-in features, in the order they are reported."""


def regex_feature(pattern: str) -> Feature:
    """A feature that is 1 on every character of a match of ``pattern``, else 0 (``re`` syntax; empty
    matches mark nothing).

    Raises:
        RnnlabError: the pattern does not compile.
    """
    try:
        compiled = re.compile(pattern)
    except re.error as e:
        raise RnnlabError(f"--feature regex {pattern!r} does not compile: {e}") from e

    def feature(text: str) -> np.ndarray:
        out = np.zeros(len(text))
        for match in compiled.finditer(text):
            out[match.start() : match.end()] = 1.0
        return out

    return feature


def parse_features(specs: Sequence[str]) -> dict[str, Feature]:
    """The built-in features followed by the user's ``NAME=REGEX`` ones (``--feature``, repeatable).

    Raises:
        RnnlabError: a spec without ``=``, a bad name, a name used twice (or a built-in's), a bad regex.
    """
    features = dict(FEATURES)
    for spec in specs:
        name, equals, pattern = spec.partition("=")
        if not equals or not pattern:
            raise RnnlabError(f"--feature {spec!r}: expected NAME=REGEX, e.g. --feature 'vowel=[aeiou]'")
        if not NAME.fullmatch(name):
            raise RnnlabError(f"--feature {spec!r}: the name must be letters, digits, '_', '.' or '-'")
        if name in features:
            raise RnnlabError(f"--feature {name}: that name is taken; built-in: {', '.join(FEATURES)}")
        features[name] = regex_feature(pattern)
    return features


def feature_matrix(text: str, features: dict[str, Feature]) -> np.ndarray:
    """``(T, K)`` float64: every feature of ``features`` over ``text``, in their order."""
    columns = [features[name](text) for name in features]
    return np.stack(columns, axis=1) if columns else np.zeros((len(text), 0))
