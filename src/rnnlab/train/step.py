"""One optimiser step: forward, loss and penalty terms, monitored backward and clip, guard, update."""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass

import torch

from rnnlab.config import TrainConfig
from rnnlab.device import autocast, resolve_precision
from rnnlab.losses import cross_entropy, regularization_terms
from rnnlab.nn.state import State
from rnnlab.train.average import WeightAverage
from rnnlab.train.distributed import OneProcess
from rnnlab.train.guard import GuardDecision, NonFiniteGuard
from rnnlab.train.monitor import GradientMonitor
from rnnlab.train.optim import build_optimizer
from rnnlab.train.schedule import build_schedule


@dataclass
class StepResult:
    """What one step did.

    Attributes:
        loss: the cross-entropy of the global batch, in nats (nan/inf when the step went non-finite).
        terms: each active penalty term's value (already scaled by its coefficient).
        state: the recurrent state after the window (to carry into the next one).
        decision: the guard's: ``"step"`` (the update was applied), ``"skip"`` or ``"rollback"``.
        record: the gradient monitor's readings on sampled steps, else None.
    """

    loss: float
    terms: dict[str, float]
    state: State
    decision: GuardDecision
    record: dict | None


class Stepper:
    """The optimiser, its schedule, the gradient monitor, the non-finite guard and the weight average of
    one run.

    It knows models, losses and gradients, never the data order or the run directory: the loop feeds it
    batches and keeps its state in checkpoints through :meth:`state_dict`.

    Args:
        model: the plain model (its parameters are optimised, clipped and monitored).
        cfg: the run's configuration (optimiser, penalties, clipping, monitor, precision).
        device: where batches go.
        dist: this process's share of a torchrun run; it wraps ``model`` for the forward.
    """

    def __init__(self, model: torch.nn.Module, cfg: TrainConfig, device: torch.device, dist: OneProcess):
        self.model, self.cfg, self.device, self.dist = model, cfg, device, dist
        self.forward_model = dist.wrap(model)  # DistributedDataParallel under torchrun
        self.optimizer = build_optimizer(model, cfg.optim)
        self.schedule = build_schedule(self.optimizer, cfg.optim, cfg.run)
        # --monitor-every 0 turns the monitor off: it then never samples a step.
        self.monitor = GradientMonitor(model, every=cfg.run.monitor_every or sys.maxsize)
        self.guard = NonFiniteGuard()
        self.precision = resolve_precision(cfg.run.precision, device)
        self.average = WeightAverage(model, cfg.optim.ema) if cfg.optim.ema else None

    def __call__(
        self,
        X: torch.Tensor,
        Y: torch.Tensor,
        state: State | None,
        step: int,
        progress: float | None = None,
        starts: torch.Tensor | None = None,
    ) -> StepResult:
        """Train on the global batch ``(X, Y)`` from ``state`` as step number ``step`` (1-based), with
        ``progress`` the share of the budget spent so far (see :mod:`rnnlab.train.schedule`) and
        ``starts`` where the rows start in the training split (a cross-fitted n-gram reads it)."""
        o, reg = self.cfg.optim, self.cfg.reg
        self.schedule.progress(progress)
        X, Y = self.dist.rows(X), self.dist.rows(Y)  # under torchrun, this process's rows
        starts = None if starts is None else self.dist.rows(starts)
        X, Y = X.to(self.device, non_blocking=True), Y.to(self.device, non_blocking=True)
        self.monitor.begin_step(step)
        with autocast(self.device, self.precision):
            # A residual model scores the n-gram without each position's fold (or its own event).
            out = self.forward_model(X, state, targets=Y, starts=starts)
        loss = cross_entropy(out.logits, Y)
        terms = regularization_terms(
            self.model, out.outputs, l1=reg.l1, l2=reg.l2, elastic_net=reg.elastic_net, ar=reg.ar, tar=reg.tar
        )
        total = loss + sum(terms.values())
        self.optimizer.zero_grad(set_to_none=True)
        # Under torchrun, DDP averages the gradients over the processes during the backward.
        norm = self.monitor.backward(total, o.clip_norm, o.clip_value)
        # The guard and the log see the global batch's values, the same in every process.
        loss, total, terms = self.dist.average(loss, total, terms)
        decision = self.guard.check(total, norm)
        if decision.action == "step":
            self.optimizer.step()
            self.monitor.after_step()
            if self.average is not None:
                self.average.update()
        else:
            self.optimizer.zero_grad(set_to_none=True)
        values = {name: term.item() for name, term in terms.items()}
        return StepResult(loss.item(), values, out.state, decision, self.monitor.record())

    def state_dict(self) -> dict:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "guard": self.guard.state_dict(),
            "monitor": self.monitor.state_dict(),
            "average": None if self.average is None else self.average.state_dict(),
        }

    def load_state_dict(self, state: dict, weights_only: bool = False) -> None:
        """Restore; ``weights_only``: the optimiser alone (a rollback keeps the schedule and counters)."""
        self.optimizer.load_state_dict(state["optimizer"])
        if not weights_only:
            self.schedule.load_state_dict(state["scheduler"])
            self.guard.load_state_dict(state["guard"])
            self.monitor.load_state_dict(state["monitor"])
            if self.average is not None:
                self.average.load_state_dict(state.get("average"))

    def scored_weights(self) -> contextlib.AbstractContextManager:
        """A block in which the model holds the weights that validation scores and the best model
        keeps: the moving average under ``--ema``, else the weights trained."""
        return contextlib.nullcontext() if self.average is None else self.average.swapped_in()

    def scale_lr(self, factor: float) -> None:
        self.schedule.scaled(factor)

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def close(self) -> None:
        self.forward_model = self.model  # let the DDP wrapper go before its process group does
        self.monitor.close()
