"""Corpus: text split into contiguous train/val/test parts and encoded with a train-only Vocab."""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import itertools
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from rnnlab.data.builtin import builtin_corpus
from rnnlab.data.text import iter_texts, read_texts
from rnnlab.data.vocab import UNK, Vocab, count_chars
from rnnlab.data.words import WordVocab, tokenize_words
from rnnlab.errors import RnnlabError

SPLITS = ("train", "val", "test")
# UTF-8 corpora above this size are read three times in pieces (length, counts, ids) instead of once
# whole: a 100 MB file then peaks at its id array plus a piece, not at its bytes + text + copies.
STREAM_BYTES = 1 << 26
# ... and above this one their ids go to a memory-mapped temporary file, not RAM (TMPDIR says where).
MMAP_BYTES = 1 << 30
_HASH_BLOCK = 1 << 24


def split_text(text: str, fractions: Sequence[float] = (0.9, 0.05, 0.05)) -> tuple[str, str, str]:
    """Cut ``text`` into contiguous train, val and test parts, in that order.

    Contiguous (not shuffled) because a character's context is the text before it: shuffled lines
    would put near-copies of validation lines into training.

    Raises:
        RnnlabError: fractions that are negative, not three, do not sum to 1, or leave train empty.
    """
    n_train, n_val = split_sizes(len(text), fractions)
    return text[:n_train], text[n_train : n_train + n_val], text[n_train + n_val :]


