"""Loss and its readings: cross-entropy in nats, perplexity, bits per character."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LN2 = math.log(2.0)


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Next-token cross-entropy in nats.

    Args:
        logits: ``(..., V)`` unnormalised scores.
        targets: ``(...)`` integer ids, the same leading shape as ``logits``.
        reduction: ``"mean"`` or ``"sum"`` over all positions.
    """
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), reduction=reduction
    )


def perplexity(loss_nats: float) -> float:
    """exp(loss): the effective number of equally likely choices per character (inf when it overflows)."""
    return math.exp(loss_nats) if loss_nats < 700 else math.inf


def bits_per_char(loss_nats: float) -> float:
    """Loss in bits: nats / ln 2 (the unit char-rnn papers report)."""
    return loss_nats / LN2


def loss_readings(loss_nats: float) -> dict[str, float]:
    """The three ways a loss is reported: ``loss`` (nats), ``ppl`` and ``bpc``."""
    return {"loss": loss_nats, "ppl": perplexity(loss_nats), "bpc": bits_per_char(loss_nats)}
