"""Reading corpus files: UTF-8 text in, one clear error for every way a file can be unusable."""

from __future__ import annotations

import codecs
from collections.abc import Iterator, Sequence
from pathlib import Path

from rnnlab.errors import RnnlabError

ERRORS = ("strict", "replace", "ignore")

# UTF-8 files are decoded this many bytes at a time, so a big corpus never sits in memory as bytes
# and text at once; other encodings are decoded whole (a newline byte may be half a UTF-16 character).
CHUNK_BYTES = 1 << 20
_NUL_WINDOW = 1 << 16  # a NUL byte among the first 64 KiB means a binary file


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
    return "".join(iter_text(path, encoding, errors))


def iter_text(path: str | Path, encoding: str = "utf-8", errors: str = "strict") -> Iterator[str]:
    """:func:`read_text` piece by piece: joined, the pieces are exactly its text.

    A UTF-8 file comes in pieces of about :data:`CHUNK_BYTES`, each cut after a newline (or, in a file
    without one, before a character), so no character and no ``\\r\\n`` spans two pieces and decoding
    errors report the same byte offset as a whole-file read. Other encodings come as one piece.

    Raises:
        RnnlabError: as :func:`read_text`; an empty or blank file only after its last piece.
    """
    path = Path(path)
    _check_file(path, encoding, errors)
    binary = not encoding.lower().replace("-", "").startswith("utf16")
    chunk_bytes = CHUNK_BYTES if codecs.lookup(encoding).name == "utf-8" else -1  # -1: read it all
    length, blank = 0, True
    try:
        with open(path, "rb") as file:
            head = file.read(_NUL_WINDOW)
            if binary and b"\x00" in head:
                offset = head.index(b"\x00")
                raise RnnlabError(
                    f"{path} looks binary (NUL byte at offset {offset}); rnnlab trains on text files"
                )
            file.seek(0)
            for offset, raw in _byte_pieces(file, chunk_bytes):
                text = _decode(path, raw, offset, encoding, errors)
                if offset == 0 and text.startswith("\ufeff"):
                    text = text[1:]
                if "\r" in text:
                    text = text.replace("\r\n", "\n").replace("\r", "\n")
                length += len(text)
                blank = blank and (not text or text.isspace())
                yield text
    except OSError as e:
        raise RnnlabError(f"cannot read {path}: {e.strerror or e}") from e
    if not length:
        raise RnnlabError(f"{path} is empty; a corpus needs text")
    if blank:
        raise RnnlabError(f"{path} holds only whitespace; a corpus needs text")


def _check_file(path: Path, encoding: str, errors: str) -> None:
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


def _byte_pieces(file, chunk_bytes: int) -> Iterator[tuple[int, bytes]]:
    """``(offset, bytes)`` pieces of ``file``, each ending after a newline or before a character."""
    offset, carry = 0, b""
    while True:
        block = file.read(chunk_bytes)
        data = carry + block if carry else block
        if not block or chunk_bytes < 0:
            if data:
                yield offset, data
            return
        cut = _cut(data)
        if cut:
            yield offset, data[:cut]
        offset, carry = offset + cut, data[cut:]


def _cut(data: bytes) -> int:
    """Where a piece of UTF-8 ``data`` may end: after its last newline, else before its last character.

    Bytes ``10xxxxxx`` continue a character, so the last byte that is not one starts a character; a
    ``\\r`` before the cut moves it back too, so ``\\r\\n`` stays whole. 0: carry everything over.
    """
    cut = data.rfind(b"\n") + 1
    if cut:
        return cut
    cut = len(data) - 1
    while cut > max(0, len(data) - 4) and data[cut] & 0xC0 == 0x80:
        cut -= 1
    return cut - 1 if cut and data[cut - 1] == 0x0D else cut


def _decode(path: Path, raw: bytes, offset: int, encoding: str, errors: str) -> str:
    try:
        return raw.decode(encoding, errors)
    except UnicodeDecodeError as e:
        raise RnnlabError(
            f"{path} is not valid {encoding} (byte 0x{raw[e.start]:02x} at offset {offset + e.start}); "
            f"convert it, or pass --encoding ENCODING or --errors replace"
        ) from e


def iter_texts(paths: Sequence[str | Path], encoding: str = "utf-8", errors: str = "strict") -> Iterator[str]:
    """:func:`read_texts` piece by piece (see :func:`iter_text`); a file's pieces all come before the
    next file is opened."""
    if not paths:
        raise RnnlabError("no corpus files given")
    for i, path in enumerate(paths):
        last = ""
        for text in iter_text(path, encoding, errors):
            last = text or last
            yield text
        if i < len(paths) - 1 and not last.endswith("\n"):
            yield "\n"


def read_texts(paths: Sequence[str | Path], encoding: str = "utf-8", errors: str = "strict") -> str:
    """Read several corpus files and join them in the order given, one newline between files."""
    return "".join(iter_texts(paths, encoding, errors))
