"""Kneser-Ney next-id distributions for whole batches: log p_KN(. | context) as a (B, T, V) tensor.

The network of a residual n-gram model (Li et al. 2022, "Residual learning of neural text generation
with n-gram language model") adds its logits to these, so every training step needs the full
next-id distribution at every position of the batch. :meth:`KneserNeyLM.distribution` gives the
same numbers one context at a time; this module gives them for ``N`` contexts at once.

Each order ``k`` (context length ``m = k − 1``) is kept as a CSR table over its context ids: for
context ``h`` the seen ids ``w`` (row ``indptr[h]:indptr[h+1]``), their counts ``c`` (raw at the top
order, continuation below) and ``kept = max(c − D(c), 0)``, plus ``total(h)`` and ``γ(h)``. The
counts' k-gram keys are ``h * V + w`` sorted, so the rows come straight out of
:class:`NGramCounts` without a sort.

Unrolling the interpolation ``P_k = a_k + s_k P_{k−1}`` with ``s_k = γ_k/total_k`` and
``a_k(w) = kept_k(w)/total_k`` (``s_k = 1, a_k = 0`` where the context is unseen)::

    P_n = (Π_k s_k) / V + Σ_k (Π_{j>k} s_j) a_k

so the ``V``-wide work is one fill (order 1's dense vector, scaled per position) and one log; a higher
order scatters its few seen ids (``index_add_``), or, where its rows are long (short contexts over a
small vocabulary, or text as varied as a 100 MB mixed corpus, whose bigram rows hold ~2,300 of 3,117
ids), adds its row from a dense ``(contexts, V)`` matrix (:func:`dense_orders` picks them).

Leave-one-out (``targets`` given): at a training position ``i`` the counts are taken as if the event
"``ids[i]`` after its context" had not been counted, so a context seen once in training passes its
lower order through, as it would on unseen text. At the top order the raw count of ``(h, ids[i])``
drops by one; at a lower order ``k`` the continuation count ``N1+(• h w)`` drops by one when the
``(k+1)``-gram ending at ``i`` has raw count 1 (position ``i`` is its only left extension). Totals,
``γ`` and the kept mass of ``ids[i]`` follow; the discounts keep their full-count values.
"""

from __future__ import annotations

import numpy as np
import torch

from rnnlab.nn.ngram.counts import NGramCounts, batch_contexts, int_ids, lookup
from rnnlab.nn.ngram.table import (
    OrderTable,
    build_table,
    dense_matrix,
    dense_orders,
    fix_entries,
    row_entries,
    scatter,
)


