"""One recurrent step from scratch (Elman RNN, GRU, LSTM) and cells with torch.nn's interface."""

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from rnnlab.nn.state import State, state_from_tensors, state_tensors

StepFn = Callable[[Tensor, State, Tensor, Tensor | None], State]
"""``step(gi, state, weight_hh, bias_hh) -> new state``, the signature of every ``*_step`` below."""


def linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``x @ weight^T + bias`` over any leading dims: ``(..., in)`` -> ``(..., out)``."""
    if bias is None:
        return x.matmul(weight.t())
    # One GEMM that starts from the bias (as torch.nn.functional.linear), not a GEMM and then an add.
    out = torch.addmm(bias, x.reshape(-1, x.size(-1)), weight.t())  # (N, out)
    return out.view(*x.shape[:-1], out.size(-1))


def rnn_tanh_step(gi: Tensor, h: Tensor, weight_hh: Tensor, bias_hh: Tensor | None) -> Tensor:
    """Elman step ``h' = tanh(gi + h W_hh^T + b_hh)``, with ``gi = x W_ih^T + b_ih``.

    Shapes: ``gi`` (B, H), ``h`` (B, H), ``weight_hh`` (H, H), ``bias_hh`` (H,) or None -> (B, H).
    """
    return torch.tanh(gi + linear(h, weight_hh, bias_hh))


def rnn_relu_step(gi: Tensor, h: Tensor, weight_hh: Tensor, bias_hh: Tensor | None) -> Tensor:
    """Elman step with ReLU: ``h' = relu(gi + h W_hh^T + b_hh)``; shapes as :func:`rnn_tanh_step`."""
    return torch.relu(gi + linear(h, weight_hh, bias_hh))


def gru_step(gi: Tensor, h: Tensor, weight_hh: Tensor, bias_hh: Tensor | None) -> Tensor:
    """GRU step in torch's layout; the equations are in :class:`GRUCell`.

    Shapes: ``gi = x W_ih^T + b_ih`` (B, 3H) in chunk order r, z, n; ``h`` (B, H); ``weight_hh`` (3H, H);
    ``bias_hh`` (3H,) or None -> (B, H).
    """
    gh = linear(h, weight_hh, bias_hh)  # (B, 3H)
    i_r, i_z, i_n = gi.chunk(3, dim=-1)  # each (B, H)
    h_r, h_z, h_n = gh.chunk(3, dim=-1)  # each (B, H)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    # Reset gate applied after the hidden matmul (torch / cuDNN), not to h before it (Cho et al. 2014).
    n = torch.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h


def lstm_step(
    gi: Tensor, state: tuple[Tensor, Tensor], weight_hh: Tensor, bias_hh: Tensor | None
) -> tuple[Tensor, Tensor]:
    """LSTM step in torch's layout; the equations are in :class:`LSTMCell`.

    Shapes: ``gi = x W_ih^T + b_ih`` (B, 4H) in chunk order i, f, g, o; ``state = (h, c)``, each (B, H);
    ``weight_hh`` (4H, H); ``bias_hh`` (4H,) or None -> ``(h', c')``, each (B, H).
    """
    h, c = state
    gates = gi + linear(h, weight_hh, bias_hh)  # (B, 4H)
    i, f, g, o = gates.chunk(4, dim=-1)  # each (B, H)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h, c


@dataclass(frozen=True)
class ModeSpec:
    """What a recurrent mode needs: gate blocks per weight (rows = gates * H), state tensors, the step."""

    gates: int
    num_states: int
    step: StepFn


MODES: dict[str, ModeSpec] = {
    "RNN_TANH": ModeSpec(gates=1, num_states=1, step=rnn_tanh_step),
    "RNN_RELU": ModeSpec(gates=1, num_states=1, step=rnn_relu_step),
    "GRU": ModeSpec(gates=3, num_states=1, step=gru_step),
    "LSTM": ModeSpec(gates=4, num_states=2, step=lstm_step),
}
"""torch's mode names (``torch.nn.RNNBase.mode``) -> how to run them."""


def rnn_mode(nonlinearity: str) -> str:
    """``'tanh'`` -> ``'RNN_TANH'``, ``'relu'`` -> ``'RNN_RELU'``; ValueError otherwise."""
    modes = {"tanh": "RNN_TANH", "relu": "RNN_RELU"}
    if nonlinearity not in modes:
        raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
    return modes[nonlinearity]


