"""The n-gram model: interpolated modified Kneser-Ney over ids, counted and scored with numpy.

Every run's baseline, and the n-gram a network may build on (``--ngram residual``: the network learns
a residual over its log-probabilities). ``counts`` numbers every k-gram of the training stream;
``kneser_ney`` smooths them and chooses the order on validation; ``dense`` gives whole next-id
distributions for batches of contexts, with leave-one-out on the text the counts came from.
"""

from rnnlab.nn.ngram.counts import NGramCounts
from rnnlab.nn.ngram.dense import DenseKneserNey
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
    "KneserNeyLM",
    "NGramCounts",
    "OrderScore",
    "OrderSelection",
    "discounts",
    "select_order",
    "select_order_of",
]
