"""The block around a minGRU / minLSTM cell (Feng et al. 2024): norm, causal conv, cell, MLP, residuals."""

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.nn.minrnn import MinGRU, MinLSTM
from rnnlab.nn.state import state_tensors

CELLS = {"MinGRU": MinGRU, "MinLSTM": MinLSTM}


class RMSNorm(nn.Module):
    """``x / sqrt(mean(x²) + eps) ⊙ weight`` over the last dim (Zhang & Sennrich 2019); weight starts at 1."""

    def __init__(self, size: int, eps: float = 1e-6, device=None, dtype=None) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(size, device=device, dtype=dtype))

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class CausalConv(nn.Module):
    r"""Depthwise causal convolution over time, kernel k, that carries its last k-1 inputs across windows.

    ``y_t = b + Σ_{j<k} w[:, j] ⊙ x_{t-k+1+j}`` per feature: ``weight`` (H, k), ``bias`` (H,), both
    ~ U(-1/sqrt(k), 1/sqrt(k)) as ``torch.nn.Conv1d(H, H, k, groups=H)``. Steps before the stream's
    start read zeros. ``past`` (B, (k-1)*H) holds the previous k-1 inputs, oldest first, frame j in
    columns ``[j*H, (j+1)*H)``; k shifted multiply-adds, so one step costs the same as any other.
    """

    def __init__(self, size: int, kernel_size: int = 4, device=None, dtype=None) -> None:
        super().__init__()
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1:
            raise ValueError(f"kernel_size must be an int of at least 1, got {kernel_size!r}")
        self.kernel_size = kernel_size
        self.weight = nn.Parameter(torch.empty(size, kernel_size, device=device, dtype=dtype))
        self.bias = nn.Parameter(torch.empty(size, device=device, dtype=dtype))
        bound = 1 / math.sqrt(kernel_size)
        for param in (self.weight, self.bias):
            nn.init.uniform_(param, -bound, bound)

    def forward(self, x: Tensor, past: Tensor) -> tuple[Tensor, Tensor]:
        """``x`` (T, B, H), ``past`` (B, (k-1)*H) -> ``(y (T, B, H), past' (B, (k-1)*H))``."""
        T, B, H = x.shape
        frames = torch.cat((past.view(B, -1, H).transpose(0, 1), x))  # (k-1+T, B, H), oldest first
        y = self.bias.expand_as(x)
        for j in range(self.kernel_size):
            y = torch.addcmul(y, frames[j : j + T], self.weight[:, j])
        return y, frames[T:].transpose(0, 1).reshape(B, -1)


