"""Generation: prime a model's state with a prefix, then sample one id at a time (greedy, top-k, top-p),
or search for the likeliest continuation (beam search)."""

from rnnlab.generate.beam import Beam, beam_search, beam_steps, beam_text
from rnnlab.generate.lean import LeanStep
from rnnlab.generate.sampling import SamplingConfig, draw, next_ids
from rnnlab.generate.stream import generate_text, sample_ids, unigram_probs

__all__ = [
    "Beam",
    "LeanStep",
    "SamplingConfig",
    "beam_search",
    "beam_steps",
    "beam_text",
    "draw",
    "generate_text",
    "next_ids",
    "sample_ids",
    "unigram_probs",
]
