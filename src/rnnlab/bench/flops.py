"""Part 3: useful model FLOP/s of a 2x512 LSTM language model as a fraction of the machine's GEMM peak.

Useful FLOPs count the matmuls the model needs, nothing it wastes (a one-hot matmul would count as the
gather it is), for one training step without the optimiser:

    forward = 2·B·T·(4H·(in_l + H)) summed over layers l   (input and hidden projections, LSTM: 4 gates)
            + 2·B·T·H·V                                    (decoder)
    training step = 3 × forward                            (backward: a gradient for the input and one
                                                            for the weight of every matmul)

Gate nonlinearities, the softmax and the embedding gather are left out (O(B·T·H), not O(B·T·H²)).
The anchor is the same machine's fp32 GEMM rate: a 2048 × 2048 × 2048 matmul (2·2048³ FLOPs).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from rnnlab.bench.measure import BenchConfig, interleave, summarize, summary_rows, table
from rnnlab.losses import cross_entropy
from rnnlab.model import LanguageModel

GEMM_N = 2048
LAYERS, HIDDEN, BATCH, STEPS, EMBEDDING = 2, 512, 64, 100, 128
VOCAB = 1028  # the notes' text: 1,027 characters and <unk>


def lstm_lm_flops(vocab: int, embedding: int, hidden: int, layers: int, batch: int, steps: int) -> int:
    """Useful FLOPs of one forward + backward of an LSTM language model (see the module docstring)."""
    inputs = [embedding] + [hidden] * (layers - 1)
    recurrent = sum(2 * batch * steps * 4 * hidden * (n_in + hidden) for n_in in inputs)
    return 3 * (recurrent + 2 * batch * steps * hidden * vocab)


def _gemm() -> Callable[[], dict]:
    a, b = torch.randn(GEMM_N, GEMM_N), torch.randn(GEMM_N, GEMM_N)

    def sample() -> dict:
        start = time.perf_counter()
        torch.mm(a, b)
        return {"flops_per_s": 2 * GEMM_N**3 / (time.perf_counter() - start)}

    return sample


def _train_step(impl: str) -> Callable[[], dict]:
    torch.manual_seed(0)
    model = LanguageModel(VOCAB, impl=impl, hidden_size=HIDDEN, num_layers=LAYERS, embedding_dim=EMBEDDING)
    X, Y = torch.randint(VOCAB, (BATCH, STEPS)), torch.randint(VOCAB, (BATCH, STEPS))
    flops = lstm_lm_flops(VOCAB, EMBEDDING, HIDDEN, LAYERS, BATCH, STEPS)

    def sample() -> dict:
        start = time.perf_counter()
        model.zero_grad(set_to_none=True)
        cross_entropy(model(X).logits, Y).backward()
        return {"flops_per_s": flops / (time.perf_counter() - start)}

    sample()  # warm-up: first-call allocations and kernel selection
    return sample


def run(cfg: BenchConfig) -> dict:
    """GEMM peak and each impl's training-step FLOP/s in interleaved rounds; fractions of the peak."""
    rounds = cfg.rounds_or(1, 3)
    gemm = _gemm()
    gemm()
    contenders = {"gemm": gemm, "torch": _train_step("torch"), "scratch": _train_step("scratch")}
    samples = interleave(contenders, rounds)
    summary = summarize(samples, "flops_per_s", anchor="gemm")
    flops = lstm_lm_flops(VOCAB, EMBEDDING, HIDDEN, LAYERS, BATCH, STEPS)
    return {
        "anchor": f"fp32 GEMM {GEMM_N}x{GEMM_N}x{GEMM_N} (torch.mm), same process, interleaved",
        "model": {"vocab": VOCAB, "embedding_dim": EMBEDDING, "hidden_size": HIDDEN, "num_layers": LAYERS},
        "batch": {"batch_size": BATCH, "num_steps": STEPS},
        "flops_per_step": flops,
        "count": "3 x (sum over layers 2BT*4H*(in+H) + 2BTHV); optimiser step excluded",
        "summary": summary,
        "tables": [
            table(
                f"Useful FLOP/s, 2x{HIDDEN} LSTM LM, B={BATCH}, T={STEPS}, fwd+bwd "
                f"({flops / 1e9:.1f} GFLOP per step; median of {rounds} rounds)",
                ["contender", "GFLOP/s", "fraction of GEMM peak", "note"],
                summary_rows(summary, "flops_per_s", scale=1e-9),
            )
        ],
    }
