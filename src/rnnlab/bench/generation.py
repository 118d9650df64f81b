"""Part 4: generation chars/s at batch 1 and batch 64 vs the notes' greedy predict().

The model has the notes' size: V of their first 10,000 characters (+ ``<unk>``), one LSTM layer of
256, rnnlab's default embedding encoder, random weights (speed does not depend on them). Timed is
:func:`rnnlab.generate.generate_text` end to end, text out: the prefix "分开" primes the state, then
every step yields one character per sample. ``fast`` is its default step
(:class:`rnnlab.generate.lean.LeanStep`, numpy), ``reference`` calls ``model.forward`` every step.
chars/s counts the characters of all samples.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

import torch

from rnnlab.bench.measure import BenchConfig, interleave, summarize, summary_rows, table
from rnnlab.bench.notes import HIDDEN, notes_text, run_notes
from rnnlab.data import UNK, Vocab
from rnnlab.generate import SamplingConfig, generate_text
from rnnlab.model import LanguageModel

PREFIX = "分开"
GREEDY, SAMPLED = SamplingConfig(greedy=True), SamplingConfig()  # the notes' predict is greedy
# name: (fast, batch, sampling)
CASES = {
    "fast b1 greedy": (True, 1, GREEDY),
    "reference b1 greedy": (False, 1, GREEDY),
    "fast b1 sampled": (True, 1, SAMPLED),
    "fast b64 sampled": (True, 64, SAMPLED),
    "reference b64 sampled": (False, 64, SAMPLED),
}


def generation_speed(
    model: LanguageModel, vocab: Vocab, length: int, cfg: SamplingConfig, num_samples: int, fast: bool
) -> dict:
    """Characters per second of one ``generate_text`` call (all samples together)."""
    start = time.perf_counter()
    for _ in generate_text(model, vocab, PREFIX, length, cfg, num_samples=num_samples, seed=0, fast=fast):
        pass
    return {"chars_per_s": length * num_samples / (time.perf_counter() - start)}


def _notes_predict(cfg: BenchConfig, length: int) -> Callable[[], dict]:
    def sample() -> dict:
        out = run_notes(cfg.notes_script, cfg.corpus, epochs=1, predict=length)
        return {"chars_per_s": out["predict_chars_per_s"], "label": out["label"]}

    return sample


def run(cfg: BenchConfig) -> dict:
    """The notes' predict and each case in interleaved rounds; medians and same-round ratios."""
    rounds = cfg.rounds_or(2, 5)
    length = cfg.pick(400, 2000)  # characters per sample at batch 1; batch 64 runs length // 10 steps
    vocab = Vocab.build(notes_text(cfg.corpus), specials=(UNK,))
    torch.manual_seed(0)
    model = LanguageModel(len(vocab), hidden_size=HIDDEN).eval()
    contenders = {"notes predict b1 greedy": _notes_predict(cfg, cfg.pick(200, 1000))}
    for name, (fast, batch, sampling) in CASES.items():
        steps = length if batch == 1 else length // 10
        contenders[name] = partial(generation_speed, model, vocab, steps, sampling, batch, fast)
        contenders[name]()  # warm-up
    samples = interleave(contenders, rounds)
    summary = summarize(samples, "chars_per_s", anchor="notes predict b1 greedy")
    return {
        "anchor": samples["notes predict b1 greedy"][0].get("label"),
        "model": {"vocab": len(vocab), "hidden_size": HIDDEN, "num_layers": 1, "cell": "lstm"},
        "target": "P4: batch-1 generation >= 20x the notes' predict() chars/s",
        "summary": summary,
        "tables": [
            table(
                f"Generation chars/s, V={len(vocab)}, 1x{HIDDEN} LSTM (median of {rounds} rounds; "
                "ratio: same-round ours / notes' predict)",
                ["contender", "chars/s", "ours / notes", "note"],
                summary_rows(summary, "chars_per_s"),
            )
        ],
    }
