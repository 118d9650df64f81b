"""The speed report: the result as JSON and as a short markdown page of tables."""

from __future__ import annotations

import json
import math
from pathlib import Path

from rnnlab.io import atomic_write_text

TITLES = {
    "training": "1. Training at the notes' config",
    "cells": "2. From-scratch vs torch.nn layers",
    "flops": "3. Useful FLOP/s vs the GEMM peak",
    "generation": "4. Generation",
    "encoding": "5. Corpus encoding",
    "quality": "6. Quality per second",
}


def fmt(value) -> str:
    """A table cell: big numbers with thousands separators, others with 4 significant digits (losses
    differ in the third decimal)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.1f}" if abs(value) >= 100 else f"{value:.4g}"
    if isinstance(value, int) and abs(value) >= 10_000:
        return f"{value:,}"
    return str(value).replace("|", "\\|")


def markdown(result: dict) -> str:
    """The report page: how and where it was measured, then each part's tables with their anchors."""
    m = result["machine"]
    flags = ", ".join(flag for flag, present in m["cpu_flags"].items() if present) or "none listed"
    lines = [
        "# rnnlab bench",
        "",
        f"`{result['command']}` on {m['cpu']} ({m['logical_cpus']} logical CPUs; {flags}), "
        f"{m['platform']}, Python {m['python']}, torch {m['torch']}, {m['threads']} threads; "
        f"load average {m['loadavg']} at the start, {result.get('loadavg_end')} at the end.",
        "",
        "Unless a part's method says otherwise, every figure is a median over interleaved rounds (each "
        "round runs every contender once, in rotating order) and every ratio is the median of same-round "
        "ratios to the anchor named.",
    ]
    if result["quick"]:
        lines += ["", "**A `--quick` run: a subset, few rounds, noisy figures; compare full runs only.**"]
    for name, part in result["parts"].items():
        lines += ["", f"## {TITLES.get(name, name)}", "", f"Anchor: {part.get('anchor', '–')}."]
        if "target" in part:
            lines.append(f"Target: {part['target']}.")
        if "method" in part:
            lines.append(f"Method: {part['method']}.")
        for tab in part.get("tables", []):
            lines += ["", f"{tab['title']}:", "", "| " + " | ".join(tab["columns"]) + " |"]
            lines.append("|" + "---|" * len(tab["columns"]))
            lines += ["| " + " | ".join(fmt(cell) for cell in row) + " |" for row in tab["rows"]]
        lines += ["", f"({part['seconds']:.0f} s)"]
    return "\n".join(lines) + "\n"


def write_report(result: dict, stem: str | Path) -> tuple[Path, Path]:
    """Write ``STEM.json`` (everything) and ``STEM.md`` (the tables); returns both paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    json_path, md_path = stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".md")
    atomic_write_text(json_path, json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    atomic_write_text(md_path, markdown(result))
    return json_path, md_path
