"""The n-gram model: interpolated modified Kneser-Ney over ids, counted and scored with numpy.

Every run's baseline, the loss a recurrent model must beat to have learnt more than "which few
characters tend to follow which" (an LSTM whose validation loss is above the best n-gram's is
under-fitting), and the n-gram a network may build on.

Model (Kneser & Ney 1995; modified KN of Chen & Goodman 1998, "An empirical study of smoothing
techniques for language modeling", eq. 17 and 26). For order ``n`` and a context ``h`` of the
preceding ``n − 1`` ids, with ``h'`` the context without its oldest id::

    P_k(w | h) = (max(c_k(h w) − D_k(c_k(h w)), 0) + γ_k(h) · P_{k−1}(w | h')) / c_k(h •)
    γ_k(h)     = D_k1 · N1(h •) + D_k2 · N2(h •) + D_k3+ · N3+(h •)
    P_0(w)     = 1 / V                       (uniform over the run's vocabulary, <unk> included)

where ``c_k(h •) = Σ_w c_k(h w)`` and ``N_j(h •)`` counts the words seen exactly ``j`` (``3+``: at
least 3) times after ``h``. At the highest order ``c_n`` is the raw count; at lower orders it is the
continuation count ``N1+(• h w)``, the number of distinct ids seen before ``h w``. A context never seen
(``c_k(h •) = 0``) passes ``P_{k−1}`` through unchanged. Each order has its own discounts from its
count-of-counts ``n_j``: ``Y = n1 / (n1 + 2 n2)``, ``D1 = 1 − 2Y n2/n1``, ``D2 = 2 − 3Y n3/n2``,
``D3+ = 3 − 4Y n4/n3``; an estimate that is undefined or outside ``(0, j]`` (tiny corpora) falls back
to ``Y`` (Ney et al. 1994's single discount), or to 0.5 when ``Y`` is 0 or undefined. Every discount
is then in ``(0, j]``, so every distribution sums to 1 and gives every id of the vocabulary a nonzero
probability. Order 1 is the discounted unigram interpolated with the uniform distribution:
``P(w) = (max(c(w) − D(c(w)), 0) + γ / V) / N``.

Scoring reads the text as one stream: position ``i`` is predicted from ``ids[i−n+1 : i]``; the first
``n − 1`` positions use the shorter context they have. Contexts are numbered exactly (no hashing):
the id of a length-``m`` context is the rank of the pair (id of its length-``m−1`` suffix, its oldest
id) among the pairs seen in training, so every lookup is a ``np.searchsorted``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np


def _as_ids(ids, vocab_size: int, name: str) -> np.ndarray:
    arr = np.asarray(ids, dtype=np.int64).reshape(-1)
    if arr.size and (arr.min() < 0 or arr.max() >= vocab_size):
        raise ValueError(f"{name} ids must lie in [0, {vocab_size}); got [{arr.min()}, {arr.max()}]")
    return arr


def _lookup(sorted_keys: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(index, found)``: where each query sits in ``sorted_keys`` and whether it is there."""
    if sorted_keys.size == 0:
        return np.zeros_like(queries), np.zeros(queries.shape, dtype=bool)
    index = np.minimum(np.searchsorted(sorted_keys, queries), sorted_keys.size - 1)
    return index, sorted_keys[index] == queries


def discounts(counts: np.ndarray) -> np.ndarray:
    """``[0, D1, D2, D3+]`` from the count-of-counts of ``counts`` (Chen & Goodman 1998, eq. 26)."""
    n1, n2, n3, n4 = (int(np.count_nonzero(counts == j)) for j in (1, 2, 3, 4))
    y = n1 / (n1 + 2 * n2) if n1 + 2 * n2 else math.nan
    fallback = y if 0 < y <= 1 else 0.5
    out = [0.0]
    for j, (lo, hi) in enumerate(((n1, n2), (n2, n3), (n3, n4)), start=1):
        d = j - (j + 1) * y * hi / lo if lo else math.nan
        out.append(d if 0 < d <= j else fallback)
    return np.array(out)


