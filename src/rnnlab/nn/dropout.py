"""Inverted dropout from scratch: a functional form and a torch.nn.Dropout-like module."""

import numbers

import torch
from torch import Tensor, nn


def _check_p(p: float) -> float:
    # `not 0 <= p <= 1` is also true for NaN.
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p!r}")
    return float(p)


def dropout(x: Tensor, p: float, training: bool = True, generator: torch.Generator | None = None) -> Tensor:
    """Zero each element of ``x`` with probability ``p`` and scale the survivors by ``1 / (1 - p)``.

    Inverted dropout (Srivastava et al. 2014, "Dropout: a simple way to prevent neural networks from
    overfitting"): the mask is ``m ~ Bernoulli(1 - p)`` per element, drawn as ``torch.rand(...) >= p``,
    and the output is ``x * m / (1 - p)``, so ``E[output] = x`` and nothing needs rescaling at eval time.

    Args:
        x: any floating-point tensor.
        p: probability of zeroing an element, in ``[0, 1]``.
        training: when False, return ``x`` unchanged (eval mode).
        generator: optional RNG for the mask, for reproducible draws.

    Returns:
        A tensor shaped like ``x``: ``x`` itself when ``training`` is False or ``p == 0``, ``x * 0`` (all
        zeros for finite ``x``, gradient zero) when ``p == 1``.

    Raises:
        ValueError: if ``p`` is not a number in ``[0, 1]``.
    """
    p = _check_p(p)
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0.0  # keeps the graph (grad 0) where zeros_like would cut it
    keep = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) >= p
    # Scale the mask, not x, so every kept element is x * (1 / (1 - p)), bit for bit.
    return x * (keep.to(x.dtype) * (1.0 / (1.0 - p)))


class Dropout(nn.Module):
    """Inverted dropout as a module: :func:`dropout` in ``train()`` mode, the identity in ``eval()``.

    Args:
        p: probability of zeroing an element, in ``[0, 1]``; checked here, at construction.

    Shape: any; the output has the input's shape.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = _check_p(p)

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
