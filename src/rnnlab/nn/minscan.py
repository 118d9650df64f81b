"""The recurrence of minGRU and minLSTM (Feng et al. 2024), linear in h: step, log-space scan, fused scan."""

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

GATES = {"MinGRU": 2, "MinLSTM": 3}
"""Mode -> gate blocks of H rows in ``weight_ih_l{k}``: [z; h̃] and [f; i; h̃]."""
CHUNK_BYTES = 8 * 2**20  # the fused scan turns this many bytes of gates into (z, h̃) at once: cache-sized
LOG_ROWS = 64  # steps per log-space block: bounds the cancellation in A + logcumsumexp(log b - A)


def g(x: Tensor) -> Tensor:
    """The positive activation of Feng et al. 2024 (appendix): ``x + 1/2`` for x ≥ 0, else ``σ(x)``."""
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def log_g(x: Tensor) -> Tensor:
    """``log g(x)``: ``log(x + 1/2)`` for x ≥ 0, else ``log σ(x) = -softplus(-x)``; NaN-free branches."""
    return torch.where(x >= 0, (F.relu(x) + 0.5).log(), -F.softplus(-x))


def mixing_logits(mode: str, gates: Tensor) -> tuple[Tensor, Tensor]:
    """``(ζ, x_h)`` from ``gates`` (..., G*H): the update ``z = σ(ζ)`` and the candidate's pre-activation.

    minGRU: ζ is the first chunk. minLSTM: ``i' = σ(i) / (σ(f) + σ(i)) = σ(ζ)`` with
    ``ζ = log σ(i) - log σ(f)``, and ``f' = 1 - i'``: both layers are ``h_t = lerp(h_{t-1}, h̃_t, σ(ζ_t))``.
    Log-sigmoids stay finite where σ(f) and σ(i) underflow (the ratio would be 0/0).
    """
    if mode == "MinGRU":
        zeta, x_h = gates.chunk(2, dim=-1)
        return zeta, x_h
    x_f, x_i, x_h = gates.chunk(3, dim=-1)
    return F.logsigmoid(x_i) - F.logsigmoid(x_f), x_h


def step(mode: str, gates: Tensor, h: Tensor) -> Tensor:
    """One step, O(1) per token (generation): ``gates`` (B, G*H), ``h`` (B, H) -> ``h'`` (B, H)."""
    zeta, x_h = mixing_logits(mode, gates)
    return torch.lerp(h, g(x_h), torch.sigmoid(zeta))  # h + z ⊙ (h̃ - h) = (1 - z) ⊙ h + z ⊙ h̃


def step_scan(mode: str, gates: Tensor, h0: Tensor) -> Tensor:
    """:func:`step` for t = 0 .. T-1, autograd recording each: ``gates`` (T, B, G*H) -> (T, B, H)."""
    outputs, h = [], h0
    for gates_t in gates.unbind(0):
        h = step(mode, gates_t, h)
        outputs.append(h)
    return torch.stack(outputs)


def log_scan(mode: str, gates: Tensor, h0: Tensor, rows: int = LOG_ROWS) -> Tensor:
    """The paper's time-parallel scan in log space (Heinsen 2023), autograd through it.

    ``h_t = a_t h_{t-1} + b_t`` with ``a = 1 - z``, ``b = z ⊙ h̃ > 0``: over a block of steps, with
    ``A_t = Σ_{s≤t} log a_s`` (a cumsum)::

        h_t = exp(A_t + logcumsumexp_{s≤t}(log b_s - A_s)) + exp(A_t) h_0

    The ``h_0`` term stays linear, so a state of either sign continues exactly: no ``log h_0`` (which
    needs h_0 > 0) and never ``log g(h_0)`` (a known bug: g(h) ≠ h). Blocks of ``rows`` steps carry h,
    which bounds |A| and with it the cancellation between A and the logcumsumexp.
    """
    zeta, x_h = mixing_logits(mode, gates)
    log_a, log_b = -F.softplus(zeta), log_g(x_h) - F.softplus(-zeta)  # log(1 - z), log(z ⊙ h̃)
    outputs, h = [], h0
    for start in range(0, gates.size(0), rows):
        A = log_a[start : start + rows].cumsum(0)  # (n, B, H)
        block = torch.exp(A + torch.logcumsumexp(log_b[start : start + rows] - A, 0)) + A.exp() * h
        outputs.append(block)
        h = block[-1]
    return torch.cat(outputs)