class NGramCounts:
    """Every k-gram count of a training stream, k = 1..max_order, shared by the models of each order.

    For each length ``m`` of context, ``context_keys[m]`` are the sorted pair keys
    ``suffix_context_id * V + oldest_id`` (a context's id is its index there; the empty context is 0).
    For each order ``k``, ``keys[k]`` are the sorted k-gram keys ``context_id * V + w``, ``raw[k]``
    their counts and ``continuation[k]`` (k < max_order) their numbers of distinct left extensions.
    """

    def __init__(self, train_ids, vocab_size: int, max_order: int) -> None:
        if vocab_size < 1 or max_order < 1:
            raise ValueError(f"need vocab_size >= 1 and max_order >= 1, got {vocab_size}, {max_order}")
        t = _as_ids(train_ids, vocab_size, "train")
        n, v = t.size, vocab_size
        self.vocab_size, self.max_order = vocab_size, max_order
        self.context_keys: list[np.ndarray] = [np.zeros(1, dtype=np.int64)]
        self.keys: dict[int, np.ndarray] = {}
        self.raw: dict[int, np.ndarray] = {}
        self.continuation: dict[int, np.ndarray] = {}
        cids = [np.zeros(n, dtype=np.int64)]  # context id of each position, by context length
        for k in range(1, max_order + 1):
            m = k - 1
            if m > 0:
                pairs = cids[m - 1][m:] * v + t[: max(n - m, 0)]  # (n - m,): suffix context, oldest id
                keys, inverse = np.unique(pairs, return_inverse=True)
                self.context_keys.append(keys)
                cids.append(np.concatenate([np.full(m, -1, dtype=np.int64), inverse.reshape(-1)]))
            grams = cids[m][m:] * v + t[m:]  # (n - m,) k-gram keys
            self.keys[k], first, self.raw[k] = np.unique(grams, return_index=True, return_counts=True)
            if k > 1:
                # Each distinct k-gram adds one left extension to its (k-1)-gram suffix.
                pos = first + m
                suffix = cids[m - 1][pos] * v + t[pos]
                index, _ = _lookup(self.keys[k - 1], suffix)
                self.continuation[k - 1] = np.bincount(index, minlength=self.keys[k - 1].size)

    def context_ids(self, ids: np.ndarray, max_length: int) -> list[np.ndarray]:
        """Per context length m = 0..max_length, the training id of each ``ids[i-m:i]`` (-1: none)."""
        n, v = ids.size, self.vocab_size
        out = [np.zeros(n, dtype=np.int64)]
        for m in range(1, max_length + 1):
            cid = np.full(n, -1, dtype=np.int64)
            parent = out[m - 1][m:]
            index, found = _lookup(self.context_keys[m], parent * v + ids[: max(n - m, 0)])
            found &= parent >= 0
            cid[m:][found] = index[found]
            out.append(cid)
        return out


@dataclass(frozen=True)
class _Order:
    """One order's smoothed table: k-gram keys and counts, discounts, and per-context totals and γ."""

    keys: np.ndarray
    counts: np.ndarray
    discount: np.ndarray  # [0, D1, D2, D3+]
    total: np.ndarray  # c_k(h •) per context id
    gamma: np.ndarray  # γ_k(h) per context id (not yet divided by the total)


