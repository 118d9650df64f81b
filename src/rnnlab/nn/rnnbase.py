"""RNNBase: what the from-scratch RNN, GRU and LSTM layers share (parameters, checks, the time loops)."""

import numbers
import warnings
from functools import partial

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from rnnlab.nn import fused
from rnnlab.nn.cells import (
    MODES,
    check_sizes,
    linear,
    make_weights,
    reset_uniform,
)
from rnnlab.nn.dropout import dropout
from rnnlab.nn.state import State, state_from_tensors, state_tensors


class RNNBase(nn.Module):
    """What RNN, GRU and LSTM share: parameters, argument checks, the layer/direction/time loops.

    A subclass only picks the ``mode`` (``'RNN_TANH'``, ``'RNN_RELU'``, ``'GRU'``, ``'LSTM'``), which fixes
    the gate multiplier G (1, 1, 3, 4), the number of state tensors and the step function
    (:data:`rnnlab.nn.cells.MODES`).

    Layer ``l`` in direction ``d`` owns ``weight_ih_l{l}{s}`` (G*H, in_l), ``weight_hh_l{l}{s}`` (G*H, H)
    and, with ``bias``, ``bias_ih_l{l}{s}``, ``bias_hh_l{l}{s}`` (G*H,), where ``s`` is ``''`` forward and
    ``'_reverse'`` backward, ``in_0 = input_size`` and ``in_l = D * H`` above (D = 2 if bidirectional
    else 1). Names, registration order and shapes are torch's, so ``load_state_dict`` works both ways.
    All parameters ~ U(-1/sqrt(H), 1/sqrt(H)), drawn in torch's order: same seed, same weights.

    Per layer and direction, the input projection of all T steps is one matmul, ``(T, B, G*H)``; the time
    loop then does one hidden matmul per step, walking backwards for ``_reverse``. Layer ``l + 1`` reads
    the concatenated ``[forward; reverse]`` outputs of layer ``l``, through inverted dropout in training
    mode, except after the last layer (as torch).

    Time loop: the fast path (:mod:`rnnlab.nn.fused`, hand-written BPTT) wherever it applies (CPU/CUDA;
    float32, float64, bfloat16, autocast); ``layer.fast = False`` selects the reference loop, the cell's
    step recorded by autograd, which every other case uses too.
    """

    fast: bool = True  # a plain attribute, not a constructor argument, so the signature stays torch's

    def __init__(
        self,
        mode: str,
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
        super().__init__()
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0 <= dropout <= 1:
            raise ValueError(
                "dropout should be a number in range [0, 1] representing the probability of an element "
                f"being zeroed, got {dropout!r}"
            )
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                f"expects num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}",
                stacklevel=3,
            )
        for name, flag in (("bias", bias), ("batch_first", batch_first), ("bidirectional", bidirectional)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} should be of type bool, got: {type(flag).__name__}")
        check_sizes(input_size, hidden_size)
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers <= 0:
            raise ValueError(f"num_layers must be an int greater than zero, got {num_layers!r}")
        if mode not in MODES:
            raise ValueError(f"Unrecognized RNN mode: {mode!r}; expected one of {sorted(MODES)}")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.num_directions = 2 if bidirectional else 1
        # One suffix per (layer, direction), in torch's order; index = layer * D + direction, which is
        # also the row of that pair's slice in h_0 / h_n.
        self._suffixes = [
            f"_l{layer}" + ("_reverse" if direction else "")
            for layer in range(num_layers)
            for direction in range(self.num_directions)
        ]
        for index, suffix in enumerate(self._suffixes):
            layer_input_size = (
                input_size if index < self.num_directions else hidden_size * self.num_directions
            )
            for name, param in make_weights(mode, layer_input_size, hidden_size, bias, device, dtype).items():
                self.register_parameter(name + suffix, param)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_uniform(self, self.hidden_size)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        defaults = {
            "num_layers": 1,
            "bias": True,
            "batch_first": False,
            "dropout": 0.0,
            "bidirectional": False,
        }
        for name, default in defaults.items():
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        return s

    def init_state(
        self, batch_size: int, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> State:
        """Zeros of the state's structure: a tensor, or ``(h, c)`` for the LSTM, each (L*D, B, H).

        ``device`` and ``dtype`` default to the parameters'.
        """
        weight = self.weight_ih_l0
        shape = (self.num_layers * self.num_directions, batch_size, self.hidden_size)
        device = weight.device if device is None else device
        dtype = weight.dtype if dtype is None else dtype
        parts = tuple(
            torch.zeros(shape, device=device, dtype=dtype) for _ in range(MODES[self.mode].num_states)
        )
        return state_from_tensors(parts)

    def _check_input(self, input: Tensor) -> None:
        name = type(self).__name__
        if isinstance(input, PackedSequence):
            raise TypeError(f"{name}: PackedSequence input is not supported; pass a padded tensor")
        if not input.is_floating_point():
            if input.dim() not in (1, 2):
                raise ValueError(
                    f"{name}: Expected integer (one-hot id) input to be 1D or 2D, got {input.dim()}D"
                )
            if input.numel() and not 0 <= int(input.min()) <= int(input.max()) < self.input_size:
                raise IndexError(f"{name}: one-hot ids must lie in [0, {self.input_size})")
            return
        if input.dim() not in (2, 3):
            raise ValueError(f"{name}: Expected input to be 2D or 3D, got {input.dim()}D tensor instead")
        if input.size(-1) != self.input_size:
            raise RuntimeError(
                f"input.size(-1) must be equal to input_size. "
                f"Expected {self.input_size}, got {input.size(-1)}"
            )
        if input.dtype != self.weight_ih_l0.dtype:
            raise ValueError(
                f"{name} input dtype ({input.dtype}) does not match weight dtype ({self.weight_ih_l0.dtype})"
            )

    def _checked_state(self, hx: State, is_batched: bool, batch_size: int) -> list[Tensor]:
        """Checked ``hx`` as a list of (L*D, B, H) tensors; unbatched (L*D, H) ones get B = 1."""
        num_states = MODES[self.mode].num_states
        parts = state_tensors(hx)
        if len(parts) != num_states:
            kind = "a tuple (h_0, c_0)" if num_states == 2 else "a tensor"
            raise TypeError(f"{type(self).__name__}: hx should be {kind}")
        want = 3 if is_batched else 2
        if any(part.dim() != want for part in parts):
            dims = ", ".join(f"{part.dim()}-D" for part in parts)
            raise RuntimeError(f"For {want}-D input, hx should also be {want}-D but got ({dims}) tensor(s)")
        if not is_batched:
            parts = [part.unsqueeze(1) for part in parts]  # each (L*D, 1, H)
        expected = (self.num_layers * self.num_directions, batch_size, self.hidden_size)
        for k, part in enumerate(parts):
            if part.shape != expected:
                raise RuntimeError(f"Expected hidden[{k}] size {expected}, got {list(part.shape)}")
        return parts

    def _weights(self, index: int) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """``(weight_ih, weight_hh, bias_ih, bias_hh)`` of one (layer, direction); no bias gives None."""
        s = self._suffixes[index]
        bias_ih, bias_hh = (
            (getattr(self, "bias_ih" + s), getattr(self, "bias_hh" + s)) if self.bias else (None, None)
        )
        return getattr(self, "weight_ih" + s), getattr(self, "weight_hh" + s), bias_ih, bias_hh

    def _direction(self, x: Tensor, ids: bool, index: int, state: State) -> tuple[Tensor, State]:
        """One (layer, direction) over ``x`` (T, B, in), or (T, B) ids: -> (T, B, H), final state."""
        weight_ih, weight_hh, bias_ih, bias_hh = self._weights(index)
        fast = self.fast and fused.applies(weight_hh)
        if fast and bias_hh is not None and fused.KERNELS[self.mode].fold_bias:
            bias_ih, bias_hh = bias_ih + bias_hh, None  # b_hh beside b_ih: added once for all T steps
        if ids:  # one_hot(x) @ W_ih^T picks column x of W_ih: gather it, skip the V-wide matmul
            gi = weight_ih.t()[x] if bias_ih is None else weight_ih.t()[x] + bias_ih  # (T, B, G*H)
        else:
            gi = linear(x, weight_ih, bias_ih)  # (T, B, G*H): all steps' input projections at once
        scan = partial(fused.scan, self.mode) if fast else self._reference_scan
        return scan(gi, state, weight_hh, bias_hh, reverse=index % self.num_directions == 1)

    def _reference_scan(
        self, gi: Tensor, state: State, weight_hh: Tensor, bias_hh: Tensor | None, reverse: bool
    ) -> tuple[Tensor, State]:
        """The slow, obvious path: the cell's step per t, autograd records every op."""
        step = MODES[self.mode].step
        steps = range(gi.size(0) - 1, -1, -1) if reverse else range(gi.size(0))
        outputs: list[Tensor] = [gi] * gi.size(0)  # placeholders, every slot is overwritten
        for t in steps:
            state = step(gi[t], state, weight_hh, bias_hh)
            outputs[t] = state_tensors(state)[0]  # h_t, (B, H)
        return torch.stack(outputs), state

    def forward(self, input: Tensor, hx: State | None = None) -> tuple[Tensor, State]:
        """Run every layer over the whole sequence.

        Args:
            input: (T, B, in), or (B, T, in) with ``batch_first``, or unbatched (T, in). An integer
                tensor of ids, (T, B) / (B, T) / (T,), stands for their one-hot vectors of width
                ``input_size`` (the notes' input) and is read by gathering columns of ``weight_ih_l0``.
            hx: initial state, (L*D, B, H) (unbatched: (L*D, H)); a tuple ``(h_0, c_0)`` for the LSTM.
                Zeros when omitted.

        Returns:
            ``(output, h_n)``, or ``(output, (h_n, c_n))`` for the LSTM. ``output`` holds the last layer's
            ``h_t`` for every t, (T, B, D*H) (batch_first: (B, T, D*H); unbatched: (T, D*H)), forward
            direction in the first H features; ``h_n`` / ``c_n`` are shaped like ``hx``. ``h_n`` is never
            batch-first, as in torch.

        Raises:
            ValueError: input not 2-D or 3-D, or its dtype differs from the weights'.
            RuntimeError: wrong input feature size, an empty sequence, or a state of the wrong rank or
                shape (torch's types).
            TypeError: a PackedSequence, or a state of the wrong structure.
        """
        self._check_input(input)
        one_hot_ids = not input.is_floating_point()
        is_batched = input.dim() == (2 if one_hot_ids else 3)
        batch_dim = 0 if self.batch_first else 1
        x = input if is_batched else input.unsqueeze(batch_dim)
        if self.batch_first:
            x = x.transpose(0, 1)  # (T, B, in), or (T, B) ids
        if x.size(0) == 0:
            raise RuntimeError(f"{type(self).__name__}: Expected sequence length to be larger than 0")
        if hx is None:
            parts = state_tensors(self.init_state(x.size(1), device=x.device))
        else:
            parts = self._checked_state(hx, is_batched, x.size(1))

        finals: list[list[Tensor]] = []  # final state of each (layer, direction), each part (B, H)
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.num_directions):
                index = layer * self.num_directions + direction
                state = state_from_tensors(tuple(part[index] for part in parts))
                out, state = self._direction(x, one_hot_ids and layer == 0, index, state)
                outputs.append(out)
                finals.append(state_tensors(state))
            x = torch.cat(outputs, dim=-1)  # (T, B, D*H)
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                x = dropout(x, self.dropout)

        output = x.transpose(0, 1) if self.batch_first else x
        h_n = tuple(torch.stack(part) for part in zip(*finals, strict=True))  # each (L*D, B, H)
        if not is_batched:
            output = output.squeeze(batch_dim)
            h_n = tuple(part.squeeze(1) for part in h_n)
        return output, state_from_tensors(h_n)
