"""Safe file writes and validated reads: a crash mid-write never leaves a broken file behind.

JSON for everything a person may read, safetensors for tensors: nothing is ever pickled, so reading a
file never runs code.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from rnnlab.errors import RnnlabError


def _file_mode() -> int:
    # mkstemp makes 0600 files; give ours the mode a plain open() would (0666 less the umask).
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_MODE = _file_mode()


def atomic_write(path: str | Path, write: Callable[[str], None]) -> None:
    """Write ``path`` atomically: ``write(tmp)`` fills a temp file beside it, then fsync and rename.

    A crash at any moment leaves either the old file or the new one, never a torn one.

    Raises:
        RnnlabError: when the disk is full or the directory is not writable; the old file is kept.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, _MODE)
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise RnnlabError(f"could not write {path} ({e.strerror or e}); the previous file is kept") from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    # The rename itself is durable only once the directory entry is flushed (POSIX only).
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Atomically replace ``path`` with ``text`` (UTF-8)."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | Path, data: object) -> None:
    """Atomically replace ``path`` with ``data`` as indented JSON."""
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def read_json(path: str | Path) -> object:
    """Read a JSON file, turning every way it can be missing or broken into one clear error."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise RnnlabError(f"{path} does not exist") from e
    except IsADirectoryError as e:
        raise RnnlabError(f"{path} is a directory, expected a JSON file") from e
    except (OSError, UnicodeDecodeError) as e:
        raise RnnlabError(f"cannot read {path}: {e}") from e
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise RnnlabError(f"{path} is not valid JSON ({e.msg} at line {e.lineno}); was it truncated?") from e


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
