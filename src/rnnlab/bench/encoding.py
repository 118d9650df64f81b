"""Part 5: corpus encoding speed and peak memory on a generated 100 MB UTF-8 file (target P5).

The file mixes ASCII words, CJK characters and a few emoji (one astral character makes Python hold a
piece of text at 4 bytes per character: the worst case for memory), in lines of ~50 characters,
generated deterministically into a temporary directory. Each way of encoding it runs in a fresh
child process (``python -m rnnlab.bench.encoding FILE --mode MODE``) that reports its own peak RSS,
so the figure is that of one encoding (plus the imports, reported apart), nothing else:

* ``stream``: ``Corpus.from_files`` as ``rnnlab train`` calls it: above 64 MiB it reads the file in
  pieces, three passes (length, train counts, ids), ids in RAM;
* ``mmap``: the same, ids written to a memory-mapped temporary ``.npy``;
* ``whole`` (anchor): the file read whole, split and encoded as one string (``Corpus.from_text``).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rnnlab.bench.measure import BenchConfig, interleave, summarize, table

MODES = ("whole", "stream", "mmap")
SIZE_BYTES = 100_000_000
TARGET_SECONDS, TARGET_RSS_MB = 10.0, 1536.0  # P5: 100 MB in <= 10 s, peak RSS <= 1.5 GB
COLUMNS = ["mode", "seconds", "/ whole", "/ 10 s target", "peak RSS MB", "/ whole", "/ 1.5 GB target", "note"]
_ASCII = np.frombuffer(b"etaoinshrdlucmfwypvbgkjqxzETAOIN0123456789,.;:!?'-", dtype=np.uint8)


def write_mixed_corpus(path: Path, size_bytes: int, seed: int = 0) -> int:
    """Write about ``size_bytes`` of deterministic mixed UTF-8 text (whole lines) to ``path``.

    A pool of ~4 M characters is drawn once (60% ASCII, 12% spaces, 2% newlines, 26% of 3,000 CJK
    characters, 0.1% emoji); the file is slices of it between newlines, at seeded random places.

    Returns:
        the number of bytes written (at most ``size_bytes``, short by less than one pool slice).
    """
    rng = np.random.default_rng(seed)
    n = 1 << 22
    kind = rng.choice(5, size=n, p=[0.6, 0.12, 0.02, 0.259, 0.001])
    points = _ASCII[rng.integers(len(_ASCII), size=n)].astype(np.uint32)
    points[kind == 1], points[kind == 2] = ord(" "), ord("\n")
    points[kind == 3] = 0x4E00 + rng.integers(3000, size=int(np.sum(kind == 3)))
    points[kind == 4] = 0x1F600 + rng.integers(64, size=int(np.sum(kind == 4)))
    pool = points.astype("<u4").tobytes().decode("utf-32-le").encode("utf-8")
    newlines = np.flatnonzero(np.frombuffer(pool, dtype=np.uint8) == ord("\n")) + 1  # line starts
    written = 0
    with open(path, "wb") as file:
        while True:
            a, b = np.sort(rng.choice(newlines, size=2, replace=False))
            piece = pool[a:b][: size_bytes - written]
            piece = piece[: piece.rfind(b"\n") + 1]
            if not piece:
                return written
            file.write(piece)
            written += len(piece)


def encode_in_child(path: Path, mode: str) -> dict:
    """Encode ``path`` the ``mode`` way in a fresh Python process; its own timing and peak RSS."""
    command = [sys.executable, "-m", "rnnlab.bench.encoding", str(path), "--mode", mode]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"encoding child failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _child(path: Path, mode: str) -> dict:
    from rnnlab.data import Corpus, read_texts  # imported before the baseline RSS is read

    base = _proc_status_mb("VmRSS")
    start = time.perf_counter()
    if mode == "whole":
        corpus = Corpus.from_text(read_texts([path]), source=str(path))
    else:
        corpus = Corpus.from_files([path], mmap=mode == "mmap")
    seconds = time.perf_counter() - start
    chars = sum(len(corpus.split(s)) for s in ("train", "val", "test"))
    return {
        "seconds": seconds, "peak_rss_mb": _peak_rss_mb(), "import_rss_mb": base, "chars": chars,
        "vocab": len(corpus.vocab), "dtype": str(corpus.vocab.dtype),
        "memory_mapped": isinstance(corpus.train, np.memmap),
    }  # fmt: skip


def _peak_rss_mb() -> float:
    """This process's peak RSS since its exec: /proc's VmHWM. (``ru_maxrss`` would not do: Linux
    carries the parent's peak into a child started by vfork + exec, as subprocess does.)"""
    peak = _proc_status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _proc_status_mb(field: str) -> float | None:
    """A ``kB`` field of /proc/self/status in MB, or None off Linux."""
    try:
        with open("/proc/self/status", encoding="utf-8") as file:
            kb = next(int(line.split()[1]) for line in file if line.startswith(field + ":"))
        return kb / 1024
    except (OSError, StopIteration):
        return None


def _sample(path: Path, mode: str) -> Callable[[], dict]:
    def sample() -> dict:
        out = encode_in_child(path, mode)
        size_mb = path.stat().st_size / 1e6
        return {**out, "mb_per_s": size_mb / out["seconds"], "size_mb": size_mb}

    return sample


def run(cfg: BenchConfig) -> dict:
    """Each mode in interleaved rounds on the generated file; medians, and ratios to ``whole``."""
    rounds = cfg.rounds_or(1, 3)
    modes = cfg.pick(("whole", "stream"), MODES)
    with tempfile.TemporaryDirectory(prefix="rnnlab-bench-") as tmp:
        path = Path(tmp) / "mixed.txt"
        size = write_mixed_corpus(path, SIZE_BYTES)
        samples = interleave({mode: _sample(path, mode) for mode in modes}, rounds)
    seconds = summarize(samples, "seconds", anchor="whole")
    peak = summarize(samples, "peak_rss_mb", anchor="whole")
    rows = []
    for mode in modes:
        first = samples[mode][0]
        if "error" in first:
            rows.append([mode, None, None, None, None, None, None, first["error"]])
            continue
        s, p = seconds[mode], peak[mode]
        rows.append([
            mode, s["seconds"], s["ratio"], s["seconds"] / TARGET_SECONDS,
            p["peak_rss_mb"], p["ratio"], p["peak_rss_mb"] / TARGET_RSS_MB,
            f"imports {first['import_rss_mb']:.0f} MB of it; {first['chars']:,} chars, {first['dtype']}",
        ])  # fmt: skip
    return {
        "anchor": "whole: the file read, split and encoded as one string (Corpus.from_text)",
        "file": {"bytes": size, "content": "ASCII, CJK, 0.1% emoji, ~50-char lines, seed 0"},
        "target": f"P5: 100 MB in <= {TARGET_SECONDS:.0f} s, peak RSS <= {TARGET_RSS_MB:.0f} MB",
        "samples": samples,
        "tables": [
            table(
                f"Encoding a {size / 1e6:.0f} MB UTF-8 file (fresh process each; median of {rounds})",
                COLUMNS,
                rows,
            )
        ],
    }


def main(argv: Sequence[str] | None = None) -> None:
    """The child process: encode one file one way and print one JSON line."""
    parser = argparse.ArgumentParser(description="encode one corpus file, report time and peak RSS")
    parser.add_argument("path", type=Path)
    parser.add_argument("--mode", choices=MODES, default="stream")
    args = parser.parse_args(argv)
    print(json.dumps(_child(args.path, args.mode)))


if __name__ == "__main__":
    main()
