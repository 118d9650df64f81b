"""The notes' gradient products: a deep linear MLP of per-layer gain 0.2 or 5; plain, residual, batch norm."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from rnnlab.experiments.common import ExperimentResult, Timer, one_thread, pyplot

try:  # the from-scratch twin, when this checkout has it
    from rnnlab.nn.batchnorm import BatchNorm

    def _batch_norm(width: int) -> nn.Module:
        return BatchNorm(width, num_dims=2, dtype=torch.float64)

except ImportError:  # pragma: no cover - older checkouts

    def _batch_norm(width: int) -> nn.Module:
        return nn.BatchNorm1d(width, dtype=torch.float64)


NAME = "products"
DESCRIPTION = "gradient reaching the input of a deep linear MLP: 0.2^L vanishes, 5^L explodes; skip / BN"
DEPTHS = (5, 10, 20, 30)
GAINS = (0.2, 5.0)
VARIANTS = ("plain", "residual", "batchnorm")
QUICK = {"width": 32, "batch_size": 64}
FULL = {"width": 256, "batch_size": 1024}


def orthogonal(width: int, generator: torch.Generator) -> Tensor:
    """A random orthogonal matrix (QR of a Gaussian, signs fixed so it is uniformly distributed)."""
    q, r = torch.linalg.qr(torch.randn(width, width, generator=generator, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


class DeepLinear(nn.Module):
    """``depth`` layers ``h <- W_l h`` with ``W_l = gain * Q_l`` (Q orthogonal): every layer's Jacobian has
    all singular values equal to ``gain``, so a plain stack multiplies gradients by exactly ``gain^depth``.

    ``"residual"`` makes each layer ``h <- h + W_l h`` (He et al. 2016); ``"batchnorm"`` makes it
    ``h <- BN(W_l h)`` (Ioffe & Szegedy 2015), in training mode (batch statistics). No activation: the
    notes' setting, where only the products of weights matter. float64, so 1e-21 and 1e21 stay exact.
    """

    def __init__(self, depth: int, width: int, gain: float, variant: str, generator: torch.Generator):
        super().__init__()
        self.variant = variant
        self.weights = nn.ParameterList(
            [nn.Parameter(gain * orthogonal(width, generator)) for _ in range(depth)]
        )
        self.norms = nn.ModuleList(_batch_norm(width) for _ in range(depth) if variant == "batchnorm")

    def forward(self, x: Tensor) -> Tensor:
        for i, weight in enumerate(self.weights):
            z = x @ weight.T  # (B, width)
            x = x + z if self.variant == "residual" else self.norms[i](z) if self.norms else z
        return x


def input_gradient_ratio(
    depth: int, width: int, gain: float, variant: str, batch_size: int, seed: int
) -> dict:
    """‖∂L/∂x‖ / ‖∂L/∂y‖ (Frobenius over the batch) and ‖∂L/∂W_1‖ for L = ⟨y, r⟩, r ~ N(0, I).

    The first is the product of the layers' Jacobians that the notes write as 0.2^30 and 5^30.
    """
    generator = torch.Generator().manual_seed(seed)
    model = DeepLinear(depth, width, gain, variant, generator).train()
    x = torch.randn(batch_size, width, generator=generator, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(batch_size, width, generator=generator, dtype=torch.float64)
    (model(x) * upstream).sum().backward()
    return {
        "input": float(x.grad.norm() / upstream.norm()),
        "first_weight": float(model.weights[0].grad.norm()),
    }


@one_thread()
def run(quick: bool = False, seed: int = 0, out: Path | None = None) -> ExperimentResult:
    """Measure the gradient reaching the input for every depth, gain and variant.

    Args:
        quick: width 32, batch 64; else width 256, batch 1024 (both take seconds: this is about
            arithmetic, not training).
        seed: seeds the weights and inputs.
        out: where to save ``products[-quick].png``; None draws nothing.
    """
    size = QUICK if quick else FULL
    with Timer() as timer:
        measured = {
            (variant, gain, depth): input_gradient_ratio(depth, gain=gain, variant=variant, seed=seed, **size)
            for variant in VARIANTS
            for gain in GAINS
            for depth in DEPTHS
        }
    columns = ["L", *(f"{v} x{g:g}" for v in VARIANTS for g in GAINS), *(f"{g:g}^L" for g in GAINS)]
    rows = []
    for depth in DEPTHS:
        row = {"L": depth}
        row.update({f"{v} x{g:g}": measured[v, g, depth]["input"] for v in VARIANTS for g in GAINS})
        row.update({f"{g:g}^L": g**depth for g in GAINS})
        rows.append(row)
    result = ExperimentResult(
        NAME,
        "quick" if quick else "full",
        columns,
        rows,
        notes=[
            "Entries: ‖∂L/∂x‖ / ‖∂L/∂y‖, the gradient reaching the input of an L-layer linear MLP whose "
            "layers are gain x orthogonal (float64, width {width}, batch {batch_size}).".format(**size),
            "Plain stacks reproduce gain^L exactly (the notes' 0.2^30 ≈ 1e-21 and 5^30 ≈ 9e20). Skip "
            "connections (h + W h) keep the 0.2 stack near 1 but do not tame gain 5 (each layer is then "
            "I + 5Q, norm up to 6). Batch norm divides out the gain at every layer, so both stay O(1).",
        ],
        extra={
            "size": size,
            "first_weight_grad": {
                f"{v} x{g:g} L={d}": m["first_weight"] for (v, g, d), m in measured.items()
            },
        },
        seconds=timer.seconds,
    )
    if out is not None:
        result.figures.append(_plot(measured, Path(out) / f"{result.stem()}.png"))
    return result


def _plot(measured: dict, path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, variant in enumerate(VARIANTS):
        for gain, style in zip(GAINS, ("o-", "s--")):
            values = [measured[variant, gain, d]["input"] for d in DEPTHS]
            ax.plot(DEPTHS, values, style, color=f"C{i}", label=f"{variant}, gain {gain:g}")
    for gain in GAINS:
        ax.plot(DEPTHS, [gain**d for d in DEPTHS], ":", color="gray")
    ax.set(
        xlabel="depth L",
        ylabel="‖∂L/∂x‖ / ‖∂L/∂y‖",
        yscale="log",
        title="gradient reaching the input (gray: gain^L)",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
