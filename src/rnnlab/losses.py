"""Loss and its readings (cross-entropy in nats, perplexity, bits per char) and the penalty terms."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F

from rnnlab.nn.regularizers import ar_tar_penalty

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


def loss_readings(loss_nats: float, unit: str = "char") -> dict[str, float | None]:
    """The three ways a loss is reported: ``loss`` (nats per token), ``ppl`` and ``bpc``.

    ``unit`` is what a token is (``"char"`` or ``"word"``, the vocabulary's ``kind``): a loss per word
    has no bits per character, so ``bpc`` is then None.
    """
    bpc = bits_per_char(loss_nats) if unit == "char" else None
    return {"loss": loss_nats, "ppl": perplexity(loss_nats), "bpc": bpc}


# --- weight penalties (the notes' L1 / L2 / elastic net) --------------------------------------------


def penalized_weights(module: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The parameters a weight penalty acts on: every trainable weight matrix, each once.

    A parameter counts when it has ``dim() >= 2``: the recurrent ``weight_ih_l*`` / ``weight_hh_l*``
    (or WeightDrop's ``weight_hh_l*_raw``), the decoder's weight and the embedding. Biases and the scale
    and shift of batch or layer norm are 1-D and never count: shrinking them towards 0 constrains no
    interaction between inputs, it only moves the operating point. The embedding is a weight matrix
    (one row per id) and counts. A tied embedding/decoder weight is one tensor and counts once
    (``named_parameters`` drops repeats). Frozen parameters (``requires_grad=False``) are skipped. This is
    the set :func:`rnnlab.train.optim.decay_groups` decays, so ``--l2`` and ``--weight-decay`` act on
    the same tensors.
    """
    return [p for _, p in module.named_parameters() if p.requires_grad and p.dim() >= 2]


def _zero(params: list[torch.Tensor]) -> torch.Tensor:
    # 0 on the parameters' device and dtype, so the sum stays where the loss lives.
    if params:
        return params[0].new_zeros(())
    return torch.zeros(())


def l1_penalty(params: Iterable[torch.Tensor]) -> torch.Tensor:
    """``Σ |w|`` over every element of ``params`` (the notes' lasso term ``|w|``), a 0-dim tensor.

    Its gradient is ``sign(w)`` (0 at exactly 0: torch's subgradient), a pull of constant size towards
    0 that drives small weights to exactly 0 under SGD-like steps: L1 gives sparse weights.
    An empty ``params`` gives 0.
    """
    params = list(params)
    return sum((p.abs().sum() for p in params), _zero(params))


def l2_penalty(params: Iterable[torch.Tensor]) -> torch.Tensor:
    r"""``Σ w²`` over every element of ``params``, without a ½ (the notes' ridge term ``‖w‖²``).

    Its gradient is ``2w``. So ``loss + λ · l2_penalty`` under plain SGD is torch's
    ``weight_decay = 2λ`` (torch adds ``weight_decay · w`` to the gradient, which is the gradient of
    ``(weight_decay / 2) · Σ w²``). The notes' "``weight_decay=0.01`` is the coefficient C" is off by
    that factor 2: C = weight_decay / 2.

    Coupled versus decoupled decay (Loshchilov & Hutter 2019, "Decoupled weight decay regularization"):

    * L2 in the loss, or ``torch.optim.Adam(weight_decay=...)``, is *coupled*: the decay term joins the
      gradient and is then divided by Adam's per-weight ``sqrt(v)``, so weights with large or noisy
      gradients are barely decayed. With SGD the two forms coincide; with Adam, L2 in the loss and
      Adam's ``weight_decay`` are the same (both coupled).
    * ``torch.optim.AdamW(weight_decay=...)`` is *decoupled*: ``w ← w − lr · weight_decay · w`` is applied
      to the weights directly, outside the adaptive step, so every weight shrinks at the same rate. No
      loss penalty reproduces it under Adam; it is what ``--optimizer adamw --weight-decay`` does.

    An empty ``params`` gives 0.
    """
    params = list(params)
    return sum((p.pow(2).sum() for p in params), _zero(params))


def elastic_net_penalty(params: Iterable[torch.Tensor], l1_ratio: float) -> torch.Tensor:
    """``l1_ratio · Σ|w| + (1 − l1_ratio) · Σw²`` (Zou & Hastie 2005, elastic net), a 0-dim tensor.

    ``l1_ratio = 1`` is :func:`l1_penalty`, ``0`` is :func:`l2_penalty` (scikit-learn's name; scale the
    whole penalty with its own coefficient in the loss).

    Raises:
        ValueError: ``l1_ratio`` outside ``[0, 1]``.
    """
    if isinstance(l1_ratio, bool) or not 0 <= l1_ratio <= 1:
        raise ValueError(f"l1_ratio must be in [0, 1], got {l1_ratio!r}")
    params = list(params)
    return l1_ratio * l1_penalty(params) + (1 - l1_ratio) * l2_penalty(params)


def regularization_terms(
    model: torch.nn.Module,
    hidden: torch.Tensor,
    *,
    l1: float = 0.0,
    l2: float = 0.0,
    elastic_net: tuple[float, ...] = (),
    ar: float = 0.0,
    tar: float = 0.0,
) -> dict[str, torch.Tensor]:
    """The active penalty terms, by name, each already scaled by its coefficient.

    The loop adds their sum to the cross-entropy and logs each one on its own.

    Args:
        model: whose weight matrices (:func:`penalized_weights`) the weight penalties act on.
        hidden: ``(B, T, H)`` top-layer outputs, for AR and TAR (AR here acts on the outputs before
            dropout; Merity et al. 2018 use the dropped ones, a small difference).
        l1, l2: coefficients of :func:`l1_penalty` and :func:`l2_penalty`.
        elastic_net: ``(C, l1_ratio)`` for ``C * elastic_net_penalty(..., l1_ratio)``, or empty.
        ar, tar: the alpha and beta of :func:`rnnlab.nn.regularizers.ar_tar_penalty`.
    """
    terms: dict[str, torch.Tensor] = {}
    weights = penalized_weights(model) if (l1 or l2 or elastic_net) else []
    if l1:
        terms["l1"] = l1 * l1_penalty(weights)
    if l2:
        terms["l2"] = l2 * l2_penalty(weights)
    if elastic_net and elastic_net[0]:
        terms["elastic_net"] = elastic_net[0] * elastic_net_penalty(weights, elastic_net[1])
    if ar or tar:
        ar_term, tar_term = ar_tar_penalty(hidden.float(), ar, tar)
        if ar:
            terms["ar"] = ar_term
        if tar:
            terms["tar"] = tar_term
    return terms
