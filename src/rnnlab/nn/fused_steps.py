"""The gate math of the fast layers: each cell kind's forward steps, backward factors and backward loop.

:class:`rnnlab.nn.fused.FusedScan` owns what every kind shares (the h buffer, the time order, chunking,
the weight GEMM); a kernel here owns the rest, with autograd off:

- ``run``: forward steps, writing into preallocated buffers (``out=``, in-place activations). Step t's
  activations go to row ``t - first`` of a small scratch that the next chunk of steps reuses.
- ``factors``: after each chunk, turns its activations into the per-step factors the backward
  multiplies by (``dx̂ = factor ⊙ dh``), in a few slab-wide ops while the chunk is still in cache.
- ``backward``: the reverse time loop, a few multiplies and the one hidden matmul per step.

Notation, per step t: ``gh = h_{t-1} W_hh^T (+ b_hh)`` (B, G*H); ``dh`` the total gradient reaching
``h_t`` (from the output at t and from step t+1); ``dgh`` the gradient wrt the hidden-side
pre-activations, which gives ``dh_{t-1} = dout_{t-1} + dgh W_hh (+ direct terms)`` here and
``dW_hh = Σ_t dgh_t^T h_{t-1}`` in FusedScan; ``dgi`` the gradient wrt ``gi`` (the input side).
"""

from typing import ClassVar, Protocol

import torch
from torch import Tensor

Buffers = dict[str, Tensor]
Order = list[tuple[int, int, int]]
"""``(t, prev, new)`` per step in run order: h_{t-1} is read from slot ``prev``, h_t written to ``new``."""
Walk = list[tuple[int, Tensor]]
"""``(t, dout of h_{t-1})`` per step in backward order (zeros where h_{t-1} is the initial state)."""


class Kernel(Protocol):
    """What :class:`rnnlab.nn.fused.FusedScan` asks of a cell kind (the three classes below)."""

    gates: int  # G, gate blocks per weight: rows = G * H
    fold_bias: bool  # b_hh may be added to gi once for all steps, outside the per-step matmul
    activations: ClassVar[dict[str, int]]  # per-step scratch: name -> width in units of H
    saved: ClassVar[dict[str, int]]  # per-step factors kept for backward: name -> width in units of H

    def views(self, gi: Tensor) -> list:
        """Per-step views of ``gi`` (T, B, G*H), as ``run`` reads them."""

    def rows(self, acts: Buffers) -> list:
        """Per-row views of the activation scratch ``acts`` (rows, B, width*H), as ``step`` takes them."""

    def step(self, gi_t, w_t: Tensor, bias: Tensor | None, h_prev: Tensor, h_new: Tensor, state, row, out):
        """One step: read ``h_prev`` (B, H), write ``h_new`` (another buffer) and the activations into
        ``row``; ``state`` holds the parts besides h (LSTM: [c]), written into ``out``'s buffers; returns
        the new parts. The generation step (:class:`rnnlab.generate.lean.LeanStep`) calls it too."""

    def run(
        self, gi: list, w_t: Tensor, bias: Tensor | None, h: list, state: list, chunk: Order, first: int, acts
    ) -> list:
        """Run ``chunk``'s steps: read ``h[prev]``, write ``h[new]``; step t's activations go to row
        ``t - first`` of ``acts``. ``state`` holds the parts besides h (LSTM: [c]); returns them updated."""

    def factors(self, acts: Buffers, h_prev: Tensor, h_out: Tensor, out: Buffers) -> None:
        """Write a chunk's backward factors into ``out`` (slabs of ``saved``), all in time order."""

    def backward(self, saved: Buffers, walk: Walk, dh: Tensor, d_state: list, weight_hh: Tensor) -> tuple:
        """The reverse loop; returns ``(dgh, dgi, dh_0, d_state_0)``, dgh and dgi (T, B, G*H)."""


def steps(buffer: Tensor, parts: int = 1) -> list:
    """Per-step views of a (T, B, parts*H) buffer, made in one call instead of T indexings per step;
    with ``parts > 1``, one tuple of the step's ``parts`` (B, H) views (e.g. gates) per step."""
    if parts == 1:
        return buffer.unbind(0)
    return list(zip(*(part.unbind(0) for part in buffer.chunk(parts, dim=-1)), strict=True))


