"""Benchmark plumbing: the options, interleaved rounds, medians and ratios, the machine's description."""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

# The notes' corpus and pipeline where a checkout of rnnlab sits beside ../shared (as in development).
NOTES_CORPUS = Path("../shared/data/jaychou_lyrics.txt")
NOTES_SCRIPT = Path("../shared/baselines/seed_pipeline.py")
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")  # what decides fp32/bf16 speed


@dataclass(frozen=True)
class BenchConfig:
    """What one ``rnnlab bench`` run measures, and how long it may take."""

    quick: bool = False  # a subset of every part, a couple of rounds: < 2 minutes on 2 cores
    corpus: Path | None = NOTES_CORPUS  # the notes' text; None or missing: the built-in corpus
    notes_script: Path | None = NOTES_SCRIPT  # the notes' pipeline; None or missing: an in-bench twin
    rounds: int | None = None  # interleaved rounds per part; None: each part's default

    def rounds_or(self, quick: int, full: int) -> int:
        """``rounds`` when given, else a part's default for --quick or for the full run."""
        return self.rounds or (quick if self.quick else full)

    def pick(self, quick, full):
        """``quick`` under --quick, else ``full``."""
        return quick if self.quick else full


Sample = dict  # one contender's figures from one round


def interleave(contenders: dict[str, Callable[[], Sample]], rounds: int) -> dict[str, list[Sample]]:
    """Run every contender once per round, rotating who goes first, so that a noisy neighbour (another
    process, a thermal step) hits all of them alike.

    A contender that raises ``RuntimeError`` (e.g. an unsupported dtype) is dropped after that round:
    its list holds one ``{"error": message}`` sample.

    Returns:
        per contender, its samples in round order.
    """
    samples: dict[str, list[Sample]] = {name: [] for name in contenders}
    live = list(contenders)
    for k in range(rounds):
        order = live[k % len(live) :] + live[: k % len(live)] if live else []
        for name in order:
            try:
                samples[name].append(contenders[name]())
            except RuntimeError as e:
                samples[name] = [{"error": f"{type(e).__name__}: {str(e).splitlines()[0]}"}]
                live.remove(name)
    return samples


def summarize(samples: dict[str, list[Sample]], key: str, anchor: str) -> dict[str, dict]:
    """Per contender: the median of ``key`` over its rounds and the median over rounds of
    ``value / anchor's value in the same round`` (``ratio``; the anchor's own is 1).

    A ratio of medians would mix rounds of different noise; the median of same-round ratios does not.
    """
    base = [s.get(key) for s in samples.get(anchor, [])]
    out = {}
    for name, rows in samples.items():
        if rows and "error" in rows[0]:
            out[name] = {"error": rows[0]["error"]}
            continue
        values = [row[key] for row in rows]
        ratios = [v / b for v, b in zip(values, base) if b]
        out[name] = {
            key: statistics.median(values),
            "samples": values,
            "ratio": statistics.median(ratios) if ratios else None,
        }
    return out


def summary_rows(summary: dict[str, dict], key: str, scale: float = 1.0) -> list[list]:
    """Table rows ``[contender, median of key * scale, ratio, error or ""]`` of a :func:`summarize`."""
    rows = []
    for name, figures in summary.items():
        value = figures[key] * scale if key in figures else None
        rows.append([name, value, figures.get("ratio"), figures.get("error", "")])
    return rows


def machine() -> dict:
    """Where the figures come from: OS, CPU model and the flags that matter, torch, threads, load."""
    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            for line in file:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": model,
        "cpu_flags": {flag: flag in flags for flag in CPU_FLAGS},
        "logical_cpus": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "loadavg": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }


def table(title: str, columns: list[str], rows: list[list]) -> dict:
    """A table for the markdown report (and the JSON): numbers are rounded when written."""
    return {"title": title, "columns": columns, "rows": rows}
