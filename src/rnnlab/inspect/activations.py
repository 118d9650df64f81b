"""Every unit's state at every character, layer by layer, with the gates of gated cells, and the
model's top next characters.

The recurrence is run again here, one step at a time, from each layer's weights and the step functions
of :mod:`rnnlab.nn.cells`, so every layer's states (not only the top one the model returns) and the
gates come out the same way for ``--impl torch`` and ``--impl scratch``. The model's own forward gives
the next-character probabilities (with the n-gram's share, for a residual model) and a check: its top
layer's outputs must equal the recorded ones (:attr:`Recording.forward_diff`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from rnnlab.model import LanguageModel
from rnnlab.nn import WeightDrop
from rnnlab.nn.cells import MODES, linear
from rnnlab.nn.minscan import mixing_logits
from rnnlab.nn.state import state_from_tensors, state_tensors

SIGNALS = {  # torch's mode -> what is recorded per unit: the state(s) first, then the gates
    "LSTM": ("h", "c", "i", "f", "o"),
    "GRU": ("h", "r", "z"),
    "RNN_TANH": ("h",),
    "RNN_RELU": ("h",),
    "MinGRUBlock": ("h", "z"),  # the cell's state, and its update gate (minLSTM's i' = 1 - f')
    "MinLSTMBlock": ("h", "z"),
}
STATES = ("h", "c")  # the signals that carry memory; the others are gates in (0, 1)
WINDOW = 2048  # characters per forward pass of the model: bounds the (1, window, V) logits in memory


@dataclass(frozen=True)
class Recording:
    """What the model did at each of ``T`` characters.

    Attributes:
        mode: the recurrent mode, torch's name (``"LSTM"``, ``"GRU"``, ``"RNN_TANH"``).
        signals: name -> ``(L, T, H)`` float32: ``h`` (every cell), ``c`` (LSTM), the gates ``i, f, o``
            (LSTM) or ``r, z`` (GRU), each after reading the character at that position.
        top_ids: ``(T, K)`` the model's K likeliest next ids after each position, likeliest first.
        top_probs: ``(T, K)`` float32 their probabilities.
        forward_diff: the largest ``|h - model(ids).outputs|`` over the top layer: a recording that does
            not reproduce the model's own forward would show it here.
    """

    mode: str
    signals: dict[str, np.ndarray]
    top_ids: np.ndarray
    top_probs: np.ndarray
    forward_diff: float


def recurrent_core(model: LanguageModel) -> nn.Module:
    """The model's recurrent stack (torch.nn's or rnnlab.nn's), unwrapped from a WeightDrop."""
    return model.rnn.module if isinstance(model.rnn, WeightDrop) else model.rnn


def _weights(core: nn.Module, k: int) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    """Layer ``k``'s ``weight_ih`` (G*H, in), ``weight_hh`` (G*H, H), ``bias_ih``, ``bias_hh`` (G*H,)
    or None."""
    return tuple(
        getattr(core, f"{name}_l{k}", None) for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    )


def _gates(mode: str, gi: Tensor, h_prev: Tensor, weight_hh: Tensor, bias_hh: Tensor | None) -> dict:
    """The gates of all steps at once, from the inputs' projection ``gi`` (T, G*H) and the states before
    each step ``h_prev`` (T, H): LSTM's i, f, o and GRU's r, z, each (T, H)."""
    if mode not in ("LSTM", "GRU"):
        return {}
    pre = gi + linear(h_prev, weight_hh, bias_hh)  # (T, G*H); GRU's r and z see gi + gh whole
    if mode == "LSTM":
        i, f, _, o = pre.chunk(4, dim=-1)  # torch's order i, f, g, o
        return {"i": torch.sigmoid(i), "f": torch.sigmoid(f), "o": torch.sigmoid(o)}
    r, z, _ = pre.chunk(3, dim=-1)  # torch's order r, z, n
    return {"r": torch.sigmoid(r), "z": torch.sigmoid(z)}


def run_layer(mode: str, gi: Tensor, weight_hh: Tensor, bias_hh: Tensor | None) -> dict[str, Tensor]:
    """One layer's recurrence from a zero state, one step function call per character.

    Args:
        mode: torch's mode name (a key of :data:`rnnlab.nn.cells.MODES`).
        gi: ``(T, G*H)`` the inputs' projection ``x W_ih^T + b_ih``.
        weight_hh, bias_hh: the layer's hidden weights ``(G*H, H)`` and bias ``(G*H,)`` or None.

    Returns:
        :data:`SIGNALS`\\ [mode] -> ``(T, H)``.
    """
    spec = MODES[mode]
    steps, hidden = gi.shape[0], weight_hh.shape[1]
    zero = gi.new_zeros(1, hidden)
    state = state_from_tensors([zero] * spec.num_states)
    out = gi.new_empty(spec.num_states, steps, hidden)  # (S, T, H): h, and c for an LSTM
    for t in range(steps):
        state = spec.step(gi[t : t + 1], state, weight_hh, bias_hh)  # each part (1, H)
        for s, part in enumerate(state_tensors(state)):
            out[s, t] = part[0]
    h_prev = torch.cat([zero, out[0, :-1]])  # (T, H): the state each step started from
    recorded = dict(zip(STATES, out, strict=False))
    return {**recorded, **_gates(mode, gi, h_prev, weight_hh, bias_hh)}