def _sigmoid_grad(a: Tensor, out: Tensor | None = None) -> Tensor:
    """``σ'`` from ``a = σ(x)``: ``a (1 − a)``."""
    return torch.addcmul(a, a, a, value=-1, out=out)


def _tanh_grad(a: Tensor, out: Tensor | None = None) -> Tensor:
    """``tanh'`` from ``a = tanh(x)``: ``1 − a²``."""
    return torch.addcmul(a.new_ones(()), a, a, value=-1, out=out)


class RNNKernel:
    r"""Elman step ``h_t = act(gi_t + h_{t-1} W_hh^T)`` (b_hh folded into ``gi``), act = tanh or relu.

    Backward: ``dgh_t = dgi_t = dh_t ⊙ act'``, with ``act' = 1 − h_t²`` (tanh) or ``[h_t > 0]`` (relu).
    """

    gates = 1
    fold_bias = True  # b_hh sits inside the activation next to gi: add it to all T steps at once
    # Per-step widths in units of H. h itself lives in FusedScan's buffer, so no scratch is needed.
    activations: ClassVar[dict[str, int]] = {}
    saved: ClassVar[dict[str, int]] = {"grad": 1}

    def __init__(self, nonlinearity: str) -> None:
        self.relu = nonlinearity == "relu"

    def views(self, gi: Tensor) -> list:
        return steps(gi)

    def rows(self, acts: Buffers) -> list:
        return [None]  # no scratch: h itself holds everything

    def step(self, gi_t, w_t: Tensor, bias, h_prev: Tensor, h_new: Tensor, state, row, out):
        torch.addmm(gi_t, h_prev, w_t, out=h_new)
        h_new.relu_() if self.relu else h_new.tanh_()
        return state

    def run(self, gi: list, w_t: Tensor, bias, h: list, state: list, chunk: Order, first: int, acts):
        for t, prev, new in chunk:
            self.step(gi[t], w_t, bias, h[prev], h[new], state, None, state)
        return state

    def factors(self, acts: Buffers, h_prev: Tensor, h_out: Tensor, out: Buffers) -> None:
        if self.relu:
            torch.sign(h_out, out=out["grad"])  # h >= 0 after relu: the sign is the step function
        else:
            _tanh_grad(h_out, out=out["grad"])

    def backward(self, saved: Buffers, walk: Walk, dh: Tensor, d_state: list, weight_hh: Tensor):
        dgh = torch.empty_like(saved["grad"])  # (T, B, H)
        grad, dgh_steps = steps(saved["grad"]), steps(dgh)
        for t, base in walk:
            torch.mul(dh, grad[t], out=dgh_steps[t])
            dh = torch.addmm(base, dgh_steps[t], weight_hh)
        return dgh, dgh, dh, []


