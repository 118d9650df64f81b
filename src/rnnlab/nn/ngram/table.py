"""One order of a Kneser-Ney model as CSR rows over its context ids, and the ``(position, word, value)``
entries that :class:`rnnlab.nn.ngram.DenseKneserNey` scatters from its rows into dense distributions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rnnlab.nn.ngram.counts import NGramCounts
from rnnlab.nn.ngram.kneser_ney import discounts


@dataclass(frozen=True)
class OrderTable:
    """One order of a Kneser-Ney model as CSR rows over its context ids.

    Attributes:
        keys: ``(E,)`` sorted k-gram keys ``h * V + w`` (for lookups of a given ``(h, w)``).
        indptr: ``(C + 1,)`` row bounds per context id ``h``.
        words: ``(E,)`` the id ``w`` of each entry.
        counts: ``(E,)`` the count the model uses (raw at the top order, continuation below).
        raw: ``(E,)`` the raw counts (leave-one-out reads them one order up).
        kept: ``(E,)`` ``max(c − D(c), 0)``.
        total, gamma: ``(C,)`` per context: ``Σ c`` and ``Σ D(c)`` over its seen ids.
        discount: ``[0, D1, D2, D3+]``.
    """

    keys: np.ndarray
    indptr: np.ndarray
    words: np.ndarray
    counts: np.ndarray
    raw: np.ndarray
    kept: np.ndarray
    total: np.ndarray
    gamma: np.ndarray
    discount: np.ndarray


def build_table(counts: NGramCounts, k: int, top: bool) -> OrderTable:
    """The CSR table of order ``k`` (the model's top order when ``top``) from ``counts``."""
    v = counts.vocab_size
    keys = counts.keys[k]
    c = counts.raw[k] if top else counts.continuation[k]
    d = discounts(c[c > 0])
    context = keys // v
    num_contexts = counts.context_keys[k - 1].size
    indptr = np.zeros(num_contexts + 1, dtype=np.int64)
    np.cumsum(np.bincount(context, minlength=num_contexts), out=indptr[1:])
    c = c.astype(np.int64)
    total = np.bincount(context, weights=c, minlength=num_contexts)
    gamma = np.bincount(context, weights=d[np.minimum(c, 3)], minlength=num_contexts)
    kept = np.maximum(c - d[np.minimum(c, 3)], 0.0)
    return OrderTable(keys, indptr, keys % v, c, counts.raw[k], kept, total, gamma, d)


# An order whose rows are long is added as a dense (contexts, V) matrix gathered by context id: one
# fused multiply-add per vocabulary entry, where scattering a row costs several numpy passes and an
# index_add_ per seen id. Measured per position (numpy + torch, 2-core AVX2): a scattered entry costs
# about as much as DENSE_PER_ENTRY dense ones.
DENSE_PER_ENTRY = 6
DENSE_MAX_ENTRIES = 16_000_000  # contexts x V of one dense order: 128 MB in float64


def dense_orders(tables: list[OrderTable], vocab_size: int) -> tuple[int, ...]:
    """The context lengths ``m >= 1`` worth a dense matrix: their rows, weighted by how often each
    context occurs in training (the raw counts), average at least ``V / DENSE_PER_ENTRY`` seen ids, and
    the matrix has at most ``DENSE_MAX_ENTRIES`` entries."""
    out = []
    for m, t in enumerate(tables[1:], start=1):
        contexts = t.total.size
        if contexts * vocab_size > DENSE_MAX_ENTRIES or t.words.size == 0:
            continue
        often = np.bincount(t.keys // vocab_size, weights=t.raw, minlength=contexts)
        mean_len = float(often @ np.diff(t.indptr)) / max(float(often.sum()), 1.0)
        if mean_len * DENSE_PER_ENTRY >= vocab_size:
            out.append(m)
    return tuple(out)


def dense_matrix(t: OrderTable, vocab_size: int) -> torch.Tensor:
    """``(contexts, V)`` float64: ``kept`` at each seen ``(h, w)``, 0 elsewhere."""
    out = torch.zeros(t.total.size * vocab_size, dtype=torch.float64)
    out[torch.from_numpy(t.keys)] = torch.from_numpy(t.kept)
    return out.view(t.total.size, vocab_size)


def row_entries(t: OrderTable, safe: np.ndarray, use: np.ndarray, coef: np.ndarray) -> tuple:
    """``(position, word, value)`` of every seen id of every used row's context in order table ``t``."""
    start = t.indptr[safe]
    lens = np.where(use, t.indptr[safe + 1] - start, 0)
    pos = np.repeat(np.arange(safe.size), lens)
    first = np.cumsum(lens) - lens
    entry = start[pos] + np.arange(pos.size) - first[pos]
    return pos, t.words[entry], coef[pos] * t.kept[entry]


def fix_entries(use: np.ndarray, kept_fix: np.ndarray, targets: np.ndarray, coef: np.ndarray) -> tuple:
    """``(position, word, value)`` of leave-one-out's change to each row's target entry."""
    fix = use & (kept_fix != 0)
    return np.flatnonzero(fix), targets[fix], (coef * kept_fix)[fix]


def scatter(p: torch.Tensor, parts: list, dtype: torch.dtype) -> torch.Tensor:
    """Add every ``(position, word, value)`` of ``parts`` into the ``(N, V)`` ``p``, in place."""
    if parts:
        pos = np.concatenate([q[0] for q in parts])
        words = np.concatenate([q[1] for q in parts])
        values = np.concatenate([q[2] for q in parts])
        p.view(-1).index_add_(
            0, torch.from_numpy(pos * p.shape[1] + words), torch.from_numpy(values).to(dtype)
        )
    return p


def stack_tables(tables: list[OrderTable], offsets: list[int], vocab_size: int) -> OrderTable:
    """One table whose rows are those of ``tables`` in turn, table ``j``'s context ``h`` now
    ``offsets[j] + h`` (its keys renumbered so); ``discount`` becomes ``(len(tables), 4)``."""
    entries = np.cumsum([0] + [t.keys.size for t in tables])
    indptr = [t.indptr[:-1] + e for t, e in zip(tables, entries)] + [entries[-1:]]
    return OrderTable(
        keys=np.concatenate([t.keys + o * vocab_size for t, o in zip(tables, offsets)]),
        indptr=np.concatenate(indptr).astype(np.int64),
        **{
            name: np.concatenate([getattr(t, name) for t in tables])
            for name in ("words", "counts", "raw", "kept", "total", "gamma")
        },
        discount=np.stack([t.discount for t in tables]),
    )
