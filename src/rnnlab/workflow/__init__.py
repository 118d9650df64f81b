"""The library's entry points: what each rnnlab command does, as one call from Python.

The command line (rnnlab.cli) maps flags onto these calls and prints what they return.
"""

from rnnlab.workflow.baseline import baseline
from rnnlab.workflow.evaluate import evaluate_run
from rnnlab.workflow.train import RESUMABLE, TrainResult, resolve_config, resume_run, start_run

__all__ = [
    "RESUMABLE",
    "TrainResult",
    "baseline",
    "evaluate_run",
    "resolve_config",
    "resume_run",
    "start_run",
]
