"""A run's n-gram: count the training split (at most ``max_tokens`` of it) and choose the order on val.

One fit serves twice: as the baseline every run is judged against, and as the n-gram a residual model
builds on. Counting a 100 MB corpus whole would take minutes; its first ``max_tokens`` tokens are
counted instead (the fit says so), which keeps the work before the first training step to seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from rnnlab.nn.ngram.counts import NGramCounts
from rnnlab.nn.ngram.dense import DenseKneserNey
from rnnlab.nn.ngram.kneser_ney import OrderSelection, select_order_of


@dataclass(frozen=True)
class NGramFit:
    """What :func:`fit_ngram` made.

    Attributes:
        counts: every k-gram count of the counted text, up to the largest order tried.
        selection: each order's val (and test) loss, and the best order on val.
        order: the order used: the selection's best, or the one asked for.
        counted_all: the counts cover the whole training split, so every training position's own
            event is in them (a residual model then scores training positions leave-one-out).
        seconds: how long counting and choosing took.
    """

    counts: NGramCounts
    selection: OrderSelection
    order: int
    counted_all: bool
    seconds: float

    def dense(self) -> DenseKneserNey:
        """The model of the chosen order, for whole batches of contexts."""
        return DenseKneserNey(self.counts, self.order)


def fit_ngram(
    train: np.ndarray,
    val: np.ndarray,
    vocab_size: int,
    *,
    test: np.ndarray | None = None,
    max_order: int = 7,
    max_tokens: int | None = None,
    order: int = 0,
) -> NGramFit:
    """Count ``train`` (its first ``max_tokens`` ids; None: all) up to ``max_order`` and score orders
    1..max_order on ``val`` (and ``test``, for the record).

    Args:
        order: the order to use; 0 chooses the best on ``val``.

    Raises:
        ValueError: an empty ``val``, or ids outside ``[0, vocab_size)``.
    """
    start = time.perf_counter()
    counted = train if max_tokens is None else train[:max_tokens]
    counts = NGramCounts(counted, vocab_size, max_order)
    selection = select_order_of(counts, val, test=test)
    seconds = time.perf_counter() - start
    return NGramFit(counts, selection, order or selection.order, len(counted) == len(train), seconds)


def fit_arrays(fit: NGramFit) -> dict[str, np.ndarray]:
    """The fit as flat arrays (the counts, then the order used and whether all was counted)."""
    return {**fit.counts.arrays(), "fit": np.array([fit.order, int(fit.counted_all)], dtype=np.int64)}


def fit_from_arrays(arrays: dict[str, np.ndarray]) -> NGramFit:
    """The fit :func:`fit_arrays` wrote, without its selection's scores (not stored).

    Raises:
        KeyError: an array is missing.
    """
    order, counted_all = (int(x) for x in arrays["fit"])
    return NGramFit(NGramCounts.from_arrays(arrays), OrderSelection((), order), order, bool(counted_all), 0.0)
