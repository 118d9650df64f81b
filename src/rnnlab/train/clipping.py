"""Gradient clipping from scratch (the notes' min(θ/‖g‖, 1)·g) and gradient norms, torch's twins."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor

Parameters = Tensor | Iterable[Tensor]


def grads_of(parameters: Parameters) -> list[Tensor]:
    params = [parameters] if isinstance(parameters, Tensor) else parameters
    return [p.grad for p in params if p.grad is not None]


def norm_of(tensors: list[Tensor], norm_type: float, device: torch.device | None = None) -> Tensor:
    # The norm of the per-tensor norms equals the norm of their concatenation; nothing is copied.
    if not tensors:
        return torch.tensor(0.0, device=device)
    device = tensors[0].device
    norms = [torch.linalg.vector_norm(t, norm_type).to(device) for t in tensors]
    return torch.linalg.vector_norm(torch.stack(norms), norm_type)


@torch.no_grad()
def total_grad_norm(parameters: Parameters, norm_type: float = 2.0) -> Tensor:
    """The p-norm of all gradients seen as one vector, a 0-dim tensor (0 when no parameter has one)."""
    return norm_of(grads_of(parameters), float(norm_type))


@torch.no_grad()
def clip_grad_norm(parameters: Parameters, max_norm: float, norm_type: float = 2.0) -> Tensor:
    """Scale all gradients in place by ``min(θ / ‖g‖, 1)``, θ = ``max_norm`` (Pascanu et al. 2013).

    The twin of ``torch.nn.utils.clip_grad_norm_`` with ``error_if_nonfinite=False``: the same 1e-6 in
    the denominator, parameters without ``.grad`` skipped, ``norm_type=inf`` meaning max |g|. A
    non-finite total norm is deliberately not special-cased, as in torch: the gradients are multiplied
    by the non-finite coefficient and become NaN (0 where they were finite and the norm is inf). Such a
    step must not be taken; :class:`NonFiniteGuard` decides that from the returned norm.

    Returns:
        The total norm *before* clipping, a 0-dim tensor (nan/inf when some gradient is non-finite).
    """
    grads = grads_of([parameters] if isinstance(parameters, Tensor) else list(parameters))
    total = norm_of(grads, float(norm_type))
    if grads:
        # Multiply even when coef == 1: a branch on `coef < 1` would sync a GPU every step.
        coef = torch.clamp(float(max_norm) / (total + 1e-6), max=1.0)
        for g in grads:
            g.mul_(coef.to(g.device))
    return total


@torch.no_grad()
def clip_grad_value(parameters: Parameters, clip_value: float) -> Tensor | None:
    """Clamp every gradient entry into ``[-clip_value, clip_value]`` in place (torch's ``clip_grad_value_``).

    Returns:
        max |g| before clipping (so a caller can tell whether anything was clipped), or None when no
        parameter has a gradient. torch's function returns None always; the gradients match it.
    """
    grads = grads_of(parameters)
    if not grads:
        return None
    before = norm_of(grads, math.inf)
    for g in grads:
        g.clamp_(min=-float(clip_value), max=float(clip_value))
    return before


@torch.no_grad()
def grads_finite(parameters: Parameters) -> bool:
    """True when every gradient entry is finite (parameters without a gradient are ignored)."""
    grads = grads_of(parameters)
    return not grads or bool(torch.stack([torch.isfinite(g).all().to(grads[0].device) for g in grads]).all())
