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
from collections.abc import Callable
from pathlib import Path

import torch

from rnnlab.errors import RnnlabError
from rnnlab.io import atomic_write_json, load_tensors, read_json, save_tensors

CHECKPOINT_FORMAT = "rnnlab-checkpoint"
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


def save_unless_broken(model: torch.nn.Module, report, step: int, save: Callable, *args) -> None:
    """``save(*args)`` unless ``model`` holds NaN/inf weights (a broken model is never written); a full
    disk or a permission error is reported on ``report`` and training goes on (the previous file is
    intact, see :func:`rnnlab.io.atomic_write`)."""
    if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
        report.say("rnnlab: warning: the model has NaN/inf weights; not saved")
        report.write("save_skipped", step=step, reason="non-finite weights")
        return
    try:
        save(*args)
    except RnnlabError as e:
        report.say(f"rnnlab: warning: {e}")
        report.write("save_failed", step=step, error=str(e))
