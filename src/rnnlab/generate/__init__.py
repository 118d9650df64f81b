"""Generation: prime a model's state with a prefix, then sample one id at a time (greedy, top-k, top-p)."""

from rnnlab.generate.lean import LeanStep
from rnnlab.generate.sampling import SamplingConfig, draw, next_ids
from rnnlab.generate.stream import generate_text, sample_ids, unigram_probs

__all__ = [
    "LeanStep",
    "SamplingConfig",
    "draw",
    "generate_text",
    "next_ids",
    "sample_ids",
    "unigram_probs",
]
