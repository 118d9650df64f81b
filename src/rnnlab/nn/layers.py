"""Stacked, optionally bidirectional RNN / GRU / LSTM layers from scratch, drop-in for torch.nn's."""

import functools
from collections.abc import Callable

import torch
from torch import nn

from rnnlab.nn.cells import rnn_mode
from rnnlab.nn.minblock import MinBlockStack
from rnnlab.nn.rnnbase import RNNBase


class RNN(RNNBase):
    r"""A stacked Elman RNN, ``torch.nn.RNN``'s twin (same arguments, parameters, outputs).

    For each layer ``l`` and time ``t``, with ``x_t^{(0)}`` the input and ``x_t^{(l)}`` (l > 0) the
    previous layer's output, dropped out in training mode::

        h_t^{(l)} = act(x_t^{(l)} W_ih^{(l)T} + b_ih^{(l)} + h_{t-1}^{(l)} W_hh^{(l)T} + b_hh^{(l)})

    ``act`` is ``tanh`` or ``relu`` (``nonlinearity``); the step is :func:`rnnlab.nn.cells.rnn_tanh_step`.
    Weights per layer: ``weight_ih_l{l}`` (H, in_l), ``weight_hh_l{l}`` (H, H), biases (H,). Shapes,
    names, init and the forward contract are documented on :class:`RNNBase`.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        mode = rnn_mode(nonlinearity)
        super().__init__(
            mode,
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            device,
            dtype,
        )
        self.nonlinearity = nonlinearity


class GRU(RNNBase):
    r"""A stacked GRU, ``torch.nn.GRU``'s twin, with torch's reset-after-matmul variant.

    For each layer ``l`` and time ``t`` (layer input ``x_t`` as in :class:`RNN`, layer superscripts
    dropped)::

        r_t = σ(x_t W_ir^T + b_ir + h_{t-1} W_hr^T + b_hr)
        z_t = σ(x_t W_iz^T + b_iz + h_{t-1} W_hz^T + b_hz)
        n_t = tanh(x_t W_in^T + b_in + r_t ⊙ (h_{t-1} W_hn^T + b_hn))
        h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}

    The notes' ``H̃_t = tanh(X_t W_xh + (R_t ⊙ H_{t-1}) W_hh + b_h)`` gates ``h`` *before* the matmul; this
    layer gates the matmul's result (and ``b_hn``) instead, so the two are different functions: see
    :class:`rnnlab.nn.cells.GRUCell`. Weights per layer: ``weight_ih_l{l}`` (3H, in_l) = [W_ir; W_iz; W_in],
    ``weight_hh_l{l}`` (3H, H) = [W_hr; W_hz; W_hn], biases (3H,), chunk order r, z, n. Shapes, names,
    init and the forward contract are documented on :class:`RNNBase`.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        args = (input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device, dtype)
        super().__init__("GRU", *args)


class LSTM(RNNBase):
    r"""A stacked LSTM, ``torch.nn.LSTM``'s twin; the state is the pair ``(h, c)``.

    For each layer ``l`` and time ``t`` (layer input ``x_t`` as in :class:`RNN`, layer superscripts
    dropped), the notes' ``I, F, O = σ(...)``, ``C̃ = tanh(...)`` in torch's layout::

        i_t, f_t, g_t, o_t = chunk4(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)
        c_t = σ(f_t) ⊙ c_{t-1} + σ(i_t) ⊙ tanh(g_t)        (g is the notes' candidate C̃)
        h_t = σ(o_t) ⊙ tanh(c_t)

    Weights per layer: ``weight_ih_l{l}`` (4H, in_l) = [W_ii; W_if; W_ig; W_io], ``weight_hh_l{l}``
    (4H, H), biases (4H,), chunk order i, f, g, o. ``proj_size`` exists only for torch's signature and
    must be 0. Shapes, names, init and the forward contract are documented on :class:`RNNBase`.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if proj_size != 0:
            raise ValueError(
                f"proj_size is not supported by rnnlab's LSTM; got proj_size={proj_size}, need 0"
            )
        args = (input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device, dtype)
        super().__init__("LSTM", *args)
        self.proj_size = 0


MIN_STACKS = {
    "mingru": functools.partial(MinBlockStack, cell="MinGRU"),
    "minlstm": functools.partial(MinBlockStack, cell="MinLSTM"),
}
LAYERS: dict[str, dict[str, Callable[..., nn.Module]]] = {
    "torch": {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM, **MIN_STACKS},
    "scratch": {"rnn": RNN, "gru": GRU, "lstm": LSTM, **MIN_STACKS},
}
"""``--impl`` -> ``--cell`` -> the layer class: torch.nn's fused kernels, or rnnlab.nn's from-scratch twins
(same constructor, parameters and outputs, so their state_dicts are interchangeable). minGRU and minLSTM
exist only in rnnlab.nn (torch has no twin): either impl builds them in the block of Feng et al. 2024
(:class:`rnnlab.nn.MinBlockStack`: norm, causal convolution, cell, MLP, residuals)."""


def recurrent_layer(impl: str, cell: str) -> Callable[..., nn.Module]:
    """The recurrent layer class for ``--impl`` (torch, scratch) and ``--cell`` (rnn, gru, lstm, mingru,
    minlstm): called as ``layer(input_size, hidden_size, num_layers, dropout=p)``.

    Raises:
        KeyError: an unknown impl or cell (configs validate both before they get here).
    """
    return LAYERS[impl][cell]
