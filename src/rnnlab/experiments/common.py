"""What the experiments share: a recurrent sequence model, a tiny training helper, results on disk."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from rnnlab.config import CELLS, IMPLS
from rnnlab.errors import RnnlabError
from rnnlab.nn import recurrent_layer
from rnnlab.train.clipping import clip_grad_norm
from rnnlab.train.monitor import GradientMonitor


class SequenceModel(nn.Module):
    """``x (B, T, in)`` floats or ``(B, T)`` ids (with ``vocab_size``) -> recurrent layer -> per-step Linear.

    Args:
        cell: ``"rnn"`` (tanh), ``"gru"``, ``"lstm"``, ``"mingru"`` or ``"minlstm"`` (in their block).
        input_size: features per step (the embedding width when ``vocab_size`` is given).
        hidden_size, output_size: ``H`` and the head's width.
        impl: ``"torch"`` (torch.nn's fused layers) or ``"scratch"`` (rnnlab.nn's, same parameters).
        vocab_size: embed integer ids first.
        bidirectional: read the sequence both ways; the head then sees ``2H`` features.
        forget_bias: the LSTM's initial forget-gate bias (Gers et al. 2000; Jozefowicz et al. 2015: 1 lets
            the cell carry its state from the start); None keeps torch's uniform initialisation.
    """

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        output_size: int,
        impl: str = "torch",
        vocab_size: int | None = None,
        bidirectional: bool = False,
        forget_bias: float | None = None,
    ):
        super().__init__()
        if cell not in CELLS or impl not in IMPLS:
            raise RnnlabError(f"cell must be one of {CELLS} and --impl one of {IMPLS}; got {cell}, {impl}")
        self.embedding = nn.Embedding(vocab_size, input_size) if vocab_size else None
        both_ways = {"bidirectional": True} if bidirectional else {}  # minGRU / minLSTM have no such flag
        self.rnn = recurrent_layer(impl, cell)(input_size, hidden_size, **both_ways)
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), output_size)
        if cell == "lstm" and forget_bias is not None:
            with torch.no_grad():
                for name, param in self.rnn.named_parameters():
                    if name.startswith("bias_"):  # gates i, f, g, o: f is rows H..2H; the sum is the bias
                        param[hidden_size : 2 * hidden_size] = forget_bias if "_ih_" in name else 0.0

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Returns ``(outputs (B, T, out), hidden (B, T, D*H))``."""
        x = self.embedding(x) if self.embedding is not None else x
        output, _ = self.rnn(x.transpose(0, 1))  # (T, B, D*H), time-major
        hidden = output.transpose(0, 1)  # (B, T, D*H)
        return self.head(hidden), hidden


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def train(
    model: SequenceModel,
    batch: Callable[[int], tuple[Tensor, Tensor]],
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    steps: int,
    lr: float,
    clip_norm: float | None = 1.0,
    monitor_every: int | None = None,
    stop: Callable[[list[float]], bool] | None = None,
) -> tuple[list[float], list[dict]]:
    """Adam on ``loss_fn(outputs, targets)`` for up to ``steps`` fresh batches ``batch(step)``.

    Clips the global norm (Pascanu et al. 2013) when ``clip_norm`` is set, as the long-range task papers
    do; ``stop(losses)`` ends training early (e.g. once the task is solved). Returns the per-step losses
    and, with ``monitor_every``, the :class:`GradientMonitor` records.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    monitor = GradientMonitor(model, every=monitor_every) if monitor_every else None
    losses, records = [], []
    model.train()
    for step in range(1, steps + 1):
        x, y = batch(step)
        if monitor is not None:
            monitor.begin_step(step, force=step == 1)  # the first record shows the initial weights
        outputs, _ = model(x)
        loss = loss_fn(outputs, y)
        optimizer.zero_grad(set_to_none=True)
        if monitor is not None:
            monitor.backward(loss, clip_norm)
        else:
            loss.backward()
            if clip_norm is not None:
                clip_grad_norm(model.parameters(), clip_norm)
        optimizer.step()
        if monitor is not None:
            monitor.after_step()
            if (record := monitor.record()) is not None:
                records.append(record)
        losses.append(loss.item())
        if stop is not None and stop(losses):
            break
    if monitor is not None:
        records.append(_final_reading(model, monitor, batch(len(losses) + 1), loss_fn, len(losses)))
        monitor.close()
    return losses, records


def _final_reading(model: nn.Module, monitor: GradientMonitor, xy, loss_fn, step: int) -> dict:
    """One more monitored forward/backward, without an update: the trained model's gradients."""
    monitor.begin_step(step, force=True)
    monitor.backward(loss_fn(model(xy[0])[0], xy[1]))
    model.zero_grad(set_to_none=True)
    return monitor.record()


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch single-threaded inside (also a decorator: ``@one_thread()``).

    The experiments' models are tiny: a step is dozens of small ops, where a second intra-op thread only
    adds synchronisation, and on a busy machine it stalls every op (measured on a 2-core box with one
    core loaded: 8 ms vs 650 ms per tanh-RNN step).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class ExperimentResult:
    """One experiment's outcome: a table, notes, JSON-able extras and the figures it drew.

    Attributes:
        name: the experiment's name (``rnnlab experiment NAME``).
        setting: ``"quick"`` or ``"full"``.
        columns: the table's columns, in order; every row holds them.
        rows: the table's rows.
        notes: lines printed under the table (what was run, how to read it).
        extra: anything else worth keeping in the JSON (curves, hyperparameters).
    """

    name: str
    setting: str
    columns: list[str]
    rows: list[dict]
    notes: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    def table(self) -> str:
        """The rows as a markdown table (floats with 3 significant digits)."""

        def cell(value) -> str:
            return f"{value:.3g}" if isinstance(value, float) else str(value)

        lines = ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(cell(row[c]) for c in self.columns) + " |" for row in self.rows]
        return "\n".join(lines)

    def render_text(self) -> str:
        return "\n".join([f"{self.name} ({self.setting}, {self.seconds:.0f} s)", self.table(), *self.notes])

    def stem(self) -> str:
        return self.name if self.setting == "full" else f"{self.name}-{self.setting}"

    def save(self, out_dir: str | Path, command: str) -> list[Path]:
        """Write ``<stem>.md`` (the command, table, notes, figures) and ``<stem>.json`` into ``out_dir``."""
        out_dir = Path(out_dir)
        md = out_dir / f"{self.stem()}.md"
        figures = "".join(f"\n![{p.stem}]({p.name})\n" for p in self.figures)
        md.write_text(
            f"# {self.name} ({self.setting})\n\n```\n{command}\n```\n\n{self.table()}\n\n"
            + "".join(f"{line}\n" for line in self.notes)
            + figures
            + f"\n{self.seconds:.0f} s on one CPU thread.\n",
            encoding="utf-8",
        )
        data = {
            "name": self.name,
            "setting": self.setting,
            "command": command,
            "seconds": round(self.seconds, 1),
            "rows": self.rows,
            "notes": self.notes,
            "figures": [p.name for p in self.figures],
            **self.extra,
        }
        path = out_dir / f"{self.stem()}.json"
        path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return [md, path]


def pyplot():
    """matplotlib's pyplot on the Agg backend, imported only when a figure is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


class Timer:
    """``with Timer() as t: ...; t.seconds``."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start
