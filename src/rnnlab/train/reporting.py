"""Where a run's words go: metrics.jsonl, the progress bar, and one-line messages on stderr."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from rnnlab.losses import loss_readings
from rnnlab.train.metrics import MetricsLog


class Sink(Protocol):
    """Something else that hears every record written to metrics.jsonl (e.g. the TensorBoard sink)."""

    def write(self, event: str, values: dict) -> None: ...

    def close(self) -> None: ...


PROGRESS_EVERY = 10.0  # seconds between progress lines when stderr is not a terminal


class Reporter:
    """The metrics log plus what a person watches: on a terminal a tqdm bar; elsewhere (CI, nohup, a
    pipe) one progress line every :data:`PROGRESS_EVERY` seconds, not a redraw every 0.1 s.

    Args:
        metrics_path: the run's metrics.jsonl.
        truncate_to: on resume, the log's size at the checkpoint (see :class:`MetricsLog`).
        progress: show progress on stderr.
        total, initial: the bar's total steps (None: unknown) and starting step.
        log: where lines go when there is no bar (default: stderr).
        sinks: also given every record (none by default: a run that asks for none pays nothing).
    """

    def __init__(
        self,
        metrics_path: str | Path,
        truncate_to: int | None,
        progress: bool,
        total: int | None,
        initial: int,
        log: Callable[[str], None] | None = None,
        sinks: Sequence[Sink] = (),
    ):
        self.metrics = MetricsLog(metrics_path, truncate_to=truncate_to)
        self.sinks = tuple(sinks)
        self._log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self._bar = None
        self._lines = progress and not sys.stderr.isatty()  # plain lines instead of a bar
        self._step, self._total, self._last_line = initial, total, time.monotonic()
        if progress and not self._lines:
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=initial, unit="step", file=sys.stderr, dynamic_ncols=True)

    def write(self, event: str, **values) -> None:
        self.metrics.write(event, **values)
        for sink in self.sinks:
            sink.write(event, values)

    def size(self) -> int:
        return self.metrics.size()

    def say(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=sys.stderr)
        else:
            self._log(line)

    def step(self, loss: float, chars_per_s: float) -> None:
        self._step += 1
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(
                loss=f"{loss:.3f}", ppl=f"{math.exp(min(loss, 50)):.1f}", chars_s=f"{chars_per_s:.0f}"
            )
        elif self._lines and time.monotonic() - self._last_line >= PROGRESS_EVERY:
            self._last_line = time.monotonic()
            of = f"/{self._total}" if self._total else ""
            self._log(f"step {self._step}{of}  loss {loss:.3f}  {chars_per_s:,.0f} tokens/s")

    def close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def close(self) -> None:
        self.close_bar()
        self.metrics.close()
        for sink in self.sinks:
            sink.close()


def write_validation(
    report: Reporter, state, train_loss: float, val_loss: float, lr: float, chars_per_s: float, unit: str
) -> None:
    """The "train" (running loss since the last validation, lr, speed, penalties) and "val" records;
    before the first step there is no train loss and only "val" is written."""
    s = state
    common = {"step": s.step, "epoch": s.epoch, "chars_seen": s.chars_seen}
    penalties = {f"penalty_{k}": v / s.run_count for k, v in s.run_terms.items() if s.run_count}
    if s.step > 0:
        report.write(
            "train",
            **common,
            **loss_readings(train_loss, unit),
            lr=lr,
            chars_per_s=chars_per_s,
            train_time=s.train_time,
            **penalties,
        )
    report.write("val", **common, **loss_readings(val_loss, unit))


def validation_line(state, train_loss: float, val_loss: float, improved: bool, lr: float) -> str:
    """The line a person reads at each validation (``*``: a new best)."""
    s = state
    base = f", n-gram {math.exp(s.baseline_val_loss):.2f}" if s.baseline_val_loss is not None else ""
    return (
        f"step {s.step:>6}  epoch {s.epoch}  train loss {train_loss:.3f}  val loss {val_loss:.3f} "
        f"(ppl {math.exp(min(val_loss, 50)):.2f}{base}){'  *' if improved else ''}  lr {lr:.2g}"
    )


def run_summary(
    state,
    run_path: Path,
    chars_per_s: float,
    wall_s: float,
    guard,
    unit: str = "char",
    parts: dict | None = None,
    adaptive: dict | None = None,
) -> dict:
    """The one-line summary of a run (``rnnlab train --json`` prints it).

    Args:
        unit: the token kind (``char`` or ``word``).
        parts: a residual model's best scores in parts, per split (``network``, ``ngram``).
        adaptive: adaptive evaluation's ``val`` and ``test`` losses.
    """
    s = state
    best = loss_readings(s.best_val_loss, unit) if math.isfinite(s.best_val_loss) else {}
    test = loss_readings(s.test_loss, unit) if s.test_loss is not None else {}
    summary = {
        "run_dir": str(run_path),
        "stop_reason": s.stop_reason,
        "steps": s.step,
        "epochs": s.epoch,
        "chars_seen": s.chars_seen,
        "train_chars_per_s": round(chars_per_s, 1),
        "train_time_s": round(s.train_time, 2),
        "wall_s": round(wall_s, 2),
        "best_step": s.best_step,
        "best_val_loss": best.get("loss"),
        "best_val_ppl": best.get("ppl"),
        "best_val_bpc": best.get("bpc"),
        "test_loss": test.get("loss"),
        "test_ppl": test.get("ppl"),
        "test_bpc": test.get("bpc"),
        "baseline_val_ppl": math.exp(s.baseline_val_loss) if s.baseline_val_loss is not None else None,
        "skipped_steps": guard.skipped,
        "rollbacks": guard.rollbacks,
    }
    for split, scores in (parts or {}).items():  # a residual model: the network alone, the n-gram alone
        summary[f"network_{split}_loss"], summary[f"ngram_{split}_loss"] = scores["network"], scores["ngram"]
    if adaptive is not None:
        summary["adaptive_val_ppl"] = math.exp(adaptive["val"])
        summary["adaptive_test_ppl"] = math.exp(adaptive["test"]) if adaptive["test"] else None
    return summary
