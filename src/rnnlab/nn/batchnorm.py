"""Batch normalisation from scratch for (N, C) and (N, C, H, W) input, torch.nn.BatchNorm1d/2d's twin."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class BatchNorm(nn.Module):
    r"""Batch normalisation (Ioffe & Szegedy 2015), written out as in the notes, with torch's conventions.

    Per channel ``c`` (a feature of ``(N, C)`` input, or a channel of ``(N, C, H, W)`` input, whose
    ``m = N*H*W`` values are normalised together)::

        μ_B  = mean over the batch (and H, W) of x[:, c]
        σ²_B = mean of (x[:, c] − μ_B)²                      (biased: divides by m)
        y    = γ_c (x − μ_B) / sqrt(σ²_B + eps) + β_c         (training)
        y    = γ_c (x − running_mean_c) / sqrt(running_var_c + eps) + β_c     (eval)

    After each training batch, with ``momentum`` the weight of the *new* value (torch's convention)::

        running_mean ← (1 − momentum) · running_mean + momentum · μ_B
        running_var  ← (1 − momentum) · running_var  + momentum · σ²_B · m / (m − 1)   (unbiased)

    and ``num_batches_tracked`` counts the updates. ``momentum=None`` makes the running statistics the
    plain average of all batches so far (factor ``1 / num_batches_tracked``), as torch does.

    Two differences from the notes' ``BatchNorm``: their ``momentum=0.9`` weighs the *old* value
    (``moving = 0.9 · moving + 0.1 · batch``), i.e. torch's ``momentum=0.1``; and their moving variance
    starts at 0 and is updated with the biased variance, where torch's (and this) starts at 1 and uses the
    unbiased one. Their ``gamma``/``beta`` of shape (1, C[, 1, 1]) are ``weight``/``bias`` of shape (C,).

    Args:
        num_features: ``C``.
        num_dims: 2 for ``(N, C)`` input (after a linear layer), 4 for ``(N, C, H, W)`` (after a conv).
        eps: added to the variance before the square root.
        momentum: weight of the batch statistic in the running average, or None for a cumulative average.

    Attributes (state_dict keys and shapes, as torch.nn.BatchNorm1d/2d): ``weight`` (C,) = 1,
    ``bias`` (C,) = 0, buffers ``running_mean`` (C,) = 0, ``running_var`` (C,) = 1,
    ``num_batches_tracked`` () int64 = 0.
    """

    def __init__(
        self,
        num_features: int,
        num_dims: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if num_dims not in (2, 4):
            raise ValueError(f"num_dims must be 2 (N, C) or 4 (N, C, H, W), got {num_dims!r}")
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features <= 0:
            raise ValueError(f"num_features must be a positive int, got {num_features!r}")
        if momentum is not None and not 0 <= momentum <= 1:
            raise ValueError(f"momentum must be in [0, 1] or None, got {momentum!r}")
        self.num_features = num_features
        self.num_dims = num_dims
        self.eps = eps
        self.momentum = momentum
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(num_features, **factory))
        self.bias = nn.Parameter(torch.empty(num_features, **factory))
        self.register_buffer("running_mean", torch.zeros(num_features, **factory))
        self.register_buffer("running_var", torch.ones(num_features, **factory))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long, device=device))
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        self.running_mean.zero_()
        self.running_var.fill_(1)
        self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        nn.init.ones_(self.weight)
        nn.init.zeros_(self.bias)

    def extra_repr(self) -> str:
        return f"{self.num_features}, num_dims={self.num_dims}, eps={self.eps}, momentum={self.momentum}"

    def forward(self, x: Tensor) -> Tensor:
        """Normalise ``x`` per channel: ``(N, C)`` or ``(N, C, H, W)`` in, the same shape out.

        Raises:
            ValueError: wrong rank or channel count, or a single value per channel in training mode
                (its variance is undefined).
        """
        if x.dim() != self.num_dims or x.size(1) != self.num_features:
            want = "(N, C)" if self.num_dims == 2 else "(N, C, H, W)"
            raise ValueError(
                f"BatchNorm expected {want} input with C={self.num_features}, got shape {tuple(x.shape)}"
            )
        dims = (0,) if self.num_dims == 2 else (0, 2, 3)  # every axis but the channel's
        shape = (1, -1) if self.num_dims == 2 else (1, -1, 1, 1)  # (C,) -> broadcastable against x
        if self.training:
            m = x.numel() // self.num_features
            if m <= 1:
                raise ValueError(
                    f"Expected more than 1 value per channel when training, got input size {list(x.shape)}"
                )
            mean = x.mean(dim=dims)  # (C,)
            var = ((x - mean.view(shape)) ** 2).mean(dim=dims)  # (C,), biased: normalises this batch
            self._update_running_stats(mean.detach(), var.detach() * (m / (m - 1)))
        else:
            mean, var = self.running_mean, self.running_var
        x_hat = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        return x_hat * self.weight.view(shape) + self.bias.view(shape)

    @torch.no_grad()
    def _update_running_stats(self, mean: Tensor, unbiased_var: Tensor) -> None:
        self.num_batches_tracked.add_(1)
        # momentum=None: the cumulative average of all batches so far.
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean.mul_(1 - factor).add_(mean, alpha=factor)
        self.running_var.mul_(1 - factor).add_(unbiased_var, alpha=factor)
