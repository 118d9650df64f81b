"""Fast path of the recurrent layers: one autograd node per (layer, direction), hand-written BPTT.

The reference path (:meth:`rnnlab.nn.layers.RNNBase._reference_scan`) lets autograd record every step,
so its backward replays ~10 small ops per step plus their bookkeeping, and builds dW_hh from T small
GEMMs. Here the whole time loop is one ``torch.autograd.Function`` whose backward walks the steps in
reverse by hand: hand-written BPTT as in jcjohnson/torch-rnn (which beat char-rnn's per-step graph so).

forward (autograd off, buffers preallocated, activations written in place)::

    for t in steps:      gh_t = h_{t-1} W_hh^T (+ b_hh)            one addmm per step
                         h_t (, c_t) = cell(gi_t, gh_t, h_{t-1})
    every few steps:     factors_t = cell'(activations_t)         slab-wide, while still in cache

backward (equations per cell kind in :mod:`rnnlab.nn.fused_steps`)::

    for t in reversed(steps):   dgh_t = factors_t ⊙ (dh_t, dc_t)          a few multiplies
                                dh_{t-1} = dout_{t-1} + dgh_t W_hh       one addmm per step
    dW_hh = dgh^T h_prev        ONE (G*H, T*B) @ (T*B, H) GEMM over all steps
    db_hh = Σ_{t,b} dgh_t       dgi = dgh (GRU: its n chunk is not scaled by r)

``gi = x W_ih^T + b_ih`` for all T steps is one GEMM in the layer, and autograd's backward of it is
``dW_ih = dgi^T x``, again one GEMM over all steps. For the RNN and the LSTM the layer folds b_hh into
that GEMM's bias too.

dtypes: float32, float64 and bfloat16 on CPU and CUDA (:func:`applies`); anything else runs the
reference path. Under autocast (``torch.autocast(device, dtype=torch.bfloat16)``), float32 tensors are
cast to the autocast dtype and the whole recurrence, state and gate math included, runs in it (GEMMs
accumulate in float32 internally); outputs and final state are cast back to float32, the dtype torch.nn
and the reference path return there. Double backward and forward-mode AD are not supported
(``once_differentiable``): set ``layer.fast = False`` for those.
"""

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from rnnlab.nn.fused_steps import GRUKernel, LSTMKernel, RNNKernel
from rnnlab.nn.state import State, state_from_tensors, state_tensors

KERNELS = {
    "RNN_TANH": RNNKernel("tanh"),
    "RNN_RELU": RNNKernel("relu"),
    "GRU": GRUKernel(),
    "LSTM": LSTMKernel(),
}
"""torch's mode names -> the gate math of one step, forward and backward."""

FAST_DEVICES = ("cpu", "cuda")
CHUNK_BYTES = 4 * 2**20  # activations of this many bytes' worth of steps are turned into factors at once
FAST_DTYPES = (torch.float32, torch.float64, torch.bfloat16)


def _layout(T: int, reverse: bool) -> tuple[int, range]:
    """Where the steps live in a (T+1, B, H) state buffer, and the order they run in.

    A direction writes ``h_t`` to slot ``t + shift`` and reads ``h_{t-1}`` (the state it consumes) from
    slot ``t + 1 - shift``: forward (shift 1) keeps h_0 in slot 0, reverse (shift 0) keeps it in slot T.
    Either way the outputs are the contiguous slots ``[shift, shift + T)`` in time order and the states
    consumed are ``[1 - shift, 1 - shift + T)``, so neither needs a flip or a copy.
    """
    shift = 0 if reverse else 1
    return shift, (range(T - 1, -1, -1) if reverse else range(T))


def compute_dtype(tensor: Tensor) -> torch.dtype:
    """The dtype the recurrence runs in: autocast's for float32 inside an autocast region, else its own."""
    device_type = tensor.device.type
    if tensor.dtype == torch.float32 and torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return tensor.dtype


def applies(tensor: Tensor) -> bool:
    """Whether the fast path handles a recurrence on ``tensor``'s device in its compute dtype."""
    return tensor.device.type in FAST_DEVICES and compute_dtype(tensor) in FAST_DTYPES


