"""`rnnlab bench`: speed and memory of rnnlab beside the notes' pipeline, written as JSON and markdown."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from rnnlab.bench import PARTS, SPEED_PARTS, BenchConfig, markdown, run_bench, write_report
from rnnlab.bench.measure import NOTES_CORPUS, NOTES_SCRIPT
from rnnlab.cli.common import positive_int, print_result
from rnnlab.rundir import command_line


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "bench",
        help="measure training, generation and encoding speed against the notes' pipeline",
        description=(
            "Measure rnnlab beside the notes' pipeline in one process run (interleaved rounds, medians, "
            "same-round ratios) and write STEM.json and STEM.md. Parts: " + ", ".join(PARTS) + ". "
            "On a machine shared with other work, --threads 1 keeps threads from spinning against it."
        ),
    )
    p.add_argument("--quick", action="store_true", help="a subset of every part, fewer rounds (< 2 min)")
    p.add_argument("--out", default="results/speed", metavar="STEM", help="default: results/speed")
    parts = " ".join(PARTS)
    p.add_argument(
        "--parts", nargs="+", choices=PARTS, default=list(SPEED_PARTS), metavar="PART",
        help=f"which parts, in order, among {parts} (default: the speed parts; quality takes ~2 h: "
        "write it with --parts quality --out results/quality)",
    )  # fmt: skip
    p.add_argument(
        "--corpus", type=Path, default=NOTES_CORPUS,
        help=f"the notes' corpus (default: {NOTES_CORPUS}; missing: the built-in corpus)",
    )  # fmt: skip
    p.add_argument(
        "--notes", type=Path, default=NOTES_SCRIPT,
        help=f"the notes' pipeline (default: {NOTES_SCRIPT}; missing: an in-bench twin)",
    )  # fmt: skip
    p.add_argument("--rounds", type=positive_int, help="interleaved rounds of every part (default: per part)")
    p.add_argument("--threads", type=positive_int, help="torch threads here and in the notes' process")
    p.add_argument("--json", action="store_true", help="print the whole result as one JSON object")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    cfg = BenchConfig(quick=args.quick, corpus=args.corpus, notes_script=args.notes, rounds=args.rounds)
    result = run_bench(cfg, args.parts, command=command_line(args.argv), log=_progress)
    json_path, md_path = write_report(result, args.out)
    page = markdown(result)
    print_result(result, args.json, f"{page}\nwrote {md_path} and {json_path}")
    return 0


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
