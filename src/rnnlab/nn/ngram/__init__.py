"""The n-gram model: interpolated modified Kneser-Ney over ids, counted and scored with numpy.

Every run's baseline, and the n-gram a network may build on (``--ngram residual``: the network learns
a residual over its log-probabilities). ``counts`` numbers every k-gram of the training stream;
``kneser_ney`` smooths them and chooses the order on validation; ``dense`` gives whole next-id
distributions for batches of contexts, with leave-one-out on the text the counts came from; ``folds``
cross-fits them (a training position scored by counts made without its part of the text); ``fit``
makes a run's n-gram (bounded counting, order chosen on validation) and stores it.
"""

from rnnlab.nn.ngram.counts import NGramCounts
from rnnlab.nn.ngram.dense import DenseKneserNey
from rnnlab.nn.ngram.fit import NGramFit, fit_arrays, fit_from_arrays, fit_ngram
from rnnlab.nn.ngram.folds import FoldKneserNey
from rnnlab.nn.ngram.kneser_ney import (
    KneserNeyLM,
    OrderScore,
    OrderSelection,
    discounts,
    select_order,
    select_order_of,
)

__all__ = [
    "DenseKneserNey",
    "FoldKneserNey",
    "KneserNeyLM",
    "NGramCounts",
    "NGramFit",
    "OrderScore",
    "OrderSelection",
    "discounts",
    "fit_arrays",
    "fit_from_arrays",
    "fit_ngram",
    "select_order",
    "select_order_of",
]
