"""Text -> Vocab -> Corpus (train/val/test id arrays) -> batches (X, Y)."""

from rnnlab.data.batches import (
    consecutive_batch_count,
    consecutive_batches,
    one_hot,
    random_batch_count,
    random_batches,
)
from rnnlab.data.builtin import BUILTIN_CORPORA, builtin_corpus
from rnnlab.data.corpus import SPLITS, Corpus, split_text
from rnnlab.data.text import read_text, read_texts
from rnnlab.data.vocab import UNK, Vocab
from rnnlab.data.words import WordVocab, detokenize, tokenize_words

__all__ = [
    "BUILTIN_CORPORA",
    "SPLITS",
    "UNK",
    "Corpus",
    "Vocab",
    "WordVocab",
    "builtin_corpus",
    "consecutive_batch_count",
    "consecutive_batches",
    "detokenize",
    "one_hot",
    "random_batch_count",
    "random_batches",
    "read_text",
    "read_texts",
    "split_text",
    "tokenize_words",
]