class GRUKernel:
    r"""GRU step in torch's layout (gates r, z, n; reset applied after the hidden matmul)::

        r = σ(gi_r + gh_r)   z = σ(gi_z + gh_z)   n = tanh(gi_n + r ⊙ gh_n)   h' = n + z ⊙ (h − n)

    Backward, with ``dh`` the gradient reaching ``h'``::

        dn̂ = dh ⊙ (1 − z)(1 − n²)                      (wrt n's pre-activation)
        dr̂ = dn̂ ⊙ gh_n r(1 − r)      dẑ = dh ⊙ (h − n) z(1 − z)
        dgi = [dr̂, dẑ, dn̂]   dgh = [dr̂, dẑ, dn̂ ⊙ r]   dh_{t-1} = dout_{t-1} + dh ⊙ z + dgh W_hh

    ``factors`` are ``(1 − z)(1 − n²)``, ``gh_n r(1 − r)``, ``(h − n) z(1 − z)``; r, z are kept too.
    """

    gates = 3
    fold_bias = False  # b_hn is scaled by r, so b_hh goes into the per-step matmul
    activations: ClassVar[dict[str, int]] = {"gh": 3, "rz": 2, "n": 1}
    saved: ClassVar[dict[str, int]] = {"rz": 2, "n_hat": 1, "r_hat": 1, "z_hat": 1}

    def views(self, gi: Tensor) -> list:
        H = gi.size(-1) // 3
        return list(zip(steps(gi[..., : 2 * H]), steps(gi[..., 2 * H :]), strict=True))

    def rows(self, acts: Buffers) -> list:
        H = acts["n"].size(-1)
        gh, rz, n = steps(acts["gh"]), steps(acts["rz"]), steps(acts["n"])
        gh_rz, gh_n = steps(acts["gh"][..., : 2 * H]), steps(acts["gh"][..., 2 * H :])
        return list(zip(gh, gh_rz, gh_n, rz, steps(acts["rz"], 2), n, strict=True))

    def step(self, gi_t, w_t: Tensor, bias, h_prev: Tensor, h_new: Tensor, state, row, out):
        (gi_rz, gi_n), (gh, gh_rz, gh_n, rz, (r, z), n) = gi_t, row
        if bias is None:
            torch.mm(h_prev, w_t, out=gh)
        else:
            torch.addmm(bias, h_prev, w_t, out=gh)
        torch.add(gi_rz, gh_rz, out=rz).sigmoid_()
        torch.addcmul(gi_n, r, gh_n, out=n).tanh_()
        torch.lerp(n, h_prev, z, out=h_new)  # n + z (h - n)
        return state

    def run(self, gi: list, w_t: Tensor, bias, h: list, state: list, chunk: Order, first: int, acts):
        rows = self.rows(acts)
        for t, prev, new in chunk:
            self.step(gi[t], w_t, bias, h[prev], h[new], state, rows[t - first], state)
        return state

    def factors(self, acts: Buffers, h_prev: Tensor, h_out: Tensor, out: Buffers) -> None:
        H = h_out.size(-1)
        n, (r, z) = acts["n"], acts["rz"].chunk(2, dim=-1)
        out["rz"].copy_(acts["rz"])
        _tanh_grad(n, out=out["n_hat"]).addcmul_(out["n_hat"], z, value=-1)
        _sigmoid_grad(r, out=out["r_hat"]).mul_(acts["gh"][..., 2 * H :])
        torch.sub(h_prev, n, out=out["z_hat"]).mul_(_sigmoid_grad(z))

    def backward(self, saved: Buffers, walk: Walk, dh: Tensor, d_state: list, weight_hh: Tensor):
        T, B, H = saved["n_hat"].shape
        r, z = zip(*steps(saved["rz"], 2), strict=True)
        n_hat, r_hat, z_hat = (saved[name].unbind(0) for name in ("n_hat", "r_hat", "z_hat"))
        # Two allocations, not one twice the size: fresh ones above glibc's mmap threshold (32 MiB at
        # most) are mapped and page-faulted in anew on every call.
        dgh, dgi = saved["rz"].new_empty(T, B, 3 * H), saved["rz"].new_empty(T, B, 3 * H)
        dgh_steps, dgh_parts = steps(dgh), steps(dgh, 3)
        dgh_rz, dgi_rz, dgi_n = steps(dgh[..., : 2 * H]), steps(dgi[..., : 2 * H]), steps(dgi[..., 2 * H :])
        for t, base in walk:
            dr, dz, dgh_n = dgh_parts[t]
            dn = torch.mul(dh, n_hat[t], out=dgi_n[t])
            torch.mul(dn, r_hat[t], out=dr)
            torch.mul(dh, z_hat[t], out=dz)
            torch.mul(dn, r[t], out=dgh_n)
            dgi_rz[t].copy_(dgh_rz[t])
            dh = torch.addmm(torch.addcmul(base, dh, z[t]), dgh_steps[t], weight_hh)
        return dgh, dgi, dh, []