def split_sizes(n: int, fractions: Sequence[float] = (0.9, 0.05, 0.05)) -> tuple[int, int]:
    """How many of ``n`` characters :func:`split_text` gives to train and to val (test: the rest).

    Raises:
        RnnlabError: as :func:`split_text`.
    """
    fractions = tuple(float(f) for f in fractions)
    if len(fractions) != 3:
        raise RnnlabError(f"--split takes three fractions TRAIN,VAL,TEST, got {len(fractions)}")
    if any(not math.isfinite(f) or f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise RnnlabError(f"--split fractions must be >= 0 and sum to 1, got {','.join(map(str, fractions))}")
    n_train = round(n * fractions[0])
    if n_train == 0:
        raise RnnlabError(f"the train split is empty ({n} characters in all); give more text")
    return n_train, round(n * fractions[1])


@dataclass
class Corpus:
    """A corpus ready for training: the vocabulary and the id arrays of each split.

    Attributes:
        vocab: built from the train split only.
        train, val, test: ids in the vocabulary's compact dtype; characters outside it are ``<unk>``.
        oov_rate: per split, the fraction of characters that are ``<unk>``.
        source: where the text came from, for logs.
    """

    vocab: Vocab
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    oov_rate: dict[str, float]
    source: str = "<text>"

    @classmethod
    def from_text(
        cls,
        text: str,
        split: Sequence[float] = (0.9, 0.05, 0.05),
        min_freq: int = 1,
        vocab: Vocab | None = None,
        source: str = "<text>",
        tokens: str = "char",
    ) -> Corpus:
        """Split ``text``, build the vocabulary on the train part (unless given) and encode each part.

        ``tokens="word"``: the text is tokenised by :func:`rnnlab.data.words.tokenize_words` first and
        the token stream is split (the vocabulary is then a :class:`WordVocab`).
        """
        _check_tokens(vocab, tokens)
        if tokens == "word":
            return cls._from_words(text, split, min_freq, vocab, source)
        parts = split_text(text, split)
        if vocab is None:
            vocab = Vocab.build(parts[0], min_freq=min_freq, specials=(UNK,))
        return cls._from_arrays(vocab, [vocab.encode(p, on_unknown="unk") for p in parts], source)

    @classmethod
    def _from_words(cls, text: str, split, min_freq: int, vocab: Vocab | None, source: str) -> Corpus:
        words = tokenize_words(text)
        n_train, n_val = split_sizes(len(words), split)
        parts = words[:n_train], words[n_train : n_train + n_val], words[n_train + n_val :]
        if vocab is None:
            vocab = WordVocab.from_tokens(parts[0], min_freq, specials=(UNK,))
        return cls._from_arrays(vocab, [vocab.encode_tokens(p, on_unknown="unk") for p in parts], source)

    @classmethod
    def _from_arrays(cls, vocab: Vocab, arrays: Sequence[np.ndarray], source: str) -> Corpus:
        oov = {name: vocab.oov_rate(ids) for name, ids in zip(SPLITS, arrays)}
        return cls(vocab, *arrays, oov_rate=oov, source=source)

    @classmethod
    def from_files(
        cls,
        paths: Sequence[str | Path],
        split: Sequence[float] = (0.9, 0.05, 0.05),
        min_freq: int = 1,
        vocab: Vocab | None = None,
        encoding: str = "utf-8",
        errors: str = "strict",
        *,
        mmap: bool | None = None,
        tokens: str = "char",
    ) -> Corpus:
        """Read text files (joined in order) and build the corpus from their text.

        UTF-8 files above :data:`STREAM_BYTES` in all are streamed (see :meth:`_from_pieces`); the
        result is the same as reading them whole.

        Args:
            mmap: keep the ids in a memory-mapped temporary ``.npy`` (read-only) instead of RAM; None:
                for files above :data:`MMAP_BYTES` in all. Needs UTF-8 (``True`` streams any size).
            tokens: ``"char"``, or ``"word"`` (then the text is read whole: no streaming, no mmap).
        """
        source = ", ".join(str(p) for p in paths)
        if tokens == "word":
            text = read_texts(paths, encoding=encoding, errors=errors)
            return cls.from_text(text, split, min_freq, vocab, source=source, tokens=tokens)
        size = sum(os.path.getsize(p) for p in paths if os.path.isfile(p))
        utf8 = _is_utf8(encoding)
        if mmap and not utf8:
            raise RnnlabError(f"memory-mapped ids need a UTF-8 corpus, not {encoding}; convert it first")
        mmap = size > MMAP_BYTES if mmap is None else mmap
        if (size > STREAM_BYTES or mmap) and utf8:
            pieces = partial(iter_texts, paths, encoding, errors)
            return cls._from_pieces(pieces, split, min_freq, vocab, mmap=mmap, source=source)
        text = read_texts(paths, encoding=encoding, errors=errors)
        return cls.from_text(text, split, min_freq, vocab, source=source)

    @classmethod
    def _from_pieces(
        cls,
        pieces: Callable[[], Iterator[str]],
        split: Sequence[float],
        min_freq: int,
        vocab: Vocab | None,
        *,
        mmap: bool,
        source: str,
    ) -> Corpus:
        """:meth:`from_text` of the files' text without holding it: three passes over its pieces.

        1. decode every piece (this also checks the files), count characters, place the splits;
        2. count each character of the train part (stops at its end) and build the vocabulary;
        3. encode each piece into one id array, which the three splits are views of.

        ``pieces()`` starts a new pass over the text (as :func:`rnnlab.data.text.iter_texts`).
        """
        n = sum(len(piece) for piece in pieces())
        n_train, n_val = split_sizes(n, split)
        if vocab is None:
            counts, left = None, n_train
            for piece in pieces():
                counts = count_chars(piece[:left], counts)
                left -= min(left, len(piece))
                if not left:
                    break
            vocab = Vocab.from_counts(counts, min_freq, specials=(UNK,))
        ids = _id_array(n, vocab.dtype, mmap)
        start = 0
        for piece in pieces():
            ids[start : start + len(piece)] = vocab.encode(piece, on_unknown="unk")
            start += len(piece)
        if mmap:
            ids.flush()
            ids.flags.writeable = False
        bounds = (0, n_train, n_train + n_val, n)
        return cls._from_arrays(vocab, [ids[a:b] for a, b in itertools.pairwise(bounds)], source)

    @classmethod
    def from_config(cls, cfg, vocab: Vocab | None = None) -> Corpus:
        """The corpus a DataConfig describes: its files, or the built-in corpus when it names none."""
        if cfg.corpus:
            return cls.from_files(
                cfg.corpus, cfg.split, cfg.min_freq, vocab, cfg.encoding, cfg.errors, tokens=cfg.tokens
            )
        text = builtin_corpus(cfg.builtin)
        source = f"built-in corpus {cfg.builtin}"
        return cls.from_text(text, cfg.split, cfg.min_freq, vocab, source=source, tokens=cfg.tokens)

    def fingerprint(self) -> str:
        """sha256 of the encoded splits: a resumed run checks it still trains on the same data."""
        h = hashlib.sha256()
        for name in SPLITS:
            ids = self.split(name)
            for start in range(0, len(ids), _HASH_BLOCK):  # block by block: no copy of a big split
                h.update(np.ascontiguousarray(ids[start : start + _HASH_BLOCK]))
            h.update(b"|")
        return h.hexdigest()

    def split(self, name: str) -> np.ndarray:
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        return getattr(self, name)

    def summary(self) -> str:
        sizes = ", ".join(f"{s} {len(self.split(s)):,}" for s in SPLITS)
        oov = ", ".join(f"{s} {self.oov_rate[s]:.2%}" for s in ("val", "test"))
        return f"{self.source}: {sizes} {self.vocab.kind}s; vocab {len(self.vocab)}; OOV {oov}"


def _check_tokens(vocab: Vocab | None, tokens: str) -> None:
    if tokens not in ("char", "word"):
        raise ValueError(f"tokens must be 'char' or 'word', got {tokens!r}")
    if vocab is not None and vocab.kind != tokens:
        raise RnnlabError(
            f"the vocabulary is of {vocab.kind} tokens but the config says --tokens {tokens}; "
            "were vocab.json or config.json edited?"
        )


def _is_utf8(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        return False  # read_texts reports the unknown encoding


def _id_array(n: int, dtype: np.dtype, mmap: bool) -> np.ndarray:
    """An ``(n,)`` array to fill: in RAM, or a writable map of a temporary ``.npy`` file.

    The file is unlinked at once: the map keeps its data alive (and pageable) until the array goes,
    and nothing is left behind, whatever happens. (Where an open file cannot be unlinked, it stays in
    the temporary directory.)
    """
    if not mmap:
        return np.empty(n, dtype=dtype)
    fd, path = tempfile.mkstemp(prefix="rnnlab-ids-", suffix=".npy")
    os.close(fd)
    ids = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=(n,))
    with contextlib.suppress(OSError):
        os.unlink(path)
    return ids
