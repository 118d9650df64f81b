"""`rnnlab report`: one self-contained HTML page about a run, to read offline or send to someone."""

from __future__ import annotations

import argparse

from rnnlab.cli.common import positive_int, print_result
from rnnlab.report import write_report


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "report",
        help="write a self-contained HTML report of a run",
        description="Write one HTML file (no network fetches: pictures and styles are inside it) with "
        "the run's config, learning curves against the n-gram baseline, the fit and gradient verdicts "
        "with their evidence and remedies, the dL/dh_t heatmap, samples from the best model at several "
        "temperatures, and the test score. An existing report is regenerated.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory made by rnnlab train")
    p.add_argument("--out", metavar="FILE", help="where to write it (default: RUN_DIR/report.html)")
    p.add_argument("--length", type=positive_int, default=200, help="characters per sample (default: 200)")
    p.add_argument("--seed", type=int, default=0, help="the samples' random seed (default: 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    path = write_report(args.run_dir, args.out, length=args.length, seed=args.seed)
    print_result({"report": str(path)}, args.json, f"report: {path}")
    return 0
