"""Training: the loop, evaluation, checkpoints, metrics and optimisers."""

from rnnlab.train.checkpoint import load_checkpoint, save_checkpoint
from rnnlab.train.evaluate import evaluate_loss
from rnnlab.train.loop import LoopState, Trainer
from rnnlab.train.metrics import MetricsLog, read_metrics

__all__ = [
    "LoopState",
    "MetricsLog",
    "Trainer",
    "evaluate_loss",
    "load_checkpoint",
    "read_metrics",
    "save_checkpoint",
]
