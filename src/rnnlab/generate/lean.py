"""The generation step without the model's forward: a few preallocated tensor ops per layer."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rnnlab.model import LanguageModel
from rnnlab.nn.regularizers import WeightDrop
from rnnlab.nn.state import State, state_tensors

# Layer 0's input rows come from a precomputed (V, gates * H) table up to this many entries (64 MB
# in float32); beyond, they are computed per step.
TABLE_MAX = 1 << 24


class LeanStep:
    """A LanguageModel's generation step: ``(N,)`` ids -> ``(N, V)`` logits, the state kept here.

    At batch 1 a step is a dozen operations on vectors of a few KB, and dispatching each costs about
    as much as computing it, so the step does as few as it can. Per layer: the input rows, by one
    gather from a table precomputed once (layer 0: ``E W_ih^T + b`` for an embedding, ``W_ih^T + b``
    for one-hot input) or by one matmul (layers above; layer 0 where the table would pass
    :data:`TABLE_MAX` entries, or where fewer than V / 8 ids will be fed: the table's one GEMM costs
    about as much as V / 8 row-by-row matmuls); one hidden matmul; the gate math of torch.nn's cells
    (gate order, GRU's reset gate after the matmul), written into buffers allocated once, through
    views cut once. Then one decoder matmul, its bias carrying ``ban``. No LMOutput, transposes,
    argument checks or state stacking per step.

    Eval mode only (dropout and weight drop are the identity there). The logits equal the forward's up
    to rounding (sums in another order), so the ids drawn from them are the reference path's
    (tests/test_bench.py checks every cell, both impls, both encoders).
    """

    def __init__(self, model: LanguageModel, state: State, ban: torch.Tensor, rows: int):
        rnn = model.rnn.module if isinstance(model.rnn, WeightDrop) else model.rnn
        self.mode = rnn.mode
        fold = self.mode != "GRU"  # GRU's b_hn sits inside r * (W_hn h + b_hn): it cannot join b_ih
        self.layers = []  # per layer: W_ih^T, input bias, W_hh^T, hidden bias
        for k in range(rnn.num_layers):
            w_ih, w_hh = getattr(rnn, f"weight_ih_l{k}"), getattr(rnn, f"weight_hh_l{k}")
            b_ih = getattr(rnn, f"bias_ih_l{k}").detach() if rnn.bias else torch.zeros_like(w_ih[:, 0])
            b_hh = getattr(rnn, f"bias_hh_l{k}").detach() if rnn.bias else torch.zeros_like(w_hh[:, 0])
            b_in, b_h = (b_ih + b_hh, None) if fold else (b_ih, b_hh)
            self.layers.append((w_ih.t().contiguous(), b_in, w_hh.t().contiguous(), b_h))
        w_ih_t, b_in = self.layers[0][:2]
        self.embedding = None if model.embedding is None else model.embedding.weight.detach()
        self.table = None  # (V, G*H)
        if self.embedding is None:  # one_hot(x) @ W_ih^T is row x of W_ih^T
            self.table = w_ih_t + b_in
        elif len(self.embedding) * w_ih_t.shape[1] <= TABLE_MAX and len(self.embedding) <= 8 * rows:
            self.table = torch.addmm(b_in, self.embedding, w_ih_t)
        self.decoder_t = model.decoder.weight.t().contiguous()  # (H, V)
        self.decoder_bias = model.decoder.bias + ban
        parts = state_tensors(state)  # (L, N, H) each
        self.h = [h.clone() for h in parts[0]]  # (N, H) per layer, updated in place
        self.c = [c.clone() for c in parts[1]] if self.mode == "LSTM" else None
        self.buffers = [
            self._buffers(h, w_hh_t.shape[1]) for h, (_, _, w_hh_t, _) in zip(self.h, self.layers)
        ]
        self.cell = {"LSTM": self._lstm, "GRU": self._gru}.get(self.mode, self._rnn)

    @classmethod
    @torch.no_grad()
    def of(cls, model: torch.nn.Module, state: State, ban: torch.Tensor, rows: int) -> LeanStep | None:
        """A LeanStep for ``model`` from ``state`` (the forward's), or None where one does not apply
        (not a LanguageModel in eval mode with a unidirectional RNN/GRU/LSTM in float32 or float64).
        Built without autograd, from detached weights: calls need no ``torch.no_grad()``.

        Args:
            ban: ``(V,)`` added to every step's logits (-inf on banned ids, else 0).
            rows: how many ids it will be fed in all (decides whether to precompute the input table).
        """
        if not isinstance(model, LanguageModel) or model.training:
            return None
        rnn = model.rnn.module if isinstance(model.rnn, WeightDrop) else model.rnn
        dtype = rnn.weight_hh_l0.dtype
        ok = (
            rnn.mode in ("LSTM", "GRU", "RNN_TANH", "RNN_RELU")
            and not rnn.bidirectional
            and getattr(rnn, "proj_size", 0) == 0
            and dtype in (torch.float32, torch.float64)
            and all(p.dtype == dtype for p in model.parameters())
        )
        return cls(model, state, ban, rows) if ok else None

    @staticmethod
    def _buffers(h: torch.Tensor, width: int) -> dict:
        """Per layer: input rows, pre-activations and activations ``(N, G*H)``, each also cut into
        its G gate views once; two ``(N, H)`` scratch tensors."""
        gi, gates, act = (h.new_empty(h.shape[0], width) for _ in range(3))
        G = width // h.shape[1]
        buf = {"gi": gi, "gates": gates, "act": act, "a": torch.empty_like(h), "b": torch.empty_like(h)}
        return buf | {
            f"{name}_": tensor.chunk(G, 1) for name, tensor in (("gi", gi), ("gates", gates), ("act", act))
        }

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        x = None
        for k, (w_ih_t, b_in, w_hh_t, b_h) in enumerate(self.layers):
            gi = self.buffers[k]["gi"]
            if k > 0:
                torch.addmm(b_in, x, w_ih_t, out=gi)
            elif self.table is not None:
                torch.index_select(self.table, 0, ids, out=gi)
            else:
                torch.addmm(b_in, F.embedding(ids, self.embedding), w_ih_t, out=gi)
            x = self.cell(k, w_hh_t, b_h)  # (N, H)
        return torch.addmm(self.decoder_bias, x, self.decoder_t)  # (N, V), a new tensor

    def _lstm(self, k: int, w_hh_t: torch.Tensor, b_h: None) -> torch.Tensor:
        buf, h, c = self.buffers[k], self.h[k], self.c[k]
        (i, f, _, o), g, tanh_g, tanh_c = buf["act_"], buf["gates_"][2], buf["a"], buf["b"]
        torch.addmm(buf["gi"], h, w_hh_t, out=buf["gates"])  # (N, 4H): i, f, g, o
        torch.sigmoid(buf["gates"], out=buf["act"])  # one op for σ(i), σ(f), σ(o) (g's slot: unused)
        torch.tanh(g, out=tanh_g)
        c.mul_(f).addcmul_(i, tanh_g)  # c = σ(f) c + σ(i) tanh(g)
        torch.tanh(c, out=tanh_c)
        return torch.mul(o, tanh_c, out=h)  # h = σ(o) tanh(c)

    def _gru(self, k: int, w_hh_t: torch.Tensor, b_h: torch.Tensor) -> torch.Tensor:
        buf, h = self.buffers[k], self.h[k]
        (gi_r, gi_z, gi_n), (gh_r, gh_z, gh_n), (r, z, n) = buf["gi_"], buf["gates_"], buf["act_"]
        torch.addmm(b_h, h, w_hh_t, out=buf["gates"])  # (N, 3H): r, z, n
        torch.add(gi_r, gh_r, out=r).sigmoid_()
        torch.add(gi_z, gh_z, out=z).sigmoid_()
        torch.addcmul(gi_n, gh_n, r, out=n).tanh_()  # n = tanh(gi_n + r (W_hn h + b_hn))
        return h.sub_(n).mul_(z).add_(n)  # (h - n) z + n = (1 - z) n + z h, as torch computes it

    def _rnn(self, k: int, w_hh_t: torch.Tensor, b_h: None) -> torch.Tensor:
        buf, h = self.buffers[k], self.h[k]
        pre = torch.addmm(buf["gi"], h, w_hh_t, out=buf["gates"])
        return torch.tanh(pre, out=h) if self.mode == "RNN_TANH" else torch.clamp(pre, min=0, out=h)
