"""Cross-fitted Kneser-Ney for training positions: each scored by counts that never saw its part of the text.

A residual network learns what the n-gram misses, so the n-gram it sees in training must be as wrong
as it will be on new text. Counts made from the very text trained on are not: they have seen every
n-gram there. Leave-one-out (:meth:`DenseKneserNey.probs_flat` with ``targets``) removes a position's
own event, but text repeats itself (a chorus, a licence header, a speaker's name): a line's twin a few
hundred characters away is still counted, so the n-gram stays over-confident. On jaychou_lyrics.txt
it scores the training text at 1.85 nats/char leave-one-out against 5.16 on validation; on the
built-in corpus 0.90 against 1.23.

Cross-fitting cuts the training stream into ``K`` contiguous folds and counts ``K`` models, model
``k`` on every fold but ``k``; a training position in fold ``k`` is scored by model ``k``. The same
two corpora then score 5.15 and 1.32 (five folds), close to validation, where the network's residual
has to hold. Each fold's model is cut at the fold's edges, so the n-grams that straddle one of the
cuts (``n − 1`` per cut) are counted as if the two sides were adjacent text.

While the network has not learnt the text either, both parts of the model are as they will be on new
text, and what the network learns of how far to trust itself over the counts holds there: in a
minute's few passes (rnnlab's loop passes the batches' starts in the first ``--ngram-fold-passes``,
0: all; built-in corpus after 60 s: 1.129-1.139 with folds throughout, against 1.150-1.156 with the
first pass only). Over many passes the network learns the text; against cross-fitted counts it learns
to trust itself too much (tiny Shakespeare 90/10, 600 s, six passes: 1.453 with folds throughout,
against 1.428 leave-one-out), so the ``long`` preset cross-fits the first pass only and scores the
later ones leave-one-out, with counts that have seen the text too.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from rnnlab.nn.ngram.counts import NGramCounts, int_ids
from rnnlab.nn.ngram.dense import DenseKneserNey
from rnnlab.nn.ngram.table import OrderTable, build_table, stack_tables


class FoldKneserNey:
    """``K`` Kneser-Ney models of order ``order``, model ``k`` counted on ``train_ids`` without fold ``k``,
    held as one stacked model (:attr:`model`: fold ``k``'s empty context is context ``k``), so that a
    batch whose rows lie in different folds is scored in one call.

    Args:
        train_ids: the training stream (the one the batches' positions index).
        vocab_size: ``V``.
        order: ``n``, as the full model's.
        folds: ``K >= 2`` contiguous folds of (nearly) equal length.
        workers: threads that count the folds (numpy's sorts release the GIL).
    """

    def __init__(self, train_ids, vocab_size: int, order: int, folds: int, workers: int = 2) -> None:
        if folds < 2:
            raise ValueError(f"cross-fitting needs at least 2 folds, got {folds}")
        ids = np.asarray(train_ids)
        if ids.size < folds:
            raise ValueError(f"{ids.size} training ids cannot be cut into {folds} folds")
        self.vocab_size, self.order, self.context_length = vocab_size, order, order - 1
        self.ids = ids  # the stream the positions index: contexts reach back before a window's start
        self.bounds = np.linspace(0, ids.size, folds + 1).round().astype(np.int64)

        def count(k: int) -> tuple[list[np.ndarray], list[OrderTable]]:
            rest = np.concatenate([ids[: self.bounds[k]], ids[self.bounds[k + 1] :]]).astype(np.int64)
            c = NGramCounts(rest, vocab_size, order)
            return c.context_keys, [build_table(c, i, top=i == order) for i in range(1, order + 1)]

        with ThreadPoolExecutor(max(1, workers)) as pool:
            self.model = _stacked(list(pool.map(count, range(folds))), vocab_size)
            # Each position's context ids, looked up once here rather than at every visit (the lookups
            # were ~5% of a training step): int32, n arrays of the stream's length.
            chunks = np.array_split(np.arange(ids.size), max(1, workers))
            parts = list(pool.map(self._lookup, chunks))
        self.cids = [np.concatenate([part[m] for part in parts]) for m in range(order)]

    @property
    def folds(self) -> int:
        return self.bounds.size - 1

    def fold_of(self, positions: np.ndarray) -> np.ndarray:
        """The fold of each position of the training stream."""
        return np.clip(np.searchsorted(self.bounds, positions, side="right") - 1, 0, self.folds - 1)

    def log_probs(
        self,
        ids: np.ndarray | torch.Tensor,
        starts: np.ndarray | torch.Tensor,
        dtype: torch.dtype = torch.float32,
        by_order: bool = False,
    ) -> torch.Tensor:
        """``(B, T, V)`` ln P(next id | context) for a training batch, each position by its fold's model
        (``by_order``: ``(B, T, n, V)``, every order's, as :meth:`DenseKneserNey.probs_by_order`).

        Args:
            ids: ``(B, T)`` the batch's inputs X (only their shape is read: the stream has them).
            starts: ``(B,)`` where each row starts in the training stream: ``ids[b, t]`` is the id at
                ``starts[b] + t``, and the next id (the one scored, whose fold counts) at one more.
                Each context is read from the stream, so a window's first positions get their whole
                ``n − 1`` ids of context too.
        """
        b, t = ids.shape
        pos = (int_ids(starts)[:, None] + np.arange(t)).reshape(-1)  # where each X id sits
        score = self.model.probs_by_order if by_order else self.model.probs_flat
        out = score(None, None, dtype, cids=[c[pos].astype(np.int64) for c in self.cids]).log_()
        return out.view(b, t, *out.shape[1:])

    def _lookup(self, positions: np.ndarray) -> list[np.ndarray]:
        """The stacked model's context ids (int32, per length m = 0..n-1) of the context ending at each
        position, scored by the model of the fold of the id after it (fold k's root is k)."""
        index = positions[:, None] + np.arange(2 - self.order, 1)  # (N, n-1), oldest first
        context = np.where(index >= 0, self.ids[np.maximum(index, 0)], -1).astype(np.int64)
        cids = self.model.context_ids(context, self.fold_of(positions + 1))
        return [c.astype(np.int32) for c in cids]

    def __deepcopy__(self, _memo) -> FoldKneserNey:
        return self  # read-only tables: a copied model shares them


def _stacked(folds: list[tuple[list[np.ndarray], list[OrderTable]]], v: int) -> DenseKneserNey:
    """One model holding every fold's ``(context keys, order tables)``: fold ``k``'s contexts numbered
    after those of folds ``< k`` (its empty context is ``k``), so a batch is scored in one call whatever
    its rows' folds."""
    order = len(folds[0][1])
    sizes = np.array([[keys[i].size for i in range(order)] for keys, _ in folds])  # (K, n)
    offsets = np.cumsum(sizes, axis=0) - sizes  # contexts of each length in the folds before
    # A context key is (its suffix's id) * V + its oldest id: the suffix ids move by the shorter
    # contexts' offsets.
    context_keys = [np.arange(len(folds), dtype=np.int64)] + [
        np.concatenate([keys[i] + offsets[k, i - 1] * v for k, (keys, _) in enumerate(folds)])
        for i in range(1, order)
    ]
    tables = [stack_tables([t[i] for _, t in folds], list(offsets[:, i]), v) for i in range(order)]
    return DenseKneserNey.from_tables(context_keys, tables, v)
