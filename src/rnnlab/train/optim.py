"""Optimisers, built from OptimConfig (the learning-rate schedules are in rnnlab.train.schedule)."""

from __future__ import annotations

import importlib
import threading

import torch

from rnnlab.config import OptimConfig
from rnnlab.losses import penalized_weights


def decay_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Two parameter groups: the weight matrices that the penalties act on too
    (:func:`rnnlab.losses.penalized_weights`), decayed, and everything else trainable (biases, norm
    gains: decaying them only pulls them towards 0 for no regularising benefit), not decayed."""
    decay = penalized_weights(model)
    decayed = {id(p) for p in decay}
    no_decay = [p for p in model.parameters() if p.requires_grad and id(p) not in decayed]
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


def preload() -> threading.Thread:
    """Start importing ``torch._dynamo`` in a daemon thread and return it; join it before
    :func:`build_optimizer`. torch imports it when the first optimizer is built (``add_param_group``),
    which takes ~1.5 s on a 2-core CPU; begun before the n-gram is counted, it overlaps the counting."""
    thread = threading.Thread(target=importlib.import_module, args=("torch._dynamo",), daemon=True)
    thread.start()
    return thread
