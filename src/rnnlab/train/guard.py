"""The non-finite guard: skip a step whose loss or gradient is NaN/inf, roll back after several."""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor

from rnnlab.train.clipping import Parameters, grads_finite


@dataclass(frozen=True)
class GuardDecision:
    """What :meth:`NonFiniteGuard.check` asks of the loop.

    ``action`` is ``"step"`` (all finite: step as usual), ``"skip"`` (drop this step's update) or
    ``"rollback"`` (restore the last good state and multiply every learning rate by ``lr_factor``).
    """

    action: str
    reason: str | None = None
    lr_factor: float = 1.0


class NonFiniteGuard:
    """Policy for non-finite losses and gradients: skip the step, and after ``patience`` in a row, roll back.

    One overflow (a long window, an unlucky batch) is survivable: drop that update and go on. Several in
    a row mean the weights or the optimiser's moments are already poisoned, or the learning rate is too
    high for this region; then the loop should restore its last good checkpoint and continue with the
    learning rate times ``lr_factor``. The consecutive count restarts after a rollback request.

    Args:
        patience: consecutive non-finite steps that trigger a rollback (>= 1).
        lr_factor: learning-rate multiplier that goes with a rollback, in (0, 1].
    """

    def __init__(self, patience: int = 3, lr_factor: float = 0.5):
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        if not 0 < lr_factor <= 1:
            raise ValueError(f"lr_factor must be in (0, 1], got {lr_factor}")
        self.patience, self.lr_factor = patience, lr_factor
        self.skipped = 0  # steps skipped so far
        self.consecutive = 0
        self.rollbacks = 0

    def check(
        self,
        loss: Tensor | float,
        grad_norm: Tensor | float | None = None,
        parameters: Parameters | None = None,
    ) -> GuardDecision:
        """Judge one step after backward (and clipping), before ``optimizer.step()``.

        Args:
            loss: the step's loss.
            grad_norm: the total gradient norm if the loop has it (e.g. :func:`clip_grad_norm`'s return).
            parameters: checked with :func:`grads_finite` when no ``grad_norm`` is given.
        """
        reason = None
        loss = float(loss.detach()) if isinstance(loss, Tensor) else float(loss)
        if not math.isfinite(loss):
            reason = f"non-finite loss ({loss})"
        elif grad_norm is not None and not math.isfinite(float(grad_norm)):
            reason = f"non-finite gradient norm ({float(grad_norm)})"
        elif grad_norm is None and parameters is not None and not grads_finite(parameters):
            reason = "non-finite gradient"
        if reason is None:
            self.consecutive = 0
            return GuardDecision("step")
        self.skipped, self.consecutive = self.skipped + 1, self.consecutive + 1
        if self.consecutive >= self.patience:
            self.consecutive, self.rollbacks = 0, self.rollbacks + 1
            return GuardDecision("rollback", f"{reason}, {self.patience} steps in a row", self.lr_factor)
        return GuardDecision("skip", reason)

    def state_dict(self) -> dict:
        return {"skipped": self.skipped, "consecutive": self.consecutive, "rollbacks": self.rollbacks}

    def load_state_dict(self, state: dict) -> None:
        self.skipped, self.consecutive, self.rollbacks = (int(state[k]) for k in self.state_dict())
