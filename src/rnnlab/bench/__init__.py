"""Speed and memory benchmarks of rnnlab beside the notes' pipeline (``rnnlab bench``).

Six parts, each a module with ``run(BenchConfig) -> dict`` (figures, anchor, tables); the first five
are speed (``rnnlab bench``), the sixth takes hours and runs when named (``--parts quality``):

    training    chars/s and loss per character at the notes' config      rnnlab.bench.training
    cells       from-scratch vs torch.nn LSTM/GRU, fp32 and bf16         rnnlab.bench.cells
    flops       useful FLOP/s of a 2x512 LSTM LM vs the GEMM peak        rnnlab.bench.flops
    generation  generation chars/s vs the notes' predict()               rnnlab.bench.generation
    encoding    100 MB corpus encoding time and peak RSS                 rnnlab.bench.encoding
    quality     val loss after 60 s / 600 s against the n-gram, per corpus rnnlab.bench.quality
"""

from __future__ import annotations

import contextlib
import importlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from rnnlab.bench.measure import BenchConfig, machine
from rnnlab.bench.report import markdown, write_report
from rnnlab.data import builtin_corpus

# Imported when run: `python -m rnnlab.bench.encoding` (the encoding child) then loads only its own part.
PARTS = ("training", "cells", "flops", "generation", "encoding", "quality")
SPEED_PARTS = PARTS[:5]  # what `rnnlab bench` runs by default

__all__ = ["PARTS", "SPEED_PARTS", "BenchConfig", "markdown", "run_bench", "write_report"]


def run_bench(
    cfg: BenchConfig,
    parts: Sequence[str] = SPEED_PARTS,
    command: str = "rnnlab bench",
    log: Callable[[str], None] | None = None,
) -> dict:
    """Run the named parts in order; returns ``{command, quick, machine, parts: {name: result}}``.

    Args:
        cfg: what to measure; a missing ``cfg.corpus`` is replaced by the built-in corpus (noted).
        parts: names among :data:`PARTS` (each the module ``rnnlab.bench.<name>``).
        command: the command line, recorded with the result.
        log: called with one line as each part starts.
    """
    log = log or (lambda line: None)
    result = {"command": command, "quick": cfg.quick, "machine": machine(), "parts": {}}
    with _corpus_file(cfg) as cfg:
        result["corpus"] = str(cfg.corpus)
        for name in parts:
            log(f"rnnlab bench: {name} ...")
            start = time.perf_counter()
            part = importlib.import_module(f"rnnlab.bench.{name}").run(cfg)
            result["parts"][name] = {**part, "seconds": time.perf_counter() - start}
    result["loadavg_end"] = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    return result


@contextlib.contextmanager
def _corpus_file(cfg: BenchConfig) -> Iterator[BenchConfig]:
    """``cfg`` as is when its corpus exists, else with the built-in corpus in a temporary file."""
    if cfg.corpus is not None and Path(cfg.corpus).is_file():
        yield cfg
        return
    with tempfile.TemporaryDirectory(prefix="rnnlab-bench-") as tmp:
        path = Path(tmp) / "python-docs.txt"
        path.write_text(builtin_corpus(), encoding="utf-8")
        yield replace(cfg, corpus=path)
