"""The generation step without the model's forward: a few preallocated tensor ops per layer."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from rnnlab.model import LanguageModel
from rnnlab.nn.fused import KERNELS
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
    about as much as V / 8 row-by-row matmuls); then one step of the fast layers' kernel
    (:mod:`rnnlab.nn.fused_steps`: the hidden matmul and the gate math), into buffers allocated once,
    through views cut once; each layer's state alternates between two buffers. Then one decoder
    matmul, its bias carrying ``ban``. No LMOutput, transposes, argument checks or state stacking per
    step.

    A residual model's n-gram log-probabilities are added to the logits, from a context the step keeps
    (its last ``n − 2`` ids and the new one).

    Eval mode only (dropout and weight drop are the identity there). The logits equal the forward's up
    to rounding (sums in another order), so the ids drawn from them are the reference path's
    (tests/test_bench.py checks every cell, both impls, both encoders).
    """

    def __init__(self, model: LanguageModel, state: State, ban: torch.Tensor, rows: int):
        rnn = model.rnn.module if isinstance(model.rnn, WeightDrop) else model.rnn
        self.kernel = KERNELS[rnn.mode]
        fold = self.kernel.fold_bias  # GRU's b_hn sits inside r * (W_hn h + b_hn): it cannot join b_ih
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
        parts = state_tensors(state)  # (L, N, H) each: h (and the LSTM's c); a residual model's history
        self.ngram = model.ngram
        if self.ngram is not None:  # the n-gram's context: the last n - 2 ids, as numpy (N, n-2)
            *parts, history = parts
            self.history = history[0].cpu().numpy()
            self.gate_t = model.prior_gate.weight.t().contiguous()
            self.gate_bias = model.prior_gate.bias + model.gate_base  # 1 + g_n(h) on the full model
            self.by_order = model.by_order
        self.buffers = [self._buffers([part[k] for part in parts]) for k in range(rnn.num_layers)]
        self.now = 0  # which of each layer's two state buffers holds the current state

    def _buffers(self, state: list[torch.Tensor]) -> dict:
        """One layer's buffers: its state twice (current and next, alternating), the input rows ``gi``
        (N, G*H) with the kernel's view of them, and the kernel's activation scratch for one row."""
        h, N, H = state[0], state[0].shape[0], state[0].shape[1]
        gi = h.new_empty(1, N, self.kernel.gates * H)
        acts = {name: h.new_empty(1, N, w * H) for name, w in self.kernel.activations.items()}
        return {
            "h": [h.clone(), torch.empty_like(h)],
            "rest": [[s.clone() for s in state[1:]], [torch.empty_like(s) for s in state[1:]]],
            "gi": gi[0],
            "gi_t": self.kernel.views(gi)[0],
            "row": self.kernel.rows(acts)[0],
        }

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
        if rnn.mode not in KERNELS:
            return None  # minGRU / minLSTM blocks: their step path is O(1) per character already
        dtype = rnn.weight_hh_l0.dtype
        ok = (
            not rnn.bidirectional
            and getattr(rnn, "proj_size", 0) == 0
            and dtype in (torch.float32, torch.float64)
            and all(p.dtype == dtype for p in model.parameters())
        )
        return cls(model, state, ban, rows) if ok else None

    def __call__(self, ids: torch.Tensor) -> torch.Tensor:
        now, new, x = self.now, 1 - self.now, None
        for k, (w_ih_t, b_in, w_hh_t, b_h) in enumerate(self.layers):
            buf = self.buffers[k]
            if k > 0:
                torch.addmm(b_in, x, w_ih_t, out=buf["gi"])
            elif self.table is not None:
                torch.index_select(self.table, 0, ids, out=buf["gi"])
            else:
                torch.addmm(b_in, F.embedding(ids, self.embedding), w_ih_t, out=buf["gi"])
            h, rest = buf["h"], buf["rest"]
            self.kernel.step(buf["gi_t"], w_hh_t, b_h, h[now], h[new], rest[now], buf["row"], rest[new])
            x = h[new]  # (N, H)
        self.now = new
        logits = torch.addmm(self.decoder_bias, x, self.decoder_t)  # (N, V), a new tensor
        if self.ngram is None:
            return logits
        weight = torch.addmm(self.gate_bias, x, self.gate_t)  # (N, 1 or n): the weights on the n-gram
        prior = self._prior(ids).to(logits)
        if self.by_order:  # (N, n, V): Σ_k weight_k log P_k
            return logits.add_(torch.bmm(weight[:, None, :], prior)[:, 0])
        return logits.addcmul_(weight, prior)

    def _prior(self, ids: torch.Tensor) -> torch.Tensor:
        """``(N, V)`` the n-gram's log-probabilities after each row's context and its new id (``(N, n, V)``,
        every order's, for a model that weighs each order)."""
        seen = np.concatenate([self.history, ids.cpu().numpy()[:, None]], axis=1)  # (N, n-1)
        self.history = seen[:, 1:] if self.history.shape[1] else self.history
        context = seen[:, seen.shape[1] - self.ngram.context_length :]
        if len(ids) == 1:  # one context: the scalar path
            return self.ngram.next_log_probs(context[0], by_order=self.by_order)[None]
        if self.by_order:
            return self.ngram.probs_by_order(context).log_()
        return self.ngram.probs_flat(context).log_()
