"""Synthetic long-range tasks run the same way: every cell at every length, then a table and a figure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor

from rnnlab.diagnose.gradients import gradient_verdict
from rnnlab.experiments.common import (
    CELLS,
    ExperimentResult,
    SequenceModel,
    Timer,
    parameter_count,
    pyplot,
    train,
)


@dataclass(frozen=True)
class Setting:
    """How long and how big: one setting is ``--quick``, one is the full run."""

    lengths: tuple[int, ...]
    steps: int  # step budget per (cell, length); training stops early once the task is solved
    batch_size: int = 64
    hidden_size: int = 32
    lr: float = 0.02
    test_size: int = 1000
    monitor_every: int = 50


@dataclass(frozen=True)
class Task:
    """A synthetic sequence task (the adding problem, the copy memory).

    Attributes:
        name: the experiment's name.
        input_size: features per input step (float input), or the embedding width when ``vocab_size``.
        output_size: the head's width.
        make_batch: ``(batch_size, length, generator) -> (x, y)``.
        loss: ``(outputs (B, T', out), y) -> scalar``; also the test metric.
        baseline: the loss of the best input-blind answer at a length (what "learnt nothing" scores).
        solved_below: the test loss that counts as solved at a length.
        vocab_size: integer input ids (embedded) instead of float features.
        quick, full: the two settings.
        description: how the loss is measured and what the baseline is, for the report.
    """

    name: str
    input_size: int
    output_size: int
    make_batch: Callable[[int, int, torch.Generator], tuple[Tensor, Tensor]]
    loss: Callable[[Tensor, Tensor], Tensor]
    baseline: Callable[[int], float]
    solved_below: Callable[[int], float]
    quick: Setting
    full: Setting
    description: str
    vocab_size: int | None = None


def run_grid(task: Task, setting: Setting, seed: int, impl: str, cells=CELLS) -> tuple[list[dict], dict]:
    """Train and test every cell at every length. Returns the table rows and the dL/dh_t curves.

    Cells share the hidden size (so the LSTM has about 4x and the GRU 3x the tanh RNN's recurrent
    weights; the table lists the counts), the seed, the data and the step budget.
    """
    rows, curves = [], {}
    for length in setting.lengths:
        test_x, test_y = task.make_batch(
            setting.test_size, length, torch.Generator().manual_seed(1_000_003 + seed)
        )
        target = task.solved_below(length)
        for cell in cells:
            torch.manual_seed(seed)
            generator = torch.Generator().manual_seed(seed)
            model = SequenceModel(
                cell,
                task.input_size,
                setting.hidden_size,
                task.output_size,
                impl=impl,
                vocab_size=task.vocab_size,
                forget_bias=1.0,  # Gers et al. 2000: the LSTM starts out remembering
            )
            with Timer() as timer:
                losses, records = train(
                    model,
                    lambda step, n=length, g=generator: task.make_batch(setting.batch_size, n, g),
                    task.loss,
                    setting.steps,
                    setting.lr,
                    monitor_every=setting.monitor_every,
                    stop=lambda losses, t=target: len(losses) >= 20 and sum(losses[-20:]) / 20 < t / 4,
                )
            model.eval()
            with torch.no_grad():
                test = float(task.loss(model(test_x)[0], test_y))
            rows.append(
                {
                    "T": length,
                    "cell": cell,
                    "params": parameter_count(model),
                    "steps": len(losses),
                    "test loss": test,
                    "baseline": task.baseline(length),
                    "solved": test < target,
                    "gradients": gradient_verdict(records[-1:], cell).kind,  # of the trained model
                    "seconds": round(timer.seconds, 1),
                }
            )
            curves[f"{cell}/T={length}"] = [
                {"step": r["step"], "dldh": r["dldh"]} for r in records if "dldh" in r
            ]
    return rows, curves


def plot(task: Task, rows: list[dict], curves: dict, path: Path) -> Path:
    """Left: test loss against length per cell, with the baseline. Right: dL/dh_t at the longest length."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    lengths = sorted({r["T"] for r in rows})
    cells = list(dict.fromkeys(r["cell"] for r in rows))
    for i, cell in enumerate(cells):
        mine = [r for r in rows if r["cell"] == cell]
        left.plot([r["T"] for r in mine], [r["test loss"] for r in mine], "o-", color=f"C{i}", label=cell)
    left.plot(lengths, [task.baseline(n) for n in lengths], "k--_", markersize=30, label="baseline")
    left.plot(lengths, [task.solved_below(n) for n in lengths], "k:_", markersize=30, label="solved below")
    left.set(xlabel="T", ylabel="test loss", yscale="log", title=f"{task.name}: test loss")
    left.legend()
    longest = lengths[-1]
    for i, cell in enumerate(cells):
        found = curves.get(f"{cell}/T={longest}") or []
        for r, style in zip([*found[:1], *found[1:][-1:]], (":", "-")):
            values = [max(float(v), 1e-30) for v in r["dldh"]]
            right.plot(values, style, color=f"C{i}", label=f"{cell}, step {r['step']}")
    right.set(
        xlabel="t",
        ylabel="‖∂ℓ_T/∂x_t‖ (0 drawn at 1e-30)",
        yscale="log",
        title=f"gradient reaching step t from the last loss (T={longest})",
    )
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def summary_notes(task: Task, rows: list[dict]) -> list[str]:
    """One line per length: which cells solved it."""
    notes = []
    for length in dict.fromkeys(r["T"] for r in rows):
        mine = [r for r in rows if r["T"] == length]
        solved = [r["cell"] for r in mine if r["solved"]] or ["none"]
        notes.append(
            f"T={length}: solved (test loss < {task.solved_below(length):.3g}) by {', '.join(solved)}; "
            f"baseline {task.baseline(length):.3g}"
        )
    return notes


def run_task(
    task: Task,
    quick: bool,
    seed: int,
    out: Path | None,
    impl: str,
    lengths: tuple[int, ...] | None,
    steps: int | None,
) -> ExperimentResult:
    """The whole experiment for one task: the grid, the table, the notes and (with ``out``) the figure.

    Overriding ``lengths`` or ``steps`` labels the result ``"reduced"`` rather than ``"full"``.
    """
    setting = task.quick if quick else task.full
    label = "quick" if quick else "full"
    if lengths or steps:
        setting = replace(setting, lengths=lengths or setting.lengths, steps=steps or setting.steps)
        label = "quick" if quick else "reduced"
    with Timer() as timer:
        rows, curves = run_grid(task, setting, seed, impl)
    s = setting
    result = ExperimentResult(
        task.name,
        label,
        ["T", "cell", "params", "steps", "test loss", "baseline", "solved", "gradients", "seconds"],
        rows,
        notes=[
            *summary_notes(task, rows),
            f"{task.description} Hidden size {s.hidden_size} for every cell (so parameter counts differ), "
            f"Adam lr {s.lr}, batch {s.batch_size}, clip-norm 1, up to {s.steps} steps per model (stopping "
            f"early once the running train loss is a quarter of the solved threshold), LSTM forget-gate "
            f"bias 1, test on {s.test_size} held-out sequences, seed {seed}, impl {impl}.",
            "gradients: rnnlab's gradient verdict on the trained model's monitor reading: vanishing when "
            "the last answer's gradient at t=0 is below 1e-3 of its value at the last step.",
        ],
        extra={"setting": s.__dict__, "dldh": curves},
        seconds=timer.seconds,
    )
    if out is not None:
        result.figures.append(plot(task, rows, curves, Path(out) / f"{result.stem()}.png"))
    return result