def check_sizes(input_size: int, hidden_size: int) -> None:
    """Raise TypeError / ValueError, as torch.nn.RNNBase does, unless both sizes are positive ints."""
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
        if value <= 0:
            raise ValueError(f"{name} must be greater than zero")


def make_weights(
    mode: str, input_size: int, hidden_size: int, bias: bool, device=None, dtype=None
) -> dict[str, nn.Parameter]:
    """Uninitialised ``weight_ih`` (G*H, in), ``weight_hh`` (G*H, H) and, with bias, ``bias_ih`` and
    ``bias_hh`` (G*H,), in torch's registration order; G is the mode's gate count."""
    rows = MODES[mode].gates * hidden_size
    factory = {"device": device, "dtype": dtype}
    weights = {
        "weight_ih": nn.Parameter(torch.empty(rows, input_size, **factory)),
        "weight_hh": nn.Parameter(torch.empty(rows, hidden_size, **factory)),
    }
    if bias:
        weights["bias_ih"] = nn.Parameter(torch.empty(rows, **factory))
        weights["bias_hh"] = nn.Parameter(torch.empty(rows, **factory))
    return weights


def reset_uniform(module: nn.Module, hidden_size: int) -> None:
    """Every parameter ~ U(-1/sqrt(H), 1/sqrt(H)), drawn in registration order, exactly as torch does."""
    bound = 1.0 / math.sqrt(hidden_size)
    for weight in module.parameters():
        nn.init.uniform_(weight, -bound, bound)


class _CellBase(nn.Module):
    """Parameters and the batched/unbatched forward shared by the three cells."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, bias: bool, device, dtype) -> None:
        super().__init__()
        check_sizes(input_size, hidden_size)
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        for name, param in make_weights(mode, input_size, hidden_size, bias, device, dtype).items():
            self.register_parameter(name, param)
        if not bias:  # torch registers the names as None, so `cell.bias_ih is None` works here too
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_uniform(self, self.hidden_size)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")

    def forward(self, input: Tensor, hx: State | None = None) -> State:
        name = type(self).__name__
        if input.dim() not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.dim()}D instead")
        spec = MODES[self.mode]
        parts = None if hx is None else state_tensors(hx)
        if parts is not None and len(parts) != spec.num_states:
            raise TypeError(
                f"{name}: hx should be {'a tuple (h_0, c_0)' if spec.num_states == 2 else 'a tensor'}"
            )
        for k, part in enumerate(parts or ()):
            if part.dim() not in (1, 2):
                raise ValueError(f"{name}: Expected hx[{k}] to be 1D or 2D, got {part.dim()}D instead")
        is_batched = input.dim() == 2
        x = input if is_batched else input.unsqueeze(0)  # (B, in)
        if x.size(1) != self.input_size:
            raise RuntimeError(
                f"{name}: input has inconsistent input_size: got {x.size(1)} expected {self.input_size}"
            )
        if parts is None:
            zeros = x.new_zeros(x.size(0), self.hidden_size)
            parts = (zeros,) * spec.num_states
        elif not is_batched:
            parts = tuple(part.unsqueeze(0) for part in parts)  # each (1, H)
        for k, part in enumerate(parts):
            if part.shape != (x.size(0), self.hidden_size):
                expected = [x.size(0), self.hidden_size]
                raise RuntimeError(f"{name}: Expected hx[{k}] of size {expected}, got {list(part.shape)}")
        gi = linear(x, self.weight_ih, self.bias_ih)  # (B, G*H)
        new = state_tensors(spec.step(gi, state_from_tensors(parts), self.weight_hh, self.bias_hh))
        return state_from_tensors(new if is_batched else tuple(part.squeeze(0) for part in new))


class RNNCell(_CellBase):
    r"""An Elman RNN cell, ``torch.nn.RNNCell``'s twin: ``h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)``.

    ``act`` is ``tanh`` or ``relu`` (``nonlinearity``). In the notes' row-vector form this is
    ``H_t = φ(X_t W_xh + H_{t-1} W_hh + b_h)`` with ``W_xh = W_ih^T``, ``W_hh = W_hh^T`` and ``b_h`` split
    into two biases (``b_ih + b_hh``), kept separate for state_dict parity with torch.

    Parameters: ``weight_ih`` (H, in), ``weight_hh`` (H, H), ``bias_ih`` and ``bias_hh`` (H,) or None
    when ``bias=False``; all ~ U(-1/sqrt(H), 1/sqrt(H)).

    Forward: ``input`` (B, in) or unbatched (in,); ``hx`` (B, H) / (H,), zeros when omitted.
    Returns ``h'`` shaped like ``hx``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(rnn_mode(nonlinearity), input_size, hidden_size, bias, device, dtype)
        self.nonlinearity = nonlinearity

    def extra_repr(self) -> str:
        return super().extra_repr() + (
            "" if self.nonlinearity == "tanh" else f", nonlinearity={self.nonlinearity}"
        )


