"""Vocab: the one place where characters become integer ids and back."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from rnnlab.config import TOKENS
from rnnlab.errors import RnnlabError
from rnnlab.io import atomic_write_text, read_json

UNK = "<unk>"
FORMAT = "rnnlab-vocab"
FORMAT_VERSION = 1
ON_UNKNOWN = ("unk", "error", "skip")

# Characters are encoded and counted in slices of this many, so a 100 MB corpus never needs its
# UTF-32 copy in memory all at once.
_ENCODE_CHUNK = 1 << 22
CODE_POINTS = 0x110000  # every Unicode code point, surrogates included


def _code_point_slices(text: str) -> Iterator[np.ndarray]:
    """``text`` as uint32 code points, :data:`_ENCODE_CHUNK` characters at a time."""
    for start in range(0, len(text), _ENCODE_CHUNK):
        chunk = text[start : start + _ENCODE_CHUNK]
        yield np.frombuffer(chunk.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def count_chars(text: str, counts: np.ndarray | None = None) -> np.ndarray:
    """How often each code point occurs in ``text``, added into ``counts`` (new zeros when None).

    Args:
        text: any string.
        counts: ``(CODE_POINTS,)`` int64 running totals, updated in place; pass the same array for
            every piece of a text too big to hold at once.

    Returns:
        ``counts``, indexed by code point (what :meth:`Vocab.from_counts` reads).
    """
    if counts is None:
        counts = np.zeros(CODE_POINTS, dtype=np.int64)
    for points in _code_point_slices(text):
        binned = np.bincount(points)  # (max code point + 1,): small for small alphabets
        counts[: len(binned)] += binned
    return counts


def id_dtype(size: int) -> np.dtype:
    """The smallest unsigned integer dtype that holds ids ``0 .. size-1``."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if size <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)
    raise RnnlabError(f"vocabulary of {size} tokens is too large")