class LSTMKernel:
    r"""LSTM step in torch's layout (gates i, f, g, o; b_hh folded into ``gi``)::

        i, f, g, o = σ, σ, tanh, σ (gi + h W_hh^T)    c' = f ⊙ c + i ⊙ g    h' = o ⊙ tanh(c')

    Backward, with ``dh`` the gradient reaching ``h'`` and ``dc'`` the one reaching ``c'`` from step t+1
    (``dc_{t+1} ⊙ f_{t+1}``, or the final state's gradient)::

        dc  = dc' + dh ⊙ o(1 − tanh²(c'))
        dî = dc ⊙ g i(1 − i)    df̂ = dc ⊙ c f(1 − f)    dĝ = dc ⊙ i(1 − g²)    dô = dh ⊙ tanh(c') o(1 − o)
        dgh = dgi = [dî, df̂, dĝ, dô]     dc_{t-1} = dc ⊙ f     dh_{t-1} = dout_{t-1} + dgh W_hh

    ``factors`` are the five products after ``dc`` / ``dh`` above, and f. The step keeps ``f ⊙ c``,
    which it computes anyway, so ``c f(1 − f) = (f ⊙ c)(1 − f)`` needs no history of c.
    """

    gates = 4
    fold_bias = True
    activations: ClassVar[dict[str, int]] = {"gates": 4, "fc": 1, "tanh_c": 1}
    saved: ClassVar[dict[str, int]] = {"factors": 6}

    def views(self, gi: Tensor) -> list:
        return steps(gi)

    def rows(self, acts: Buffers) -> list:
        H = acts["fc"].size(-1)
        gates, i_f, parts = steps(acts["gates"]), steps(acts["gates"][..., : 2 * H]), steps(acts["gates"], 4)
        return list(zip(gates, i_f, parts, steps(acts["fc"]), steps(acts["tanh_c"]), strict=True))

    def step(self, gi_t, w_t: Tensor, bias, h_prev: Tensor, h_new: Tensor, state, row, out):
        gates, i_f, (i, f, g, o), fc, tanh_c = row
        torch.addmm(gi_t, h_prev, w_t, out=gates)
        i_f.sigmoid_(), g.tanh_(), o.sigmoid_()
        c = torch.addcmul(torch.mul(f, state[0], out=fc), i, g, out=out[0])  # c_t = f c_{t-1} + i g
        torch.tanh(c, out=tanh_c)
        torch.mul(o, tanh_c, out=h_new)
        return [c]

    def run(self, gi: list, w_t: Tensor, bias, h: list, state: list, chunk: Order, first: int, acts):
        rows = self.rows(acts)
        c = state[0]  # c_{t-1}; never written to, it may be the caller's c_0
        c_buffers = torch.empty_like(c), torch.empty_like(c)  # c_t, alternately
        for k, (t, prev, new) in enumerate(chunk):
            (c,) = self.step(gi[t], w_t, bias, h[prev], h[new], [c], rows[t - first], [c_buffers[k % 2]])
        return [c]

    def factors(self, acts: Buffers, h_prev: Tensor, h_out: Tensor, out: Buffers) -> None:
        gates, fc, tanh_c, factors = acts["gates"], acts["fc"], acts["tanh_c"], out["factors"]
        H = fc.size(-1)
        i, f, g, o = gates.chunk(4, dim=-1)
        p_i, p_f, p_g, p_o, k_c, f_kept = factors.chunk(6, dim=-1)
        _sigmoid_grad(gates, out=factors[..., : 4 * H])  # σ' of all four; f's and g's are replaced next
        torch.addcmul(fc, fc, f, value=-1, out=p_f)
        _tanh_grad(g, out=p_g)
        p_i.mul_(g), p_g.mul_(i), p_o.mul_(tanh_c)
        _tanh_grad(tanh_c, out=k_c).mul_(o)
        f_kept.copy_(f)

    def backward(self, saved: Buffers, walk: Walk, dh: Tensor, d_state: list, weight_hh: Tensor):
        factors = saved["factors"]
        T, B, H = factors.shape[0], factors.shape[1], factors.shape[2] // 6
        dgh = factors.new_empty(T, B, 4 * H)
        p_ifg = steps(factors[..., : 3 * H].unflatten(-1, (3, H)))  # each (B, 3, H): i, f, g share dc
        d_ifg = steps(dgh[..., : 3 * H].unflatten(-1, (3, H)))
        _, _, _, p_o, k_c, f = zip(*steps(factors, 6), strict=True)
        d_o, dgh_steps = steps(dgh[..., 3 * H :]), steps(dgh)
        dc = d_state[0]
        for t, base in walk:
            dc = torch.addcmul(dc, dh, k_c[t])
            torch.mul(dc.unsqueeze(1), p_ifg[t], out=d_ifg[t])
            torch.mul(dh, p_o[t], out=d_o[t])
            dc.mul_(f[t])
            dh = torch.addmm(base, dgh_steps[t], weight_hh)
        return dgh, dgh, dh, [dc]