class FusedScan(torch.autograd.Function):
    """One layer direction over all T steps: ``(gi, W_hh, b_hh, *state_0) -> (out, *state_T)``.

    Shapes: ``gi`` (T, B, G*H), ``weight_hh`` (G*H, H), ``bias_hh`` (G*H,) or None, each state part
    (B, H) (LSTM: h, c; others: h). Returns ``out`` (T, B, H) in time order and the final state parts,
    each (B, H). ``reverse`` runs t = T-1 .. 0.
    """

    @staticmethod
    def forward(ctx, mode: str, reverse: bool, gi: Tensor, weight_hh: Tensor, bias_hh, *state0: Tensor):
        kernel = KERNELS[mode]
        T, B, _ = gi.shape
        H = weight_hh.size(1)
        shift, steps = _layout(T, reverse)
        order = [(t, t + 1 - shift, t + shift) for t in steps]
        hs = gi.new_empty(T + 1, B, H)  # see _layout
        h = hs.unbind(0)
        h[order[0][1]].copy_(state0[0])
        if kernel.fold_bias and bias_hh is not None:
            gi, bias_hh = gi + bias_hh, None  # (T, B, G*H): b_hh added once, not per step
        keep = any(ctx.needs_input_grad)  # False under no_grad: see scan()
        # Chunks of steps: their activations fit a few MiB of cache until turned into saved factors.
        width = sum(kernel.activations.values()) * B * H * gi.element_size()
        rows = max(1, min(T, CHUNK_BYTES // max(width, 1))) if keep else 1
        acts = {name: gi.new_empty(rows, B, w * H) for name, w in kernel.activations.items()}
        saved = {name: gi.new_empty(T, B, w * H) for name, w in kernel.saved.items()} if keep else {}
        h_prev, h_out = hs[1 - shift : 1 - shift + T], hs[shift : shift + T]  # (T, B, H), time order
        gi_views, w_t, state = kernel.views(gi), weight_hh.t(), list(state0[1:])
        for start in range(0, T, rows):
            chunk = order[start : start + rows]
            first = min(chunk[0][0], chunk[-1][0])  # the chunk covers times first .. first + len - 1
            state = kernel.run(gi_views, w_t, bias_hh, h, state, chunk, first, acts)
            if keep:
                span = slice(first, first + len(chunk))
                chunk_acts = {name: buffer[: len(chunk)] for name, buffer in acts.items()}
                slab = {name: buffer[span] for name, buffer in saved.items()}
                kernel.factors(chunk_acts, h_prev[span], h_out[span], slab)
        if keep:
            ctx.mode, ctx.reverse, ctx.keys = mode, reverse, list(saved)
            ctx.save_for_backward(weight_hh, hs, *saved.values())
        return h_out, h[order[-1][2]].clone(), *state

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out: Tensor, *d_finals: Tensor):
        kernel = KERNELS[ctx.mode]
        weight_hh, hs, *rest = ctx.saved_tensors
        saved = dict(zip(ctx.keys, rest, strict=True))
        T, B, H = d_out.shape
        shift, steps = _layout(T, ctx.reverse)
        with torch.autocast(d_out.device.type, enabled=False):
            d_steps, zero = d_out.unbind(0), d_out.new_zeros(B, H)
            # Backward order, each step with the output's gradient of the h it hands its own gradient to.
            walk = [(t, d_steps[t - 2 * shift + 1] if 0 <= t - 2 * shift + 1 < T else zero) for t in steps]
            walk.reverse()
            dh = d_steps[walk[0][0]] + d_finals[0]
            dgh, grad_gi, dh, d_state = kernel.backward(saved, walk, dh, list(d_finals[1:]), weight_hh)
            flat = dgh.view(T * B, -1)  # (T*B, G*H)
            h_prev = hs[1 - shift : 1 - shift + T].view(T * B, H)  # h_{t-1} of every step, in time order
            grad_w = flat.t().mm(h_prev) if ctx.needs_input_grad[3] else None
            grad_b = flat.sum(0) if ctx.needs_input_grad[4] else None
        return None, None, grad_gi, grad_w, grad_b, dh, *d_state


def scan(
    mode: str, gi: Tensor, state: State, weight_hh: Tensor, bias_hh: Tensor | None, reverse: bool
) -> tuple[Tensor, State]:
    """The fast twin of the layers' reference time loop: same arguments, same results.

    Args:
        mode: ``'RNN_TANH'``, ``'RNN_RELU'``, ``'GRU'`` or ``'LSTM'``.
        gi: all steps' input projections ``x W_ih^T + b_ih``, (T, B, G*H).
        state: initial state, a (B, H) tensor or ``(h, c)``.
        weight_hh, bias_hh: (G*H, H) and (G*H,) or None.
        reverse: run t = T-1 .. 0 (the backward direction of a bidirectional layer).

    Returns:
        ``(out, state_T)``: ``out`` (T, B, H) in time order, the final state structured like ``state``.
    """
    given = weight_hh.dtype
    dtype = compute_dtype(weight_hh)
    # Autocast: run the recurrence in its dtype (gi may already be in it); the casts stay on autograd's tape.
    gi, weight_hh = gi.to(dtype), weight_hh.to(dtype)
    bias_hh = None if bias_hh is None else bias_hh.to(dtype)
    parts = [part.to(dtype) for part in state_tensors(state)]
    if not torch.is_grad_enabled():  # tell FusedScan no gradient is wanted, so it stores no factors
        gi, weight_hh = gi.detach(), weight_hh.detach()
        bias_hh = None if bias_hh is None else bias_hh.detach()
        parts = [part.detach() for part in parts]
    with torch.autocast(gi.device.type, enabled=False):
        results = FusedScan.apply(mode, reverse, gi.contiguous(), weight_hh, bias_hh, *parts)
    out, *finals = (result.to(given) for result in results)  # autocast: back to float32, as torch.nn
    return out, state_from_tensors(finals)