class DenseKneserNey:
    """Interpolated modified Kneser-Ney of order ``order`` over ``counts``, scored densely per batch.

    Bit-compatible (in float64) with :meth:`KneserNeyLM.distribution` of the same counts and order.

    Args:
        counts: the training counts (``counts.max_order >= order``).
        order: ``n``; contexts are the previous ``n − 1`` ids.
        dense: the context lengths ``m`` (1..n-1) added from dense matrices rather than scattered;
            None: those :func:`rnnlab.nn.ngram.table.dense_orders` finds worth it. Either way the
            numbers are the same.
    """

    def __init__(self, counts: NGramCounts, order: int, dense: tuple[int, ...] | None = None) -> None:
        if not 1 <= order <= counts.max_order:
            raise ValueError(f"order must be in [1, {counts.max_order}], got {order}")
        tables = [build_table(counts, k, top=k == order) for k in range(1, order + 1)]
        self._setup(counts.context_keys[:order], tables, counts.vocab_size, dense)

    @classmethod
    def from_tables(
        cls, context_keys: list[np.ndarray], tables: list[OrderTable], vocab_size: int
    ) -> DenseKneserNey:
        """A model of order ``len(tables)`` from its context keys and order tables (stacked folds:
        :class:`rnnlab.nn.ngram.FoldKneserNey`, whose rows then name their root: ``roots``)."""
        out = cls.__new__(cls)
        out._setup(context_keys, tables, vocab_size, None)
        return out

    def _setup(self, context_keys, tables: list[OrderTable], vocab_size: int, dense) -> None:
        self.context_keys, self.tables = context_keys, tables
        self.order, self.vocab_size = len(tables), vocab_size
        if dense is None:
            dense = dense_orders(tables, vocab_size)
        # Order 1 as a dense (roots, V) matrix (ids never seen keep 0); longer contexts where rows are long.
        self._dense = {m: {torch.float64: dense_matrix(tables[m], vocab_size)} for m in (0, *dense)}

    @property
    def context_length(self) -> int:
        return self.order - 1

    def context_ids(self, context: np.ndarray, roots: np.ndarray | None = None) -> list[np.ndarray]:
        """Per length ``m = 0..n-1``, the training id of each row's last ``m`` ids (-1: not seen).

        ``context``: ``(N, n − 1)`` ids, oldest first; -1 marks "before the start of the stream".
        ``roots``: ``(N,)`` the id of each row's empty context (stacked models; None: 0).
        """
        n, v = context.shape[0], self.vocab_size
        out = [np.zeros(n, dtype=np.int64) if roots is None else np.asarray(roots, dtype=np.int64)]
        for m in range(1, self.order):
            parent, oldest = out[-1], context[:, self.order - 1 - m]
            index, found = lookup(self.context_keys[m], parent * v + oldest)
            found &= (parent >= 0) & (oldest >= 0)
            out.append(np.where(found, index, -1))
        return out

    def probs_flat(
        self,
        context: np.ndarray | None,
        targets: np.ndarray | None = None,
        dtype: torch.dtype = torch.float32,
        roots: np.ndarray | None = None,
        cids: list[np.ndarray] | None = None,
    ) -> torch.Tensor:
        """``(N, V)`` next-id probabilities after each row of ``context``.

        Args:
            context: ``(N, n − 1)`` int ids, oldest first, -1 where the stream had not started.
            targets: ``(N,)`` the id that follows each context in the *training* stream these counts
                were made from: score leave-one-out (see the module docstring). None: plain counts.
            dtype: of the result (the arithmetic is done in it too).
            roots: ``(N,)`` which stacked model scores each row (:meth:`from_tables`); None: the one.
            cids: :meth:`context_ids` of the rows, already looked up (``context`` and ``roots`` are then
                not read).
        """
        terms = self._order_terms(context, targets, roots, cids)
        weight = np.ones(terms[0][1][0].size)
        rows, parts = [], []  # dense orders' (m, context ids, coef); the others' (position, word, value)
        # Walk down from the top order: weight = Π_{j>m} s_j, the share order m's terms keep in P_n.
        for m, (safe, use, inv_total, scale, kept_fix) in terms:
            coef = weight * inv_total  # what each kept count of this order is worth in P_n (0: unused)
            if m in self._dense:
                rows.append((m, safe, coef))
            else:
                parts.append(row_entries(self.tables[m], safe, use, coef))
            if kept_fix is not None:
                parts.append(fix_entries(use, kept_fix, targets, coef))
            weight = weight * scale
        p = torch.from_numpy(weight / self.vocab_size).to(dtype)[:, None].expand(-1, self.vocab_size)
        p = p.contiguous()  # P_n gets (Π_k s_k) / V, then every order's kept counts
        for m, safe, coef in rows:
            self._add_rows(p, m, safe, coef)
        return scatter(p, parts, dtype)

    def probs_by_order(
        self,
        context: np.ndarray | None,
        targets: np.ndarray | None = None,
        dtype: torch.dtype = torch.float32,
        roots: np.ndarray | None = None,
        cids: list[np.ndarray] | None = None,
    ) -> torch.Tensor:
        """``(N, n, V)``: after each row of ``context``, the distribution ``P_k`` the interpolation has
        reached at each order ``k = 1..n`` (``P_k = a_k + s_k P_{k−1}``, ``P_0`` uniform); ``[:, -1]``
        is :meth:`probs_flat`'s. Below the top order these are Kneser-Ney's lower-order distributions
        (continuation counts), the ones the top order backs off to. Arguments as :meth:`probs_flat`.
        """
        terms = self._order_terms(context, targets, roots, cids)[::-1]  # order 1 first
        n, v = terms[0][1][0].size, self.vocab_size
        p = torch.full((n, v), 1.0 / v, dtype=dtype)
        out = torch.empty(n, self.order, v, dtype=dtype)
        for m, (safe, use, inv_total, scale, kept_fix) in terms:
            p.mul_(torch.from_numpy(scale).to(dtype)[:, None])
            parts = []
            if m in self._dense:
                self._add_rows(p, m, safe, inv_total)
            else:
                parts.append(row_entries(self.tables[m], safe, use, inv_total))
            if kept_fix is not None:
                parts.append(fix_entries(use, kept_fix, targets, inv_total))
            scatter(p, parts, dtype)
            out[:, m] = p
        return out

    def _add_rows(self, p: torch.Tensor, m: int, safe: np.ndarray, coef: np.ndarray) -> None:
        """``p[i] += coef[i] * kept`` of row ``safe[i]`` of dense order ``m`` (a matrix of one row: it)."""
        by_dtype = self._dense[m]
        if p.dtype not in by_dtype:
            by_dtype[p.dtype] = by_dtype[torch.float64].to(p.dtype)
        matrix, c = by_dtype[p.dtype], torch.from_numpy(coef).to(p.dtype)[:, None]
        p.addcmul_(matrix if matrix.shape[0] == 1 else matrix[torch.from_numpy(safe)], c)

    def _order_terms(self, context, targets: np.ndarray | None, roots=None, cids=None) -> list[tuple]:
        """Per order, top first: ``(m, (safe context ids, used, 1/total, s = γ/total, the target's
        kept-count change or None))`` for each row of ``context`` (the arguments of :meth:`probs_flat`)."""
        if cids is None:
            context = np.asarray(context, dtype=np.int64)
            if context.ndim != 2 or context.shape[1] != self.context_length:
                raise ValueError(f"context must be (N, {self.context_length}), got {context.shape}")
            cids = self.context_ids(context, roots)
        terms = []
        upper_raw = None  # raw count of the (m+2)-gram ending at each position (leave-one-out)
        for m in range(self.order - 1, -1, -1):
            t, h = self.tables[m], cids[m]
            seen = h >= 0
            safe = np.where(seen, h, 0)
            total, gamma, kept_fix = t.total[safe], t.gamma[safe], None
            if targets is not None:
                total, gamma, kept_fix, upper_raw = self._left_out(t, m, safe, seen, targets, upper_raw)
            use = seen & (total > 0)
            inv_total = np.where(use, 1.0 / np.where(use, total, 1.0), 0.0)
            terms.append((m, (safe, use, inv_total, np.where(use, gamma * inv_total, 1.0), kept_fix)))
        return terms

    def _left_out(self, t: OrderTable, m: int, safe, seen, targets, upper_raw):
        """Order ``m``'s totals, γ and the change of the target's kept count with the position's own
        event left out, and the raw counts the order below reads (see the module docstring)."""
        d = t.discount
        index, found = lookup(t.keys, safe * self.vocab_size + targets)
        found &= seen
        c = np.where(found, t.counts[index], 0)
        # The top order's raw count includes this very event; a lower order's continuation count does
        # when the position is the only left extension of its (k+1)-gram.
        drop = found & ((c > 0) if m == self.order - 1 else (upper_raw == 1))
        c_new = c - drop
        total = t.total[safe] - drop
        gamma = t.gamma[safe] - d[np.minimum(c, 3)] + d[np.minimum(c_new, 3)]
        kept = np.maximum(c - d[np.minimum(c, 3)], 0.0)
        kept_fix = np.maximum(c_new - d[np.minimum(c_new, 3)], 0.0) - kept
        return total, gamma, kept_fix, np.where(found, t.raw[index], 0)

    def next_log_probs(
        self, context, dtype: torch.dtype = torch.float32, by_order: bool = False
    ) -> torch.Tensor:
        """``(V,)`` ln P(next id | ``context``) for one context (its last ``n − 1`` ids count; -1 marks
        "before the stream's start", as in :meth:`probs_flat`); ``by_order``: ``(n, V)``, every order's
        ``ln P_k`` (:meth:`probs_by_order`).

        The generation path: scalar lookups and ``V``-wide numpy updates, order by order (what
        :meth:`probs_flat` does for many rows costs ~100 small numpy calls, too many for one).
        """
        v = self.vocab_size
        ctx = [int(x) for x in np.asarray(context).reshape(-1)[-(self.order - 1) :]] if self.order > 1 else []
        ctx = ctx[len(ctx) - next((i for i, x in enumerate(reversed(ctx)) if x < 0), len(ctx)) :]
        p = np.full(v, 1.0 / v)
        reached = []  # P_k after each order k
        h = 0
        for m, t in enumerate(self.tables):
            if m > 0:
                keys = self.context_keys[m]
                key = h * v + ctx[-m] if m <= len(ctx) else -1
                i = int(np.searchsorted(keys, key))
                if key < 0 or i == keys.size or keys[i] != key:
                    break  # unseen here, so every longer context is unseen too
                h = i
            total = t.total[h]
            if total > 0:
                a, b = t.indptr[h], t.indptr[h + 1]
                p = p * (t.gamma[h] / total)
                p[t.words[a:b]] += t.kept[a:b] / total
            reached.append(p)
        if not by_order:
            return torch.from_numpy(np.log(p)).to(dtype)
        reached += [p] * (self.order - len(reached))  # unseen contexts pass the order below through
        return torch.from_numpy(np.log(np.stack(reached))).to(dtype)

    def log_probs(
        self,
        ids: np.ndarray | torch.Tensor,
        history: np.ndarray | torch.Tensor | None = None,
        targets: np.ndarray | torch.Tensor | None = None,
        dtype: torch.dtype = torch.float32,
        by_order: bool = False,
    ) -> torch.Tensor:
        """``(B, T, V)`` ln P(next id | the ids up to and including ``ids[:, t]``); ``by_order``:
        ``(B, T, n, V)``, every order's (:meth:`probs_by_order`).

        Args:
            ids: ``(B, T)`` the batch's inputs X.
            history: ``(B, H)`` the ids just before ``ids[:, 0]`` in the stream (only the last
                ``n − 2`` count; -1 or missing columns: the stream had not started).
            targets: ``(B, T)`` the batch's Y, for leave-one-out on training positions; None: plain.
            dtype: of the result.
        """
        ids = int_ids(ids)
        b, t = ids.shape
        context = batch_contexts(ids, history, self.context_length)
        tgt = None if targets is None else int_ids(targets).reshape(-1)
        if by_order:
            return self.probs_by_order(context, tgt, dtype).log_().view(b, t, self.order, self.vocab_size)
        return self.probs_flat(context, tgt, dtype).log_().view(b, t, self.vocab_size)

    def __deepcopy__(self, _memo) -> DenseKneserNey:
        return self  # read-only tables: a copied model shares them
