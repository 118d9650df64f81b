"""The residual n-gram's settings: their bounds, and what their "auto" values resolve to for a corpus
and a budget."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rnnlab.config import ModelConfig

MAX_NGRAM_ORDER = 7  # the largest n-gram order tried: the baseline's range
NGRAM_GATES = ("orders", "one")  # a weight per n-gram order read from the state, or one weight
# --ngram-gate auto weighs each order up to this vocabulary: the n-gram's work per position is then
# n x V (7 x 512); CJK text (thousands of characters) keeps one weight.
ORDER_GATE_VOCAB = 512
# Cross-fit the n-gram for training (--ngram-folds) up to this many training tokens: 5 folds of 1M
# tokens count in ~3 s on 2 cores; above it, leave-one-out (counting grows with the text).
FOLD_TOKENS = 2_000_000
# The n-gram counts at most NGRAM_TOKENS training tokens (--ngram-tokens 0, the default), and under
# --max-time at most NGRAM_TOKENS_PER_SECOND per second of it (never below MIN_NGRAM_TOKENS): counting
# runs at ~0.9M tokens/s on 2 cores, so on a large corpus it takes about a tenth of a short budget
# (a minute: 6M tokens, ~7 s) and 8M (~9 s, 2.5 GB peak on a 100 MB corpus) from 80 s up.
NGRAM_TOKENS = 8_000_000
NGRAM_TOKENS_PER_SECOND = 100_000
MIN_NGRAM_TOKENS = 1_000_000


def cross_fitted(cfg: ModelConfig, epoch: int) -> bool:
    """Whether pass ``epoch`` (0-based) scores training positions with the cross-fitted n-grams."""
    return bool(cfg.ngram_folds) and (cfg.ngram_fold_passes == 0 or epoch < cfg.ngram_fold_passes)


def ngram_tokens(cfg: ModelConfig, max_time: float | None) -> int:
    """``cfg.ngram_tokens`` with 0 resolved for a budget of ``max_time`` seconds (None: no limit)."""
    if cfg.ngram_tokens:
        return cfg.ngram_tokens
    if max_time is None:
        return NGRAM_TOKENS
    return int(min(NGRAM_TOKENS, max(MIN_NGRAM_TOKENS, NGRAM_TOKENS_PER_SECOND * max_time)))


def ngram_gate(cfg: ModelConfig, vocab_size: int) -> str:
    """``cfg.ngram_gate`` with ``auto`` resolved for a vocabulary of ``vocab_size`` ids."""
    if cfg.ngram_gate != "auto":
        return cfg.ngram_gate
    return "orders" if vocab_size <= ORDER_GATE_VOCAB else "one"
