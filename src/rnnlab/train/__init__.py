"""Training: the loop, one optimiser step, gradients (clipping, the monitor, the non-finite guard),
checkpoints, the metrics log, and held-out evaluation."""

from rnnlab.train.average import WeightAverage
from rnnlab.train.checkpoint import load_checkpoint, save_checkpoint
from rnnlab.train.clipping import clip_grad_norm, clip_grad_value, total_grad_norm
from rnnlab.train.evaluate import evaluate_loss
from rnnlab.train.guard import NonFiniteGuard
from rnnlab.train.loop import LoopState, Trainer
from rnnlab.train.metrics import MetricsLog, read_metrics
from rnnlab.train.monitor import GradientMonitor
from rnnlab.train.optim import build_optimizer
from rnnlab.train.order import BatchOrder
from rnnlab.train.schedule import build_schedule
from rnnlab.train.step import Stepper

__all__ = [
    "BatchOrder",
    "GradientMonitor",
    "LoopState",
    "MetricsLog",
    "NonFiniteGuard",
    "Stepper",
    "Trainer",
    "WeightAverage",
    "build_optimizer",
    "build_schedule",
    "clip_grad_norm",
    "clip_grad_value",
    "evaluate_loss",
    "load_checkpoint",
    "read_metrics",
    "save_checkpoint",
    "total_grad_norm",
]
