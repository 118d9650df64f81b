"""Reading corpus files: UTF-8 text in, one clear error for every way a file can be unusable."""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from pathlib import Path

from rnnlab.errors import RnnlabError

ERRORS = ("strict", "replace", "ignore")


def read_text(path: str | Path, encoding: str = "utf-8", errors: str = "strict") -> str:
    """Read one corpus file as text, with ``\\r\\n`` and ``\\r`` newlines turned into ``\\n``.

    Args:
        path: the file.
        encoding: its encoding (any Python codec name); a UTF-8 byte-order mark is dropped.
        errors: ``"strict"`` refuses undecodable bytes, ``"replace"`` turns them into U+FFFD,
            ``"ignore"`` drops them.

    Raises:
        RnnlabError: the file is missing, a directory, binary, not decodable, empty or only whitespace.
    """
    path = Path(path)
    if errors not in ERRORS:
        raise RnnlabError(f"--errors must be one of {', '.join(ERRORS)}, got {errors!r}")
    try:
        codecs.lookup(encoding)
    except LookupError as e:
        raise RnnlabError(f"unknown --encoding {encoding!r}; try utf-8, gb18030, latin-1, ...") from e
    if not path.exists():
        raise RnnlabError(f"corpus file {path} does not exist")
    if path.is_dir():
        raise RnnlabError(f"{path} is a directory; give the text files inside it instead")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise RnnlabError(f"cannot read {path}: {e.strerror or e}") from e
    if b"\x00" in raw[: 1 << 16] and not encoding.lower().replace("-", "").startswith("utf16"):
        offset = raw.index(b"\x00")
        raise RnnlabError(f"{path} looks binary (NUL byte at offset {offset}); rnnlab trains on text files")
    try:
        text = raw.decode(encoding, errors)
    except UnicodeDecodeError as e:
        raise RnnlabError(
            f"{path} is not valid {encoding} (byte 0x{raw[e.start]:02x} at offset {e.start}); "
            f"convert it, or pass --encoding ENCODING or --errors replace"
        ) from e
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text:
        raise RnnlabError(f"{path} is empty; a corpus needs text")
    if not text.strip():
        raise RnnlabError(f"{path} holds only whitespace; a corpus needs text")
    return text


def read_texts(paths: Sequence[str | Path], encoding: str = "utf-8", errors: str = "strict") -> str:
    """Read several corpus files and join them in the order given, one newline between files."""
    if not paths:
        raise RnnlabError("no corpus files given")
    texts = [read_text(p, encoding, errors) for p in paths]
    return "".join(t if t.endswith("\n") or i == len(texts) - 1 else t + "\n" for i, t in enumerate(texts))
