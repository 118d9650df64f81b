"""Diagnose a run from its metrics.jsonl: the fit and gradient verdicts and their pictures."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from rnnlab.diagnose.fit import IMPROVING, UNDER_FITTING, FitVerdict, fit_verdict
from rnnlab.diagnose.fit import render_text as render_fit
from rnnlab.diagnose.gradients import GradientVerdict, grad_records, gradient_verdict, plot_dldh_heatmap


@dataclass(frozen=True)
class Diagnosis:
    """Everything `rnnlab diagnose` reports (``gradients`` is None when the run logged no readings)."""

    fit: FitVerdict
    gradients: GradientVerdict | None
    baseline_val_loss: float | None
    divergence: dict  # counts of skipped steps, rollbacks and unsaved non-finite models
    plots: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {
            "fit": dataclasses.asdict(self.fit),
            "gradients": dataclasses.asdict(self.gradients) if self.gradients else None,
            "baseline_val_loss": self.baseline_val_loss,
            "divergence": self.divergence,
            "plots": list(self.plots),
        }

    def render_text(self) -> str:
        text = "fit: " + render_fit(self.fit)
        if self.gradients is not None:
            text += "\n" + self.gradients.render_text()
        d = self.divergence
        if any(d.values()):
            text += (
                f"\ndivergence: {d['skip'] + d['rollback']} non-finite steps skipped, {d['rollback']} "
                f"rollbacks to the last checkpoint with a lower lr, {d['save_skipped']} saves of a "
                "non-finite model refused (try a lower --lr or --clip-norm)"
            )
        return text


def baseline_val_loss(records: list[dict]) -> float | None:
    """The n-gram baseline's validation loss, if the run scored it."""
    for r in records:
        if r.get("event") == "baseline":
            return r.get("val_loss")
    return None


def diagnose(records: list[dict], plot_dir: str | Path | None = None, cell: str | None = None) -> Diagnosis:
    """The verdicts for a run's records; with ``plot_dir``, also write the PNGs there.

    Args:
        records: the run's metrics.jsonl records.
        plot_dir: where ``learning_curves.png`` and ``dldh_heatmap.png`` go (None: no pictures).
        cell: the run's cell type, so the gradient remedies do not suggest the cell it already has.
    """
    baseline = baseline_val_loss(records)
    fit = fit_verdict(records, baseline=baseline)
    # A model whose validation loss still falls, or that fits beyond under-fitting, is learning: a
    # gradient that fades over the window does not hurt it (see gradient_verdict).
    learning = fit.verdict != UNDER_FITTING or fit.evidence.val_trend <= -IMPROVING
    best = fit.evidence.best_val_loss
    ahead = (best, baseline) if baseline and math.isfinite(best) else None
    grads = (
        gradient_verdict(records, cell=cell, learning=learning, ahead=ahead)
        if grad_records(records)
        else None
    )
    plots: list[str] = []
    if plot_dir is not None:
        from rnnlab.diagnose.plots import plot_learning_curves

        plot_dir = Path(plot_dir)
        plots.append(
            str(plot_learning_curves(records, plot_dir / "learning_curves.png", baseline, fit.since_step))
        )
        if any("dldh" in r for r in grad_records(records)):
            plots.append(str(plot_dldh_heatmap(records, plot_dir / "dldh_heatmap.png")))
    divergence = {e: sum(r.get("event") == e for r in records) for e in ("skip", "rollback", "save_skipped")}
    return Diagnosis(fit, grads, baseline, divergence, tuple(plots))
