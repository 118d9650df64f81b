"""Checkpoints as state, not pickled objects: tensors in safetensors, everything else in JSON.

Loading never unpickles anything and never runs code. Every write is atomic, and the last-state
checkpoint is a pair written in an order that is safe at any crash point::

    1. checkpoint-<step>.safetensors   new tensors, under a new name (the old pair is untouched)
    2. checkpoint.json                 atomically replaced; names file 1 and carries its sha256
    3. older checkpoint-*.safetensors  removed

A crash before 2 leaves the old pair valid; after 2 the new one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from rnnlab.errors import RnnlabError
from rnnlab.io import atomic_write, atomic_write_json, read_json

CHECKPOINT_FORMAT = "rnnlab-checkpoint"
MODEL_FORMAT = "rnnlab-model"
FORMAT_VERSION = 1


# --- nested state <-> (JSON, tensors) -----------------------------------------------------------


def flatten_state(obj, tensors: dict[str, torch.Tensor], prefix: str = "s"):
    """Turn nested dicts/lists/tuples of tensors and plain values into JSON plus a flat tensor dict.

    Tensors are replaced by ``{"__tensor__": key}``; dicts with non-string keys (an optimizer's state is
    keyed by parameter index) and tuples are tagged so that :func:`unflatten_state` restores them exactly.
    """
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().cpu().contiguous()
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: flatten_state(v, tensors, f"{prefix}.{k}") for k, v in obj.items()}
        return {"__items__": [[k, flatten_state(v, tensors, f"{prefix}.{k}")] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [flatten_state(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [flatten_state(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} in a checkpoint")


def unflatten_state(obj, tensors: dict[str, torch.Tensor]):
    """Inverse of :func:`flatten_state`; raises RnnlabError on a reference to a missing tensor."""
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            key = obj["__tensor__"]
            if key not in tensors:
                raise RnnlabError(f"checkpoint refers to tensor {key!r} that its tensor file lacks")
            return tensors[key]
        if "__items__" in obj:
            return {k: unflatten_state(v, tensors) for k, v in obj["__items__"]}
        if "__tuple__" in obj:
            return tuple(unflatten_state(v, tensors) for v in obj["__tuple__"])
        return {k: unflatten_state(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [unflatten_state(v, tensors) for v in obj]
    return obj


# --- safetensors files ------------------------------------------------------------------------------


def _unshared(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses tensors that share memory (tied weights): give repeats their own copy.
    seen, out = set(), {}
    for key, t in tensors.items():
        t = t.detach().cpu().contiguous()
        ptr = (t.untyped_storage().data_ptr(), t.storage_offset()) if t.numel() else None
        out[key] = t.clone() if ptr in seen else t
        if ptr is not None:
            seen.add(ptr)
    return out


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Atomically write a safetensors file."""
    tensors = _unshared(tensors)
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file onto the CPU; anything else (a pickle, a torn file) is refused."""
    path = Path(path)
    if not path.is_file():
        raise RnnlabError(f"{path} does not exist")
    with open(path, "rb") as f:
        head = f.read(9)
    # safetensors: an 8-byte header length, then the JSON header. torch.save writes a zip ("PK"),
    # older pickles start with the protocol byte 0x80.
    if head[8:9] != b"{":
        kind = "a pickle" if head[:1] == b"\x80" or head[:2] == b"PK" else "not a safetensors file"
        raise RnnlabError(f"{path} is {kind}, not safetensors; rnnlab never unpickles files")
    try:
        return load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise RnnlabError(f"{path} is not a readable safetensors file ({e}); was it truncated?") from e


def tensor_metadata(path: str | Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return f.metadata() or {}


# --- model weights ------------------------------------------------------------------------------------


def save_model(path: str | Path, model: torch.nn.Module, info: dict) -> None:
    """Write the model's weights, with ``info`` (step, val loss, ...) as JSON in the metadata."""
    meta = {"format": MODEL_FORMAT, "version": str(FORMAT_VERSION), "info": json.dumps(info)}
    save_tensors(path, model.state_dict(), meta)


def load_model_weights(path: str | Path, model: torch.nn.Module) -> dict:
    """Load weights into ``model``, checking names and shapes; returns the stored info."""
    tensors = load_tensors(path)
    meta = tensor_metadata(path)
    if meta.get("format") != MODEL_FORMAT:
        raise RnnlabError(f"{path} is not an rnnlab model file")
    load_state_dict_checked(model, tensors, path)
    return json.loads(meta.get("info", "{}"))


def load_state_dict_checked(module: torch.nn.Module, tensors: dict[str, torch.Tensor], path) -> None:
    """``load_state_dict`` that reports any missing, extra or mis-shaped tensor in one clear line."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    wrong = [k for k in expected if k in tensors and tensors[k].shape != expected[k].shape]
    if missing or extra or wrong:
        detail = "; ".join(
            f"{what}: {', '.join(keys[:4])}"
            for what, keys in (("missing", missing), ("unexpected", extra), ("wrong shape", wrong))
            if keys
        )
        raise RnnlabError(f"{path} does not fit this model's config ({detail})")
    with torch.no_grad():
        for key, value in expected.items():
            value.copy_(tensors[key])


# --- last-state checkpoint ----------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _json_sha256(doc) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def save_checkpoint(run_dir: str | Path, step: int, state: dict) -> None:
    """Write the resumable state of a run (see the module docstring for the crash-safe order)."""
    run_dir = Path(run_dir)
    tensors: dict[str, torch.Tensor] = {}
    doc = flatten_state(state, tensors)
    name = f"checkpoint-{step:09d}.safetensors"
    save_tensors(run_dir / name, tensors, {"format": CHECKPOINT_FORMAT})
    atomic_write_json(
        run_dir / "checkpoint.json",
        {
            "format": CHECKPOINT_FORMAT,
            "version": FORMAT_VERSION,
            "step": step,
            "tensors": name,
            "sha256": _sha256(run_dir / name),
            "state_sha256": _json_sha256(doc),
            "state": doc,
        },
    )
    for old in run_dir.glob("checkpoint-*.safetensors"):
        if old.name != name:
            old.unlink(missing_ok=True)


def load_checkpoint(run_dir: str | Path) -> dict:
    """Read the state written by :func:`save_checkpoint`, verifying format, version and checksum."""
    run_dir = Path(run_dir)
    doc = read_json(run_dir / "checkpoint.json")
    if not isinstance(doc, dict) or doc.get("format") != CHECKPOINT_FORMAT:
        raise RnnlabError(f"{run_dir / 'checkpoint.json'} is not an rnnlab checkpoint")
    if doc.get("version") != FORMAT_VERSION:
        raise RnnlabError(
            f"checkpoint format version {doc.get('version')} is not the one this rnnlab reads "
            f"({FORMAT_VERSION}); resume it with the rnnlab version that wrote it"
        )
    name = doc.get("tensors")
    if not isinstance(name, str) or "/" in name or "\\" in name or not name.endswith(".safetensors"):
        raise RnnlabError(f"{run_dir / 'checkpoint.json'} names an invalid tensor file {name!r}")
    path = run_dir / name
    if not path.is_file():
        raise RnnlabError(f"checkpoint tensor file {path} is missing")
    if _sha256(path) != doc.get("sha256"):
        raise RnnlabError(f"{path} does not match its checksum in checkpoint.json: truncated or edited")
    if _json_sha256(doc.get("state")) != doc.get("state_sha256"):
        raise RnnlabError(f"{run_dir / 'checkpoint.json'} was edited by hand (its state checksum differs)")
    return unflatten_state(doc.get("state"), load_tensors(path))
