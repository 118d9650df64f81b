"""Diagnosis of a run: the fit verdict (under/over-fitting) and the n-gram baseline it is judged against."""

from rnnlab.diagnose.fit import FitEvidence, FitVerdict, Remedy, fit_verdict, render_text
from rnnlab.diagnose.ngram import KneserNeyLM, NGramCounts, OrderScore, OrderSelection, select_order

__all__ = [
    "FitEvidence",
    "FitVerdict",
    "KneserNeyLM",
    "NGramCounts",
    "OrderScore",
    "OrderSelection",
    "Remedy",
    "fit_verdict",
    "render_text",
    "select_order",
]
