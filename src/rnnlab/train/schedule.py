"""Learning-rate schedules: decay to zero at the deadline, lower on a plateau, or constant.

Every schedule answers the loop's two calls the same way, whatever it is:

- ``progress(p)`` before each optimiser step, with ``p`` in [0, 1] the share of the run's budget
  spent (the largest of training time / ``--max-time``, steps / ``--max-steps`` and steps / the
  ``--epochs`` steps; None without a budget);
- ``validated(val_loss)`` after each validation.

``deadline`` (Li, Yumer & Ramanan 2020, "Budgeted training: rethinking deep neural network training
under resource constraints"): a linear warm-up over the first ``warmup`` share of the budget, then a
linear decay that reaches zero exactly when the budget runs out::

    lr(p) = lr · p / w                 p < w
    lr(p) = lr · (1 − p) / (1 − w)     p ≥ w

It depends on the progress alone, so a resumed run continues on the same curve. Resuming with a
larger budget re-plans it: the progress is measured against the new budget, so the learning rate
rises to what a run planned with that budget from the start would have now, and decays to zero at
the new deadline.
"""

from __future__ import annotations

import torch

from rnnlab.config import OptimConfig, RunConfig

STALLS_FROM = 0.5  # deadline: the share of the budget after which stalls count toward --patience


class _Schedule:
    """What every schedule does: a multiplier (the non-finite guard's rollbacks) and no state."""

    def __init__(self, optimizer: torch.optim.Optimizer):
        self.optimizer, self.scale = optimizer, 1.0

    def progress(self, p: float | None) -> None:
        pass

    def validated(self, val_loss: float) -> None:
        pass

    def counts_stalls(self, p: float | None) -> bool:
        """Whether a validation that does not improve counts toward early stopping at progress ``p``."""
        return True

    def scaled(self, factor: float) -> None:
        """Multiply the learning rate by ``factor`` from now on (a rollback after non-finite steps)."""
        self.scale *= factor
        for group in self.optimizer.param_groups:
            group["lr"] *= factor

    def state_dict(self) -> dict:
        return {"scale": self.scale}

    def load_state_dict(self, state: dict) -> None:
        self.scale = float(state.get("scale", 1.0))


class ConstantLR(_Schedule):
    """The learning rate never changes (the notes' recipe)."""


class DeadlineLR(_Schedule):
    """Warm-up, then linear decay to zero at the deadline (see the module docstring)."""

    def __init__(self, optimizer: torch.optim.Optimizer, lr: float, warmup: float):
        super().__init__(optimizer)
        self.lr, self.warmup = lr, warmup

    def factor(self, p: float) -> float:
        p = min(max(p, 0.0), 1.0)
        if p < self.warmup:
            return p / self.warmup
        return (1.0 - p) / (1.0 - self.warmup)

    def counts_stalls(self, p: float | None) -> bool:
        """Only in the budget's second half: before it the rate is still high and a plateau is its noise
        floor, which the decay lowers (the built-in corpus, 600 s: the network alone stalled at 1.297
        from 27% of the budget on, and early stopping ended it there)."""
        return p is None or p >= STALLS_FROM

    def progress(self, p: float | None) -> None:
        if p is None:
            return
        lr = self.lr * self.scale * self.factor(p)
        for group in self.optimizer.param_groups:
            group["lr"] = lr


class PlateauLR(_Schedule):
    """Multiply the learning rate by ``factor`` when validation loss has not improved for ``patience``
    validations (torch's ReduceLROnPlateau)."""

    def __init__(self, optimizer: torch.optim.Optimizer, factor: float, patience: int):
        super().__init__(optimizer)
        self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=factor, patience=patience
        )

    def validated(self, val_loss: float) -> None:
        self.plateau.step(val_loss)

    def state_dict(self) -> dict:
        return self.plateau.state_dict()  # the scale lives in the param groups' lr, restored with them

    def load_state_dict(self, state: dict) -> None:
        self.plateau.load_state_dict(state)


def budget_spent(run: RunConfig, step: int, train_time: float, steps_per_epoch: int) -> float | None:
    """The share of the run's budget spent after ``step`` steps and ``train_time`` seconds of training:
    the largest of time / ``max_time``, steps / ``max_steps`` and steps / the ``epochs``' steps, at most
    1 (None: the run has no budget)."""
    shares = []
    if run.max_time is not None:
        shares.append(train_time / run.max_time)
    if run.max_steps is not None:
        shares.append(step / run.max_steps)
    if run.epochs is not None:
        shares.append(step / max(1, run.epochs * steps_per_epoch))
    return min(1.0, max(shares)) if shares else None


def schedule_name(optim: OptimConfig, run: RunConfig) -> str:
    """``auto`` resolved: ``deadline`` when the run has a budget (time, steps or epochs), else
    ``plateau``; ``plateau`` with ``--lr-factor 1`` is ``constant``."""
    name = optim.schedule
    if name == "auto":
        budget = run.max_time is not None or run.max_steps is not None or run.epochs is not None
        name = "deadline" if budget else "plateau"
    return "constant" if name == "plateau" and optim.lr_factor >= 1 else name


def build_schedule(optimizer: torch.optim.Optimizer, optim: OptimConfig, run: RunConfig) -> _Schedule:
    """The schedule ``--schedule`` names (see :func:`schedule_name`)."""
    name = schedule_name(optim, run)
    if name == "deadline":
        return DeadlineLR(optimizer, optim.lr, optim.warmup)
    if name == "plateau":
        return PlateauLR(optimizer, optim.lr_factor, optim.lr_patience)
    return ConstantLR(optimizer)
