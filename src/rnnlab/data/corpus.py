"""Corpus: text split into contiguous train/val/test parts and encoded with a train-only Vocab."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnlab.data.builtin import builtin_corpus
from rnnlab.data.text import read_texts
from rnnlab.data.vocab import UNK, Vocab
from rnnlab.errors import RnnlabError

SPLITS = ("train", "val", "test")


def split_text(text: str, fractions: Sequence[float] = (0.9, 0.05, 0.05)) -> tuple[str, str, str]:
    """Cut ``text`` into contiguous train, val and test parts, in that order.

    Contiguous (not shuffled) because a character's context is the text before it: shuffled lines
    would put near-copies of validation lines into training.

    Raises:
        RnnlabError: fractions that are negative, not three, do not sum to 1, or leave train empty.
    """
    fractions = tuple(float(f) for f in fractions)
    if len(fractions) != 3:
        raise RnnlabError(f"--split takes three fractions TRAIN,VAL,TEST, got {len(fractions)}")
    if any(not math.isfinite(f) or f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise RnnlabError(f"--split fractions must be >= 0 and sum to 1, got {','.join(map(str, fractions))}")
    n = len(text)
    n_train = round(n * fractions[0])
    n_val = round(n * fractions[1])
    if n_train == 0:
        raise RnnlabError(f"the train split is empty ({n} characters in all); give more text")
    return text[:n_train], text[n_train : n_train + n_val], text[n_train + n_val :]


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
    ) -> Corpus:
        """Split ``text``, build the vocabulary on the train part (unless given) and encode each part."""
        parts = split_text(text, split)
        if vocab is None:
            vocab = Vocab.build(parts[0], min_freq=min_freq, specials=(UNK,))
        arrays = [vocab.encode(p, on_unknown="unk") for p in parts]
        oov = {}
        for name, ids in zip(SPLITS, arrays):
            unk = int(np.count_nonzero(ids == vocab.unk_id)) if vocab.unk_id is not None else 0
            oov[name] = unk / len(ids) if len(ids) else 0.0
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
    ) -> Corpus:
        """Read UTF-8 files (joined in order) and build the corpus from their text."""
        text = read_texts(paths, encoding=encoding, errors=errors)
        return cls.from_text(text, split, min_freq, vocab, source=", ".join(str(p) for p in paths))

    @classmethod
    def from_config(cls, cfg, vocab: Vocab | None = None) -> Corpus:
        """The corpus a DataConfig describes: its files, or the built-in corpus when it names none."""
        if cfg.corpus:
            return cls.from_files(cfg.corpus, cfg.split, cfg.min_freq, vocab, cfg.encoding, cfg.errors)
        text = builtin_corpus(cfg.builtin)
        return cls.from_text(text, cfg.split, cfg.min_freq, vocab, source=f"built-in corpus {cfg.builtin}")

    def fingerprint(self) -> str:
        """sha256 of the encoded splits: a resumed run checks it still trains on the same data."""
        h = hashlib.sha256()
        for name in SPLITS:
            h.update(np.ascontiguousarray(self.split(name)).tobytes())
            h.update(b"|")
        return h.hexdigest()

    def split(self, name: str) -> np.ndarray:
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        return getattr(self, name)

    def summary(self) -> str:
        sizes = ", ".join(f"{s} {len(self.split(s)):,}" for s in SPLITS)
        oov = ", ".join(f"{s} {self.oov_rate[s]:.2%}" for s in ("val", "test"))
        return f"{self.source}: {sizes} chars; vocab {len(self.vocab)}; OOV {oov}"