def _activate(mode: str, gates: Tensor, z: Tensor, h_tilde: Tensor) -> None:
    """Write ``z = σ(ζ)`` and ``h̃ = g(x_h)`` of ``gates`` (n, B, G*H) into ``z``, ``h_tilde`` (n, B, H)."""
    H = z.size(-1)
    if mode == "MinGRU":
        torch.sigmoid(gates[..., :H], out=z)
    else:  # see mixing_logits
        torch.sub(F.logsigmoid(gates[..., H : 2 * H]), F.logsigmoid(gates[..., :H]), out=z).sigmoid_()
    # g(x) = max(σ(x), x + 1/2): σ(x) - x - 1/2 falls (σ' ≤ 1/4) through 0 at x = 0. No bool masks,
    # which are several times slower than arithmetic on a CPU.
    x_h = gates[..., -H:]
    torch.sigmoid(x_h, out=h_tilde).sub_(0.5)
    torch.maximum(h_tilde, x_h, out=h_tilde).add_(0.5)


def _gate_grads(
    mode: str, dh: Tensor, act: Tensor, h_prev: Tensor, gates: Tensor | None, out: Tensor
) -> None:
    """Gradient wrt the gates of a block of steps, written into ``out`` (n, B, G*H).

    ``dh``: the total gradient of each ``h_t`` (n, B, H); ``act``: ``[z; h̃]`` (n, B, 2H). From
    ``h_t = h_{t-1} + z ⊙ (h̃ - h_{t-1})``: ``dζ = dh ⊙ z(1 - z) ⊙ (h̃ - h_{t-1})`` and
    ``dx_h = dh ⊙ z ⊙ g'(x_h)``: ``g' = 1`` where x > 0, i.e. h̃ > 1/2, else ``σ'(x) = h̃(1 - h̃)``
    (at the kink x = 0, 1/4: a subgradient). minLSTM: ``dx_f = dζ ⊙ (σ(x_f) - 1)``,
    ``dx_i = dζ ⊙ (1 - σ(x_i))``, the derivatives of ``ζ = log σ(x_i) - log σ(x_f)``.
    """
    H = dh.size(-1)
    z, h_tilde = act[..., :H], act[..., H:]
    sigmoid_backward = torch.ops.aten.sigmoid_backward  # (grad, σ) -> grad ⊙ σ(1 - σ), one pass
    d_zeta = out[..., :H] if mode == "MinGRU" else torch.empty_like(dh)
    torch.sub(h_tilde, h_prev, out=d_zeta).mul_(sigmoid_backward(dh, z))
    dh_z = dh * z
    # 1 where h̃ > 1/2, else 0: h̃ - 1/2 is 0 or at least one ulp of 1/2, which finfo.max lifts past 1.
    linear_part = torch.sub(h_tilde, 0.5).mul_(torch.finfo(dh.dtype).max).clamp_(0, 1)
    torch.lerp(sigmoid_backward(dh_z, h_tilde), dh_z, linear_part, out=out[..., -H:])
    if mode == "MinLSTM":
        torch.sigmoid(gates[..., :H], out=out[..., :H]).sub_(1).mul_(d_zeta)
        torch.sigmoid(gates[..., H : 2 * H], out=out[..., H : 2 * H]).sub_(1).mul_(d_zeta).neg_()