class KneserNeyLM:
    """Interpolated modified Kneser-Ney n-gram model over ids ``0..V-1`` (see the module docstring)."""

    def __init__(self, counts: NGramCounts, order: int) -> None:
        if not 1 <= order <= counts.max_order:
            raise ValueError(f"order must be in [1, {counts.max_order}], got {order}")
        self.counts, self.order, self.vocab_size = counts, order, counts.vocab_size
        self._orders: list[_Order] = []
        for k in range(1, order + 1):
            c = counts.raw[k] if k == order else counts.continuation[k]
            d = discounts(c[c > 0])
            context = counts.keys[k] // self.vocab_size
            size = counts.context_keys[k - 1].size
            total = np.bincount(context, weights=c, minlength=size)
            gamma = np.bincount(context, weights=d[np.minimum(c, 3)], minlength=size)  # Σ D(c), c > 0
            self._orders.append(_Order(counts.keys[k], c, d, total, gamma))

    @classmethod
    def fit(cls, train_ids, vocab_size: int, order: int) -> KneserNeyLM:
        """Count ``train_ids`` (ints in ``[0, vocab_size)``) and build the order-``order`` model."""
        return cls(NGramCounts(train_ids, vocab_size, order), order)

    def _probs(self, cids: Sequence[np.ndarray], words: np.ndarray) -> np.ndarray:
        """P(words[j] | the context whose id of each length m is cids[m][j]), interpolated upwards."""
        v = self.vocab_size
        p = np.full(words.shape, 1.0 / v)
        for m, table in enumerate(self._orders):
            if table.keys.size == 0:
                continue  # training text shorter than this order: no context seen
            h = cids[m]
            safe = np.maximum(h, 0)
            total = table.total[safe]
            use = (h >= 0) & (total > 0)  # else: context unseen here, keep the lower order
            index, found = _lookup(table.keys, safe * v + words)
            c = np.where(found, table.counts[index], 0)
            kept = np.maximum(c - table.discount[np.minimum(c, 3)], 0.0)
            p = np.where(use, (kept + table.gamma[safe] * p) / np.where(use, total, 1.0), p)
        return p

    def log_prob(self, ids) -> np.ndarray:
        """ln P(ids[i] | ids[i-n+1:i]) at every position of the stream ``ids`` (shorter contexts first)."""
        ids = _as_ids(ids, self.vocab_size, "scored")
        return np.log(self._probs(self.counts.context_ids(ids, self.order - 1), ids))

    def evaluate(self, ids) -> float:
        """Mean cross-entropy of ``ids`` in nats per id (``exp`` of it is the perplexity)."""
        return float(-self.log_prob(ids).mean())

    def distribution(self, context) -> np.ndarray:
        """``(V,)`` probabilities of the next id after ``context`` (its last ``n − 1`` ids count)."""
        context = _as_ids(context, self.vocab_size, "context")
        tail = context[max(context.size - (self.order - 1), 0) :]
        stream = np.append(tail, 0)  # a placeholder id where the next one goes
        last = [cid[-1:] for cid in self.counts.context_ids(stream, self.order - 1)]
        words = np.arange(self.vocab_size)
        return self._probs([np.broadcast_to(cid, words.shape) for cid in last], words)


@dataclass(frozen=True)
class OrderScore:
    """The validation (and test) loss of the n-gram model of one order, in nats per id."""

    order: int
    val_loss: float
    test_loss: float | None = None

    @property
    def val_ppl(self) -> float:
        return math.exp(self.val_loss)

    @property
    def test_ppl(self) -> float | None:
        return None if self.test_loss is None else math.exp(self.test_loss)


@dataclass(frozen=True)
class OrderSelection:
    """What :func:`select_order` found: every order's scores and the order with the lowest val loss."""

    scores: tuple[OrderScore, ...]
    order: int

    @property
    def best(self) -> OrderScore:
        return next(s for s in self.scores if s.order == self.order)

    def render_text(self) -> str:
        lines = ["order  val loss  val ppl  test loss  test ppl"]
        for s in self.scores:
            test = (
                f"{s.test_loss:9.4f}  {s.test_ppl:8.2f}" if s.test_loss is not None else f"{'-':>9}  {'-':>8}"
            )
            mark = "  <- chosen on val" if s.order == self.order else ""
            lines.append(f"{s.order:5d}  {s.val_loss:8.4f}  {s.val_ppl:7.2f}  {test}{mark}")
        return "\n".join(lines)


def select_order(
    train, val, vocab_size: int, orders: Iterable[int] = range(1, 8), test=None
) -> OrderSelection:
    """Fit a Kneser-Ney model of each order on ``train`` and choose the order on ``val``.

    Counting is done once, for the largest order. ``test`` (optional, may be empty) is scored with
    every order too, for the record; it never influences the choice.

    Raises:
        ValueError: no orders, an empty ``val``, or ids outside ``[0, vocab_size)``.
    """
    orders = sorted(set(orders))
    val = _as_ids(val, vocab_size, "val")
    if not orders or val.size == 0:
        raise ValueError("select_order needs at least one order and a non-empty validation split")
    counts = NGramCounts(train, vocab_size, orders[-1])
    test = None if test is None or len(test) == 0 else _as_ids(test, vocab_size, "test")
    scores = []
    for order in orders:
        lm = KneserNeyLM(counts, order)
        scores.append(OrderScore(order, lm.evaluate(val), None if test is None else lm.evaluate(test)))
    best = min(scores, key=lambda s: s.val_loss)
    return OrderSelection(tuple(scores), best.order)
