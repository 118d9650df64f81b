"""Interpolated modified Kneser-Ney: the smoothed model over counted n-grams, and the choice of its order.

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
``n − 1`` positions use the shorter context they have. Counting is :mod:`rnnlab.nn.ngram.counts`; this
module scores one id per position (the reference); :mod:`rnnlab.nn.ngram.dense` gives whole next-id
distributions for batches.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from rnnlab.nn.ngram.counts import NGramCounts, as_ids, lookup


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
            index, found = lookup(table.keys, safe * v + words)
            c = np.where(found, table.counts[index], 0)
            kept = np.maximum(c - table.discount[np.minimum(c, 3)], 0.0)
            p = np.where(use, (kept + table.gamma[safe] * p) / np.where(use, total, 1.0), p)
        return p

    def log_prob(self, ids) -> np.ndarray:
        """ln P(ids[i] | ids[i-n+1:i]) at every position of the stream ``ids`` (shorter contexts first)."""
        ids = as_ids(ids, self.vocab_size, "scored")
        return np.log(self._probs(self.counts.context_ids(ids, self.order - 1), ids))

    def evaluate(self, ids) -> float:
        """Mean cross-entropy of ``ids`` in nats per id (``exp`` of it is the perplexity)."""
        return float(-self.log_prob(ids).mean())

    def distribution(self, context) -> np.ndarray:
        """``(V,)`` probabilities of the next id after ``context`` (its last ``n − 1`` ids count)."""
        context = as_ids(context, self.vocab_size, "context")
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
    if not orders:
        raise ValueError("select_order needs at least one order")
    return select_order_of(NGramCounts(train, vocab_size, orders[-1]), val, orders, test)


def select_order_of(
    counts: NGramCounts, val, orders: Iterable[int] | None = None, test=None
) -> OrderSelection:
    """:func:`select_order` over counts already made (orders: 1..``counts.max_order`` by default).

    Raises:
        ValueError: an empty ``val``, an order the counts do not reach, or ids outside the vocabulary.
    """
    orders = sorted(set(orders or range(1, counts.max_order + 1)))
    val = as_ids(val, counts.vocab_size, "val")
    if val.size == 0:
        raise ValueError("select_order needs a non-empty validation split")
    test = None if test is None or len(test) == 0 else as_ids(test, counts.vocab_size, "test")

    def score(order: int) -> OrderScore:
        lm = KneserNeyLM(counts, order)
        return OrderScore(order, lm.evaluate(val), None if test is None else lm.evaluate(test))

    # The orders are independent and numpy releases the GIL in their sorts and searches: two at a time.
    with ThreadPoolExecutor(2) as pool:
        scores = list(pool.map(score, orders))
    best = min(scores, key=lambda s: s.val_loss)
    return OrderSelection(tuple(scores), best.order)
