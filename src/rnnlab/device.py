"""Where a run computes: device choice and the autocast context for bf16."""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Iterator

import torch

from rnnlab.errors import RnnlabError


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA when present, else the CPU; ``"cuda"``/``"cuda:N"``/``"cpu"`` are checked."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise RnnlabError(f"--device {name!r} is not a device; use auto, cpu, cuda or cuda:N") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RnnlabError(f"--device {name}: this torch sees no CUDA GPU; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise RnnlabError(f"--device {name}: only cpu and cuda are supported")
    return device


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively: a CUDA GPU that supports it, or a CPU with
    AVX-512 BF16 or AMX (there bf16 training measured 1.36x fp32's speed; elsewhere it is emulated and
    an order of magnitude slower)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    cpu = torch.cpu
    checks = (getattr(cpu, "_is_avx512_bf16_supported", None), getattr(cpu, "_is_amx_tile_supported", None))
    try:
        return any(check() for check in checks if check is not None)
    except RuntimeError:
        return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> ``bf16`` where :func:`native_bf16`, else ``fp32``; the others as they are."""
    if precision != "auto":
        return precision
    return "bf16" if native_bf16(device) else "fp32"


@contextlib.contextmanager
def autocast(device: torch.device, precision: str) -> Iterator[None]:
    """bf16 autocast for the forward pass (``precision="bf16"``), or nothing for fp32.

    On a CPU whose oneDNN has no bf16 LSTM/GRU primitive (no AVX-512 bf16), torch.nn's recurrent
    layers fail under autocast; oneDNN is then turned off inside the context, and torch's own kernels
    run them instead (slower, but they run).
    """
    if precision != "bf16":
        yield
        return
    slow_path = device.type == "cpu" and not _onednn_bf16_rnn_works()
    onednn = _onednn_off() if slow_path else contextlib.nullcontext()
    with onednn, torch.autocast(device_type=device.type, dtype=torch.bfloat16):
        yield


@contextlib.contextmanager
def _onednn_off():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # toggling oneDNN warns about TF32
        with torch.backends.mkldnn.flags(enabled=False):
            yield


@functools.cache
def _onednn_bf16_rnn_works() -> bool:
    """Whether a tiny torch.nn.LSTM runs under CPU bf16 autocast with oneDNN on (tried once)."""
    try:
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
            torch.nn.LSTM(4, 4)(torch.zeros(2, 1, 4))
    except RuntimeError:
        return False
    return True