class Vocab:
    """A fixed, ordered character vocabulary.

    Ids are assigned specials first (in the order given), then characters in code-point order, so the
    same training text always gives the same ids (the notes' ``list(set(text))`` does not: its order
    changes from run to run). Build it from the training split only, so validation characters do not
    leak into it.

    Args:
        tokens: every token in id order, specials included.
        specials: the special tokens among ``tokens`` (``"<unk>"`` gives unknown characters an id).
        counts: how often each token occurred in the text it was built from (optional); generation
            with an empty prefix draws its first character from these.
    """

    kind = "char"  # the tokeniser (--tokens); rnnlab.data.words.WordVocab is the "word" one
    unit = "character"
    KINDS: ClassVar[dict[str, type[Vocab]]] = {}  # kind -> class; each subclass registers itself

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        Vocab.KINDS.setdefault(cls.kind, cls)

    def __init__(
        self, tokens: Sequence[str], specials: Sequence[str] = (UNK,), counts: Sequence[int] | None = None
    ):
        tokens = list(tokens)
        if len(set(tokens)) != len(tokens):
            raise RnnlabError("vocabulary has duplicate tokens; rebuild it from the corpus")
        missing = [s for s in specials if s not in tokens]
        if missing:
            raise RnnlabError(f"vocabulary lacks its special tokens {missing}; rebuild it from the corpus")
        bad = [t for t in tokens if t not in specials and len(t) != 1] if self.kind == "char" else []
        if bad:
            raise RnnlabError(f"character vocabulary has multi-character tokens {bad[:5]}")
        if counts is not None and len(counts) != len(tokens):
            raise RnnlabError("vocabulary counts do not match its tokens; rebuild it from the corpus")
        self.counts: list[int] | None = list(counts) if counts is not None else None
        self.itos: list[str] = tokens
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(tokens)}
        self.specials: tuple[str, ...] = tuple(specials)
        self.unk_id: int | None = self.stoi.get(UNK)
        self.dtype = id_dtype(len(tokens))
        self._table: np.ndarray | None = None

    @classmethod
    def build(cls, text: str, min_freq: int = 1, specials: Sequence[str] = (UNK,)) -> Vocab:
        """Build the vocabulary of ``text``: every character seen at least ``min_freq`` times."""
        return cls.from_counts(count_chars(text), min_freq, specials)

    @classmethod
    def from_counts(cls, counts: np.ndarray, min_freq: int = 1, specials: Sequence[str] = (UNK,)) -> Vocab:
        """The vocabulary of a text given by its :func:`count_chars` counts (as :meth:`build`).

        Characters seen fewer than ``min_freq`` times, and those spelled like a special, count towards
        ``<unk>``.
        """
        if min_freq < 1:
            raise RnnlabError(f"--min-freq must be at least 1, got {min_freq}")
        seen = np.flatnonzero(counts)  # code points, ascending
        special_points = [ord(s) for s in specials if len(s) == 1]
        kept = seen[(counts[seen] >= min_freq) & ~np.isin(seen, special_points)]
        unknown = int(counts[seen].sum() - counts[kept].sum())
        special_counts = [unknown if s == UNK else 0 for s in specials]
        chars = [chr(p) for p in kept.tolist()]
        return cls([*specials, *chars], specials, special_counts + counts[kept].tolist())

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocab):
            return False
        return (self.kind, self.itos, self.specials) == (other.kind, other.itos, other.specials)

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, specials={list(self.specials)})"

    @property
    def special_ids(self) -> list[int]:
        return [self.stoi[s] for s in self.specials]

    def _lookup_table(self) -> np.ndarray:
        # Code point -> id, -1 where the character is unknown: one gather encodes a whole chunk.
        if self._table is None:
            table = np.full(0x110000, -1, dtype=np.int32)
            for i, t in enumerate(self.itos):
                if t not in self.specials:
                    table[ord(t)] = i
            self._table = table
        return self._table

    def encode(self, text: str, on_unknown: str = "unk") -> np.ndarray:
        """Map ``text`` to ids of the vocabulary's compact dtype.

        Args:
            text: any string.
            on_unknown: what to do with characters outside the vocabulary: ``"unk"`` maps them to
                ``<unk>``, ``"skip"`` drops them, ``"error"`` raises.

        Raises:
            RnnlabError: on unknown characters with ``on_unknown="error"`` (the message lists them), or
                with ``"unk"`` when the vocabulary has no ``<unk>``.
        """
        if on_unknown not in ON_UNKNOWN:
            raise ValueError(f"on_unknown must be one of {ON_UNKNOWN}, got {on_unknown!r}")
        table = self._lookup_table()
        parts = []
        for points in _code_point_slices(text):
            ids = table[points]
            unknown = ids < 0
            if unknown.any():
                ids = self._handle_unknown(ids, unknown, points, on_unknown)
            parts.append(ids.astype(self.dtype))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=self.dtype)

    def _handle_unknown(self, ids, unknown, points, on_unknown: str) -> np.ndarray:
        if on_unknown == "skip":
            return ids[~unknown]
        if on_unknown == "unk" and self.unk_id is not None:
            ids[unknown] = self.unk_id
            return ids
        chars = "".join(sorted({chr(p) for p in np.unique(points[unknown])})[:20])
        if on_unknown == "unk":
            raise RnnlabError(f"characters not in the vocabulary and no <unk> to map them to: {chars!r}")
        raise RnnlabError(
            f"characters not in the vocabulary: {chars!r}; remove them or map them with --unknown unk|skip"
        )

    def oov_rate(self, ids: np.ndarray) -> float:
        """The fraction of ``ids`` that are ``<unk>``: text this vocabulary could not spell (0 when empty)."""
        if self.unk_id is None or len(ids) == 0:
            return 0.0
        return int(np.count_nonzero(ids == self.unk_id)) / len(ids)

    def unknown_chars(self, text: str) -> list[str]:
        """The distinct characters of ``text`` that have no id, in code-point order."""
        return sorted({c for c in set(text) if c not in self.stoi or c in self.specials})

    def decode(self, ids: Iterable[int]) -> str:
        """Map ids back to text; special tokens appear as their names (e.g. ``<unk>``)."""
        itos = self.itos
        return "".join(itos[int(i)] for i in np.asarray(ids).reshape(-1))

    def text_stream(self, prefix: str, rows: int) -> Callable[[Sequence[int]], list[str]]:
        """For generation after ``prefix``: per step, each of ``rows`` rows' new text from its new id."""
        itos = self.itos
        return lambda ids: [itos[i] for i in ids]

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "tokenizer": self.kind,
            "specials": list(self.specials),
            "tokens": self.itos,
            "counts": self.counts,
        }

    @classmethod
    def from_dict(cls, data: object) -> Vocab:
        ok = (
            isinstance(data, dict)
            and data.get("format") == FORMAT
            and isinstance(data.get("tokens"), list)
            and isinstance(data.get("specials"), list)
            and all(isinstance(t, str) for t in data["tokens"] + data["specials"])
            and (data.get("counts") is None or all(isinstance(n, int) and n >= 0 for n in data["counts"]))
        )
        if not ok:
            raise RnnlabError("vocab.json is not an rnnlab vocabulary; was it edited or replaced?")
        if data.get("version") != FORMAT_VERSION:
            raise RnnlabError(
                f"vocab.json has format version {data.get('version')}, this rnnlab reads {FORMAT_VERSION}"
            )
        kind = data.get("tokenizer", "char")  # files from before word tokens have none
        if kind not in TOKENS:
            raise RnnlabError(f"vocab.json has tokenizer {kind!r}; this rnnlab knows {', '.join(TOKENS)}")
        # rnnlab.data imports every tokeniser's module, so each kind has registered its class by now.
        return Vocab.KINDS[kind](data["tokens"], data["specials"], data.get("counts"))

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), ensure_ascii=False))

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        return cls.from_dict(read_json(path))


Vocab.KINDS[Vocab.kind] = Vocab
