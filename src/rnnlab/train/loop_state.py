"""Where the training loop is: its position, best score and running sums, as a checkpoint stores them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

INTERRUPTED = "interrupted"  # the stop reason of a run stopped by a signal (resumable)


@dataclass
class LoopState:
    """Where the loop is: everything besides tensors that a checkpoint must restore."""

    epoch: int = 0
    batch: int = 0  # batches done in the current epoch
    step: int = 0
    chars_seen: int = 0
    train_time: float = 0.0  # seconds spent in training steps (evaluation excluded)
    best_val_loss: float = math.inf
    best_step: int = 0
    bad_evals: int = 0  # validations since the best one (early stopping)
    run_loss_sum: float = 0.0  # running train loss since the last validation
    run_count: int = 0
    run_terms: dict = field(default_factory=dict)  # running sums of each penalty term
    baseline_val_loss: float | None = None  # the n-gram baseline's, for comparison
    test_loss: float | None = None
    last_eval_step: int = -1
    stop_reason: str | None = None
