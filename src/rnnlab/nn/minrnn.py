"""minGRU and minLSTM (Feng et al. 2024): stacked recurrent layers whose recurrence is linear in the state."""

import torch
from torch import Tensor, nn

from rnnlab.nn.cells import check_sizes, linear, reset_uniform
from rnnlab.nn.minscan import GATES, SCANS


class MinRNNBase(nn.Module):
    r"""What MinGRU and MinLSTM share: parameters, checks, the layer loop and the choice of scan.

    Layer ``k`` owns ``weight_ih_l{k}`` (G*H, in_k) and, with ``bias``, ``bias_ih_l{k}`` (G*H,): G = 2
    (minGRU, rows [z; h̃]) or 3 (minLSTM, rows [f; i; h̃]); ``in_0 = input_size``, ``in_k = H`` above.
    There is no hidden-to-hidden weight: the gates read only the input, which is what makes the
    recurrence linear in h. All parameters ~ U(-1/sqrt(H), 1/sqrt(H)), as torch's recurrent layers.

    Time loop (``layer.scan``, a plain attribute; results agree to rounding):

    * ``"fused"`` (default): the recurrence in linear space, one autograd node with hand-written BPTT
      (:class:`FusedScan`); on a CPU it beats a time-parallel scan, whose passes over (T, B, H) cost
      more than T steps of a (B, H) lerp.
    * ``"log"``: the paper's log-space parallel scan (:func:`log_scan`), autograd through it.
    * ``"step"``: :func:`step` per t, autograd recording each: the O(1)-per-token path, which every
      window of one step (T == 1, generation) takes whatever ``scan`` says.

    Layer ``k + 1`` reads layer ``k``'s outputs. The state is one tensor (L, B, H): h of each layer.
    Any sign of h0 is fine on every path (nothing takes ``log h``). From h0 ≥ 0 every h stays > 0,
    since g > 0 and each step is a convex combination of h_{t-1} and h̃_t.
    """

    scan: str = "fused"
    batch_first = False  # the input is always (T, B, in)
    bidirectional = False  # a language model's layer reads only the past

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_sizes(input_size, hidden_size)
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers <= 0:
            raise ValueError(f"num_layers must be an int greater than zero, got {num_layers!r}")
        if not isinstance(bias, bool):
            raise TypeError(f"bias should be of type bool, got: {type(bias).__name__}")
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bias = num_layers, bias
        factory = {"device": device, "dtype": dtype}
        rows = GATES[mode] * hidden_size
        for k in range(num_layers):
            width = input_size if k == 0 else hidden_size
            self.register_parameter(f"weight_ih_l{k}", nn.Parameter(torch.empty(rows, width, **factory)))
            if bias:
                self.register_parameter(f"bias_ih_l{k}", nn.Parameter(torch.empty(rows, **factory)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_uniform(self, self.hidden_size)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        return (
            s
            + (f", num_layers={self.num_layers}" if self.num_layers != 1 else "")
            + ("" if self.bias else ", bias=False")
        )

    def init_state(
        self, batch_size: int, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> Tensor:
        """Zeros (L, B, H); ``device`` and ``dtype`` default to the parameters'."""
        weight = self.weight_ih_l0
        return torch.zeros(
            self.num_layers,
            batch_size,
            self.hidden_size,
            device=weight.device if device is None else device,
            dtype=weight.dtype if dtype is None else dtype,
        )

    def _check(self, input: Tensor, hx: Tensor | None) -> None:
        name, weight = type(self).__name__, self.weight_ih_l0
        if self.scan not in SCANS:
            raise ValueError(f"{name}.scan must be one of {sorted(SCANS)}, got {self.scan!r}")
        if input.is_floating_point():
            if input.dim() != 3 or input.size(-1) != self.input_size:
                raise ValueError(f"{name}: expected input (T, B, {self.input_size}), got {list(input.shape)}")
            if input.dtype != weight.dtype and not torch.is_autocast_enabled(input.device.type):
                raise ValueError(
                    f"{name}: input dtype {input.dtype} does not match weight dtype {weight.dtype}"
                )
        elif input.dim() != 2 or (input.numel() and not 0 <= input.min() <= input.max() < self.input_size):
            raise ValueError(f"{name}: integer input must be (T, B) one-hot ids in [0, {self.input_size})")
        if input.size(0) == 0:
            raise ValueError(f"{name}: expected sequence length to be larger than 0")
        expected = (self.num_layers, input.size(1), self.hidden_size)
        if hx is not None and (not isinstance(hx, Tensor) or hx.shape != expected):
            got = list(hx.shape) if isinstance(hx, Tensor) else type(hx).__name__
            raise ValueError(f"{name}: expected hx of shape {expected}, got {got}")

    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Run every layer over the window.

        Args:
            input: (T, B, input_size); or (T, B) integer ids, read as their one-hot vectors by gathering
                columns of ``weight_ih_l0`` (as :class:`rnnlab.nn.RNNBase`).
            hx: (L, B, H), the state to continue from; zeros when None.

        Returns:
            ``(output (T, B, H), h_n (L, B, H))``: the last layer's h_t for every t, each layer's last h.

        Raises:
            ValueError: wrong input rank, width, dtype or ids, an empty window, a wrongly shaped hx, or
                an unknown ``scan``.
        """
        self._check(input, hx)
        if hx is None:
            hx = self.init_state(input.size(1), device=input.device)
        scan = SCANS["step" if input.size(0) == 1 else self.scan]
        x, finals = input, []
        for k in range(self.num_layers):
            weight, bias = getattr(self, f"weight_ih_l{k}"), getattr(self, f"bias_ih_l{k}", None)
            if x.is_floating_point():
                gates = linear(x, weight, bias)  # (T, B, G*H): every step's gates in one GEMM
            else:  # one_hot(x) W^T is column x of W
                gates = weight.t()[x] if bias is None else weight.t()[x] + bias  # (T, B, G*H)
            x = scan(self.mode, gates.to(hx.dtype), hx[k])  # (T, B, H); autocast: the scan in float32
            finals.append(x[-1])
        return x, torch.stack(finals)


class MinGRU(MinRNNBase):
    r"""A stacked minGRU (Feng et al. 2024, "Were RNNs All We Needed?", §3.1), shaped like ``torch.nn.GRU``.

    For each layer and time t, with ``x_t`` the layer's input::

        z_t = σ(x_t W_z^T + b_z)                 h̃_t = g(x_t W_h^T + b_h)
        h_t = (1 − z_t) ⊙ h_{t−1} + z_t ⊙ h̃_t     g(x) = x + 1/2 if x ≥ 0 else σ(x)

    ``weight_ih_l{k}`` (2H, in_k) = [W_z; W_h], ``bias_ih_l{k}`` (2H,) = [b_z; b_h]. Shapes, init, the
    scans and the state are documented on :class:`MinRNNBase`.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True, **factory):
        super().__init__("MinGRU", input_size, hidden_size, num_layers, bias, **factory)


class MinLSTM(MinRNNBase):
    r"""A stacked minLSTM (Feng et al. 2024, §3.2, length-independent scaling), shaped like ``torch.nn.GRU``.

    For each layer and time t, with ``x_t`` the layer's input::

        f_t = σ(x_t W_f^T + b_f)      i_t = σ(x_t W_i^T + b_i)      h̃_t = g(x_t W_h^T + b_h)
        f'_t = f_t / (f_t + i_t)      i'_t = i_t / (f_t + i_t)
        h_t = f'_t ⊙ h_{t−1} + i'_t ⊙ h̃_t

    Since ``f' + i' = 1`` this is minGRU's update with ``z = i' = σ(softplus(-x_f) - softplus(-x_i))``
    (:func:`mixing_logits`). ``weight_ih_l{k}`` (3H, in_k) = [W_f; W_i; W_h], ``bias_ih_l{k}`` (3H,).
    Unlike the LSTM the state is h alone. Shapes, init, the scans: :class:`MinRNNBase`.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True, **factory):
        super().__init__("MinLSTM", input_size, hidden_size, num_layers, bias, **factory)
