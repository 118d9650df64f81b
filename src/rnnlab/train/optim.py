"""Optimisers and the learning-rate schedule, built from OptimConfig."""

from __future__ import annotations

import torch

from rnnlab.config import OptimConfig


def decay_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Two parameter groups: weight matrices (decayed) and everything 1-D, biases and norms (not).

    Decaying biases and norm gains only pulls them towards 0 for no regularising benefit.
    """
    seen, decay, no_decay = set(), [], []
    for p in model.parameters():
        if id(p) in seen or not p.requires_grad:
            continue
        seen.add(id(p))  # a tied weight appears once
        (decay if p.dim() >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: torch.nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """adam: L2 added to the gradient (coupled: Adam rescales it per weight, so large-gradient weights are
    barely decayed); adamw: decay applied to the weights directly (decoupled, Loshchilov & Hutter 2019);
    sgd: with momentum, where both forms coincide."""
    groups = decay_groups(model, cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)


class ConstantLR:
    """The scheduler of ``--lr-factor 1``: the learning rate never changes (the notes' recipe)."""

    def step(self, metric: float) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig):
    """Lower the learning rate when validation loss stops improving (``lr_factor`` 1: never)."""
    if cfg.lr_factor >= 1:
        return ConstantLR()
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=cfg.lr_factor, patience=cfg.lr_patience
    )
