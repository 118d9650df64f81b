"""The adding problem (Hochreiter & Schmidhuber 1997): add two marked numbers seen up to T steps ago."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from rnnlab.experiments.common import ExperimentResult, one_thread
from rnnlab.experiments.longrange import Setting, Task, run_task

NAME = "adding"
DESCRIPTION = "adding problem: tanh RNN vs GRU vs LSTM vs minGRU/minLSTM at growing T, with dL/dh_t curves"
SOLVED = 0.04  # test MSE counted as solved (a quarter of the input-blind baseline's error)
BASELINE = 1 / 6  # always answering 1.0: Var(u_i + u_j) for two U(0, 1) numbers = 2/12


def adding_batch(batch_size: int, length: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``x (B, T, 2)``: channel 0 numbers ~ U(0, 1), channel 1 marks one step in each half; ``y`` their sum.

    Two markers, one in each half of the sequence (the variant of Arjovsky et al. 2016 and Bai et al.
    2018), so the first number must be held for at least T/2 steps.
    """
    values = torch.rand(batch_size, length, generator=generator)
    half, rows = length // 2, torch.arange(batch_size)
    markers = torch.zeros(batch_size, length)
    markers[rows, torch.randint(0, half, (batch_size,), generator=generator)] = 1.0
    markers[rows, torch.randint(half, length, (batch_size,), generator=generator)] = 1.0
    return torch.stack([values, markers], dim=-1), (values * markers).sum(dim=1)


def last_step_mse(outputs: Tensor, y: Tensor) -> Tensor:
    """The answer is read at the last step only."""
    return ((outputs[:, -1, 0] - y) ** 2).mean()


TASK = Task(
    name=NAME,
    input_size=2,
    output_size=1,
    make_batch=adding_batch,
    loss=last_step_mse,
    baseline=lambda length: BASELINE,
    solved_below=lambda length: SOLVED,
    quick=Setting(lengths=(50,), steps=800),
    full=Setting(lengths=(50, 100, 200, 400), steps=3000, monitor_every=100),
    description=f"Test loss is the MSE of the answer; the baseline (always answer 1.0) is 1/6; solved means "
    f"< {SOLVED}.",
)


@one_thread()
def run(
    quick: bool = False,
    seed: int = 0,
    out: Path | None = None,
    impl: str = "torch",
    lengths: tuple[int, ...] | None = None,
    steps: int | None = None,
) -> ExperimentResult:
    """Train each cell on the adding problem at each length T and test it on 1000 fresh sequences.

    Args:
        quick: T=50 with up to 800 steps (well under a minute on two CPU cores); else T in {50, 100,
            200, 400} with up to 3000 steps each.
        seed: seeds the weights and the data.
        out: where to save the figure; None draws nothing.
        impl: ``"torch"`` (fast) or ``"scratch"`` (rnnlab.nn's layers).
        lengths, steps: override the setting's (a full run so overridden is labelled "reduced").
    """
    return run_task(TASK, quick, seed, out, impl, lengths, steps)