class MinBlock(nn.Module):
    """One layer of :class:`MinBlockStack`: ``x + cell(conv(norm(x)))``, then ``x + mlp(norm(x))``."""

    def __init__(
        self, cell: str, size: int, bias, conv, mlp, norm, kernel_size, mlp_ratio, dropout, factory
    ) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.norm = RMSNorm(size, **factory) if norm else nn.Identity()
        self.conv = CausalConv(size, kernel_size, **factory) if conv else None
        self.cell = CELLS[cell](size, size, 1, bias, **factory)
        self.mlp = None
        if mlp:
            width = mlp_ratio * size
            self.mlp_norm = RMSNorm(size, **factory) if norm else nn.Identity()
            self.mlp = nn.Sequential(
                nn.Linear(size, width, **factory), nn.GELU(), nn.Linear(width, size, **factory)
            )

    def forward(self, x: Tensor, h: Tensor, past: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
        """``x`` (T, B, H), ``h`` (B, H), ``past`` (B, (k-1)*H) or None -> the same three, one window on."""
        u = self.norm(x)
        if self.conv is not None:
            u, past = self.conv(u, past)
        y, h_n = self.cell(u, h[None])  # (T, B, H), (1, B, H)
        x = x + self.drop(y)
        if self.mlp is not None:
            x = x + self.drop(self.mlp(self.mlp_norm(x)))
        return x, h_n[0], past


class MinBlockStack(nn.Module):
    r"""Stacked minGRU / minLSTM blocks, the architecture Feng et al. 2024 train language models with.

    ``(x (T, B, input_size), state) -> (output (T, B, H), state)``, like :class:`rnnlab.nn.MinGRU`. The
    input is first projected to width H (``proj_in``, no bias; only when ``input_size != H``), the
    residual stream's width. Then per layer (:class:`MinBlock`; Mamba's and minLM's layout)::

        u = norm(x);  u = conv(u)          RMSNorm, causal depthwise conv (kernel k)   ``norm``, ``conv``
        x = x + cell(u)                    MinGRU / MinLSTM (H -> H), residual
        x = x + W_2 gelu(W_1 norm(x))      MLP of width mlp_ratio*H, residual           ``mlp``, ``norm``

    and, with ``norm``, a final RMSNorm. Each part switches off by its constructor argument, so what it
    buys can be measured. ``dropout`` (training only) drops each residual branch's output before it is
    added (the cell's and the MLP's). ``mlp_ratio = 2`` gives a minGRU block 2H² + 4H² weights per
    layer, the 6H² of one GRU layer (3H² input, 3H² hidden): equal work per token.

    State: with ``conv``, the tuple ``(h (L, B, H), past (L, B, (k-1)*H))``, the cells' h and each
    conv's last k-1 inputs (:class:`CausalConv`); without, the tensor h. Every part has the batch on
    dim 1 (rnnlab.nn.state). So a stream cut into windows, or fed one step at a time (generation, T = 1:
    the cells' step path), gives what the whole stream gives.

    Parameters: ``proj_in.weight``; per layer ``blocks.{k}.norm.weight``, ``blocks.{k}.conv.weight`` /
    ``.bias``, ``blocks.{k}.cell.weight_ih_l0`` / ``bias_ih_l0`` (the cell's layout), ``mlp_norm.weight``,
    ``mlp.0`` / ``mlp.2`` (torch Linear); ``norm_out.weight``. The cells start as rnnlab.nn.MinGRU does,
    the Linears and RMSNorms as torch's.
    """

    batch_first = False
    bidirectional = False

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        cell: str = "MinGRU",
        conv: bool = True,
        mlp: bool = True,
        norm: bool = True,
        kernel_size: int = 4,
        mlp_ratio: int = 2,
        dropout: float = 0.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}")
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers <= 0:
            raise ValueError(f"num_layers must be an int greater than zero, got {num_layers!r}")
        factory = {"device": device, "dtype": dtype}
        self.mode, self.input_size, self.hidden_size = f"{cell}Block", input_size, hidden_size
        self.state_names = ("h", "past") if conv else ("h",)  # the state's tensors, in order
        self.num_layers, self.bias, self.conv, self.kernel_size = num_layers, bias, conv, kernel_size
        self.proj_in = (
            nn.Linear(input_size, hidden_size, bias=False, **factory) if input_size != hidden_size else None
        )
        self.blocks = nn.ModuleList(
            MinBlock(cell, hidden_size, bias, conv, mlp, norm, kernel_size, mlp_ratio, dropout, factory)
            for _ in range(num_layers)
        )
        self.norm_out = RMSNorm(hidden_size, **factory) if norm else nn.Identity()

    def init_state(
        self, batch_size: int, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Zeros of the state's structure (see the class); device and dtype default to the parameters'."""
        h = self.blocks[0].cell.init_state(batch_size, device, dtype).expand(self.num_layers, -1, -1)
        if not self.conv:
            return h.contiguous()
        past = h.new_zeros(self.num_layers, batch_size, (self.kernel_size - 1) * self.hidden_size)
        return h.contiguous(), past

    def forward(self, input: Tensor, state: Tensor | tuple[Tensor, Tensor] | None = None):
        """Run every block over the window: ``input`` (T, B, input_size) -> ``(output (T, B, H), state)``.
        ``input`` may also be (T, B) integer ids, read as one-hot vectors (a gather of ``proj_in``'s
        columns, without the ``input_size``-wide matmul).

        Raises:
            ValueError: input not (T, B, input_size) floats or (T, B) ids below ``input_size``, or a
                state of the wrong structure or shape.
        """
        x = self._project(input)  # (T, B, H)
        expected = [part.shape for part in state_tensors(self.init_state(x.size(1), device="meta"))]
        if state is None:
            state = self.init_state(x.size(1), device=x.device)
        elif (
            type(state) is not (tuple if self.conv else Tensor)
            or [s.shape for s in state_tensors(state)] != expected
        ):
            raise ValueError(f"{type(self).__name__}: expected a state shaped {expected}, as init_state's")
        h, past = state if self.conv else (state, None)
        finals_h, finals_past = [], []
        for k, block in enumerate(self.blocks):
            x, h_k, past_k = block(x, h[k], None if past is None else past[k])
            finals_h.append(h_k)
            finals_past.append(past_k)
        h_n = torch.stack(finals_h)  # (L, B, H)
        return self.norm_out(x), ((h_n, torch.stack(finals_past)) if self.conv else h_n)

    def _project(self, input: Tensor) -> Tensor:
        """``input`` (T, B, input_size) floats or (T, B) ids -> the residual stream's input (T, B, H)."""
        name, weight = type(self).__name__, self.blocks[0].cell.weight_ih_l0
        if input.is_floating_point():
            if input.dim() != 3 or input.size(-1) != self.input_size:
                raise ValueError(f"{name}: expected input (T, B, {self.input_size}) floats")
            return input if self.proj_in is None else self.proj_in(input)
        if input.dim() != 2 or (input.numel() and not 0 <= input.min() <= input.max() < self.input_size):
            raise ValueError(f"{name}: integer input must be (T, B) ids in [0, {self.input_size})")
        if self.proj_in is None:
            return F.one_hot(input, self.input_size).to(weight.dtype)
        return self.proj_in.weight.t()[input]  # (T, B, H): one_hot(ids) @ W^T is a gather of columns