class FusedScan(torch.autograd.Function):
    """The recurrence in linear space as one autograd node, with hand-written BPTT (see rnnlab.nn.fused).

    ``(gates (T, B, G*H), h0 (B, H)) -> (out (T, B, H), h_T (B, H))``. Blocks of ``rows`` steps: their
    ``(z, h̃)`` are computed in one go into a block-sized buffer, then one ``lerp`` per step; backward
    recomputes them block by block rather than saving (T, B, 2H) of them (the gates are saved instead:
    same memory, but one fresh (T, B, 2H) tensor fewer, whose first touch costs a page fault per 4 KiB)::

        forward     h_t = lerp(h_{t-1}, h̃_t, z_t)                              one op per step
        backward    dh_t = dout_t + (1 - z_{t+1}) ⊙ dh_{t+1}                   one addcmul per step
                    dgates of the block, vectorised (:func:`_gate_grads`)

    Each step is a convex combination: no logs, no exps, no division, any sign of h is fine.
    """

    @staticmethod
    def forward(ctx, mode: str, rows: int, gates: Tensor, h0: Tensor):
        T, B, _ = gates.shape
        H = h0.size(-1)
        out = gates.new_empty(T, B, H)
        act = gates.new_empty(min(rows, T), B, 2 * H)  # [z; h̃] of one block of steps
        h = h0
        for start in range(0, T, rows):
            block = act[: min(rows, T - start)]
            _activate(mode, gates[start : start + len(block)], block[..., :H], block[..., H:])
            for t, (z_t, h_tilde_t) in enumerate(zip(block[..., :H].unbind(0), block[..., H:].unbind(0))):
                h = torch.lerp(h, h_tilde_t, z_t, out=out[start + t])
        if any(ctx.needs_input_grad):  # under no_grad: nothing
            ctx.mode, ctx.rows = mode, rows
            ctx.save_for_backward(gates, out, h0)
        return out, h.clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out: Tensor, d_last: Tensor):
        gates, out, h0 = ctx.saved_tensors
        T, B, H = out.shape
        d_gates = torch.empty_like(gates)
        act = out.new_empty(min(ctx.rows, T), B, 2 * H)  # [z; h̃] of the block, recomputed
        buffer = out.new_empty(min(ctx.rows, T), B, H)  # total gradient of each h_t of the block
        carry = d_last  # what h_{stop-1} gets from the steps after the block
        for start in reversed(range(0, T, ctx.rows)):
            stop = min(start + ctx.rows, T)
            block, dh = act[: stop - start], buffer[: stop - start]
            _activate(ctx.mode, gates[start:stop], block[..., :H], block[..., H:])
            a = torch.rsub(block[..., :H], 1)  # 1 - z, (n, B, H)
            torch.add(d_out[stop - 1], carry, out=dh[-1])
            for t in range(stop - start - 2, -1, -1):
                torch.addcmul(d_out[start + t], a[t + 1], dh[t + 1], out=dh[t])
            carry = a[0] * dh[0]  # to h_{start-1}; at start 0, the gradient of h_0
            h_prev = out[start - 1 : stop - 1] if start else torch.cat((h0[None], out[: stop - 1]))
            _gate_grads(ctx.mode, dh, block, h_prev, gates[start:stop], d_gates[start:stop])
        return None, None, d_gates, carry


def fused_scan(mode: str, gates: Tensor, h0: Tensor) -> Tensor:
    """:class:`FusedScan` in blocks of ~``CHUNK_BYTES``: ``gates`` (T, B, G*H), ``h0`` (B, H) -> (T, B, H)."""
    T, B, width = gates.shape
    rows = max(1, min(T, CHUNK_BYTES // max(1, B * width * gates.element_size())))
    if not torch.is_grad_enabled():
        gates, h0 = gates.detach(), h0.detach()
    out, _ = FusedScan.apply(mode, rows, gates.contiguous(), h0)
    return out


SCANS = {"fused": fused_scan, "log": log_scan, "step": step_scan}
"""``layer.scan`` -> ``scan(mode, gates (T, B, G*H), h0 (B, H)) -> (T, B, H)``; all agree to rounding."""
