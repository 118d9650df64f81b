"""The copy-memory task (Arjovsky et al. 2016; Bai et al. 2018): recall 10 symbols after T blank steps."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnlab.experiments.common import ExperimentResult, one_thread
from rnnlab.experiments.longrange import Setting, Task, run_task

NAME = "copy"
DESCRIPTION = "copy memory: tanh RNN vs GRU vs LSTM vs minGRU/minLSTM recalling 10 symbols after T blanks"
SYMBOLS, CATEGORIES = 10, 8  # ids 1..8 are symbols; 0 is the blank, 9 the delimiter
BLANK, DELIMITER = 0, CATEGORIES + 1
SOLVED_FRACTION = 0.1  # solved: cross-entropy below a tenth of the memoryless baseline


def copy_batch(batch_size: int, delay: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``(x, y)`` id sequences of length ``delay + 20``, laid out as::

    x: s1 .. s10 | blank x (T-1) | delimiter | blank x 10
    y: blank x (T + 10)                      | s1 .. s10
    """
    symbols = torch.randint(1, CATEGORIES + 1, (batch_size, SYMBOLS), generator=generator)
    x = torch.full((batch_size, delay + 2 * SYMBOLS), BLANK)
    y = torch.full_like(x, BLANK)
    x[:, :SYMBOLS], x[:, delay + SYMBOLS - 1] = symbols, DELIMITER
    y[:, -SYMBOLS:] = symbols
    return x, y


def all_steps_cross_entropy(outputs: Tensor, y: Tensor) -> Tensor:
    """Cross-entropy in nats averaged over every step, blanks included (as Bai et al. 2018 report it)."""
    return F.cross_entropy(outputs.reshape(-1, outputs.shape[-1]), y.reshape(-1))


def baseline(delay: int) -> float:
    """Blanks predicted perfectly, the 10 symbols guessed uniformly: 10 ln 8 / (T + 20)."""
    return SYMBOLS * math.log(CATEGORIES) / (delay + 2 * SYMBOLS)


TASK = Task(
    name=NAME,
    input_size=CATEGORIES + 2,
    output_size=CATEGORIES + 1,
    make_batch=copy_batch,
    loss=all_steps_cross_entropy,
    baseline=baseline,
    solved_below=lambda delay: SOLVED_FRACTION * baseline(delay),
    quick=Setting(lengths=(10,), steps=400, hidden_size=64),
    full=Setting(lengths=(20, 50, 100), steps=3000, hidden_size=64, monitor_every=100),
    description="Test loss is cross-entropy (nats) over all T+20 steps; the baseline 10 ln 8/(T+20) knows "
    f"the blanks but remembers nothing (Bai et al. 2018); solved means < {SOLVED_FRACTION:g} x baseline.",
    vocab_size=CATEGORIES + 2,
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
    """Train each cell on the copy task at each delay T and test it on 1000 fresh sequences.

    Args:
        quick: T=10 with 400 steps; else T in {20, 50, 100} with up to 3000 steps each.
        seed: seeds the weights and the data.
        out: where to save the figure; None draws nothing.
        impl: ``"torch"`` (fast) or ``"scratch"`` (rnnlab.nn's layers).
        lengths, steps: override the setting's delays and step budget (a full run so overridden is
            labelled "reduced").
    """
    return run_task(TASK, quick, seed, out, impl, lengths, steps)
