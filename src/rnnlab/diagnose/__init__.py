"""Diagnosis of a run: the fit verdict (under/over-fitting) and the gradient verdict, with their evidence."""

from rnnlab.diagnose.fit import FitEvidence, FitVerdict, Remedy, fit_verdict, render_text

__all__ = [
    "FitEvidence",
    "FitVerdict",
    "Remedy",
    "fit_verdict",
    "render_text",
]
