"""Where a run computes: device choice and the autocast context for bf16."""

from __future__ import annotations

import contextlib

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


def autocast(device: torch.device, precision: str):
    """bf16 autocast for the forward pass (``precision="bf16"``), or nothing for fp32."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