def record_layers(model: LanguageModel, ids: Tensor) -> tuple[str, dict[str, Tensor]]:
    """Every layer's states and gates over ``ids`` (T,) int64, starting from the zero state.

    Returns:
        the mode and :data:`SIGNALS`\\ [mode] -> ``(L, T, H)`` in the model's dtype; for minGRU /
        minLSTM blocks also ``"top"``, the stack's output ``(T, H)`` (what the decoder reads).
    """
    core = recurrent_core(model)
    mode = core.mode
    if mode not in MODES:
        signals, top = record_blocks(model, core, ids)
        return mode, {**signals, "top": top}
    layers = []
    with torch.no_grad():
        x = None if model.embedding is None else model.embedding.weight[ids]  # (T, E); eval: no dropout
        for k in range(core.num_layers):
            weight_ih, weight_hh, bias_ih, bias_hh = _weights(core, k)
            if x is None:  # one-hot input: one_hot(ids) @ W_ih^T is a gather of W_ih's columns
                gi = weight_ih.t()[ids] + (0 if bias_ih is None else bias_ih)  # (T, G*H)
            else:
                gi = linear(x, weight_ih, bias_ih)  # (T, G*H)
            layers.append(run_layer(mode, gi, weight_hh, bias_hh))
            x = layers[-1]["h"]  # (T, H): eval mode, no dropout between layers
    return mode, {name: torch.stack([layer[name] for layer in layers]) for name in SIGNALS[mode]}


def record_blocks(model: LanguageModel, core: nn.Module, ids: Tensor) -> tuple[dict[str, Tensor], Tensor]:
    """minGRU / minLSTM blocks (:class:`rnnlab.nn.MinBlockStack`): each layer's cell state ``h`` and
    update gate ``z`` over ``ids`` (T,), read from one pass of the stack over the whole text.

    Returns:
        ``({"h": (L, T, H), "z": (L, T, H)}, the stack's output (T, H))``.
    """
    seen: list[tuple[Tensor, Tensor]] = []
    hooks = [
        block.cell.register_forward_hook(lambda _, args, out: seen.append((args[0], out[0])))
        for block in core.blocks
    ]
    try:
        with torch.no_grad():
            top, _ = core(model.encode(ids[:, None]))  # (T, 1, H); eval: no dropout
            hs, zs = [], []
            for block, (u, y) in zip(core.blocks, seen, strict=True):
                cell = block.cell
                gates = linear(u[:, 0], cell.weight_ih_l0, getattr(cell, "bias_ih_l0", None))  # (T, G*H)
                hs.append(y[:, 0])
                zs.append(torch.sigmoid(mixing_logits(cell.mode, gates)[0]))
    finally:
        for hook in hooks:
            hook.remove()
    return {"h": torch.stack(hs), "z": torch.stack(zs)}, top[:, 0]


def predict(model: LanguageModel, ids: Tensor, top: int = 5) -> tuple[Tensor, Tensor, Tensor]:
    """The model's own forward over ``ids`` (T,), :data:`WINDOW` characters at a time, state carried.

    Returns:
        ``(top ids (T, K), their probabilities (T, K), top-layer outputs (T, H))``, K = min(top, V).
    """
    state, tops, probs, outputs = None, [], [], []
    with torch.no_grad():
        for start in range(0, len(ids), WINDOW):
            out = model(ids[None, start : start + WINDOW], state)
            state = out.state
            p, i = torch.softmax(out.logits[0].float(), dim=-1).topk(min(top, out.logits.shape[-1]))
            tops.append(i)
            probs.append(p)
            outputs.append(out.outputs[0])
    return torch.cat(tops), torch.cat(probs), torch.cat(outputs)


def record(model: LanguageModel, ids: np.ndarray | Tensor, top: int = 5) -> Recording:
    """Run ``model`` (in eval mode) over ``ids`` (T,) and record every unit; see :class:`Recording`."""
    ids = torch.as_tensor(np.asarray(ids, dtype=np.int64))
    model.eval()
    mode, signals = record_layers(model, ids)
    top_ids, top_probs, outputs = predict(model, ids, top)
    # The top layer's outputs: its h, or for minGRU / minLSTM blocks the stack's output (the residual
    # stream the decoder reads) over the whole text, where predict() went by windows.
    last = signals.pop("top", signals["h"][-1])
    diff = (last - outputs).abs().max().item() if len(ids) else 0.0
    return Recording(
        mode=mode,
        signals={name: s.float().numpy() for name, s in signals.items()},
        top_ids=top_ids.numpy(),
        top_probs=top_probs.numpy(),
        forward_diff=float(diff),
    )