class GRUCell(_CellBase):
    r"""A gated recurrent unit cell, ``torch.nn.GRUCell``'s twin, in torch's (cuDNN's) variant.

    The notes (row vectors, Cho et al. 2014)::

        R_t = σ(X_t W_xr + H_{t-1} W_hr + b_r)
        Z_t = σ(X_t W_xz + H_{t-1} W_hz + b_z)
        H̃_t = tanh(X_t W_xh + (R_t ⊙ H_{t-1}) W_hh + b_h)
        H_t = Z_t ⊙ H_{t-1} + (1 − Z_t) ⊙ H̃_t

    What this cell computes (torch's layout, each bias split in an input part and a hidden part)::

        r  = σ(x W_ir^T + b_ir + h W_hr^T + b_hr)
        z  = σ(x W_iz^T + b_iz + h W_hz^T + b_hz)
        n  = tanh(x W_in^T + b_in + r ⊙ (h W_hn^T + b_hn))
        h' = (1 − z) ⊙ n + z ⊙ h

    The one real difference is where the reset gate sits: torch multiplies the hidden matmul's *result*,
    ``r ⊙ (h W_hn^T + b_hn)``, the notes multiply ``h`` before it, ``(R_t ⊙ H_{t-1}) W_hh``. These are
    different functions in general, not only through ``b_hn`` (which here is gated by ``r`` too): ``r``
    scales the matmul's output units instead of its input units, and the two agree only when ``r = 1``.
    torch's form lets the three hidden gates share one matmul ``h W_hh^T`` per step; we follow it so that
    torch's weights load and give torch's outputs.

    Parameters: ``weight_ih`` (3H, in) = [W_ir; W_iz; W_in], ``weight_hh`` (3H, H) = [W_hr; W_hz; W_hn],
    ``bias_ih``, ``bias_hh`` (3H,) in the same chunk order r, z, n, or None when ``bias=False``; all
    ~ U(-1/sqrt(H), 1/sqrt(H)).

    Forward: ``input`` (B, in) or unbatched (in,); ``hx`` (B, H) / (H,), zeros when omitted.
    Returns ``h'`` shaped like ``hx``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__("GRU", input_size, hidden_size, bias, device, dtype)


class LSTMCell(_CellBase):
    r"""A long short-term memory cell, ``torch.nn.LSTMCell``'s twin.

    The notes (row vectors)::

        I_t = σ(X_t W_xi + H_{t-1} W_hi + b_i)     F_t = σ(X_t W_xf + H_{t-1} W_hf + b_f)
        O_t = σ(X_t W_xo + H_{t-1} W_ho + b_o)     C̃_t = tanh(X_t W_xc + H_{t-1} W_hc + b_c)
        C_t = F_t ⊙ C_{t-1} + I_t ⊙ C̃_t            H_t = O_t ⊙ tanh(C_t)

    are exactly what this cell computes, in torch's layout: ``W_x* = W_i*^T``, ``W_h* = W_h*^T``, each
    ``b_*`` split into ``b_i* + b_h*``, and the candidate C̃ is torch's gate ``g``::

        i, f, g, o = chunk4(x W_ih^T + b_ih + h W_hh^T + b_hh)
        c' = σ(f) ⊙ c + σ(i) ⊙ tanh(g)
        h' = σ(o) ⊙ tanh(c')

    Parameters: ``weight_ih`` (4H, in) = [W_ii; W_if; W_ig; W_io], ``weight_hh`` (4H, H) in the same chunk
    order i, f, g, o, ``bias_ih``, ``bias_hh`` (4H,) or None when ``bias=False``; all
    ~ U(-1/sqrt(H), 1/sqrt(H)) (no forget-gate bias trick, as torch).

    Forward: ``input`` (B, in) or unbatched (in,); ``hx = (h, c)``, each (B, H) / (H,), zeros when omitted.
    Returns ``(h', c')`` shaped like ``hx``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__("LSTM", input_size, hidden_size, bias, device, dtype)
