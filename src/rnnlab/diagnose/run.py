"""Diagnose a run from its metrics.jsonl: the fit verdict and its learning-curve picture."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from rnnlab.diagnose.fit import FitVerdict, fit_verdict
from rnnlab.diagnose.fit import render_text as render_fit

# Remedy flags name only what `rnnlab train` accepts (checked by tests/test_diagnose.py).


@dataclass(frozen=True)
class Diagnosis:
    """Everything `rnnlab diagnose` reports."""

    fit: FitVerdict
    baseline_val_loss: float | None
    plots: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {
            "fit": dataclasses.asdict(self.fit),
            "baseline_val_loss": self.baseline_val_loss,
            "plots": list(self.plots),
        }

    def render_text(self) -> str:
        return "fit: " + render_fit(self.fit)


def baseline_val_loss(records: list[dict]) -> float | None:
    """The n-gram baseline's validation loss, if the run scored it."""
    for r in records:
        if r.get("event") == "baseline":
            return r.get("val_loss")
    return None


def diagnose(records: list[dict], plot_dir: str | Path | None = None) -> Diagnosis:
    """The verdicts for a run's records; with ``plot_dir``, also write ``learning_curves.png`` there."""
    baseline = baseline_val_loss(records)
    fit = fit_verdict(records, baseline=baseline)
    plots: list[str] = []
    if plot_dir is not None:
        from rnnlab.diagnose.plots import plot_learning_curves

        path = plot_learning_curves(records, Path(plot_dir) / "learning_curves.png", baseline, fit.since_step)
        plots.append(str(path))
    return Diagnosis(fit, baseline, tuple(plots))
