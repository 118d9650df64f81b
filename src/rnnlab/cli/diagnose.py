"""`rnnlab diagnose`: why a run went as it did (under/over-fitting), with evidence, remedies and plots."""

from __future__ import annotations

import argparse

from rnnlab.cli.common import print_result
from rnnlab.diagnose.run import diagnose
from rnnlab.rundir import RunDir
from rnnlab.train.metrics import read_metrics


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "diagnose",
        help="does a run under- or over-fit, do its gradients vanish or explode, and what to try",
        description="Read a run's metrics.jsonl and give two verdicts: fit (under-fitting, over-fitting and "
        "from which step, good fit, still improving) and gradients (vanishing, exploding, healthy), each "
        "with its evidence and the remedies ranked for the case, as rnnlab flags. Saves "
        "learning_curves.png and dldh_heatmap.png in the run directory.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory made by rnnlab train")
    p.add_argument("--no-plots", action="store_true", help="do not write PNG files")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    run_dir = RunDir.open(args.run_dir)
    records = read_metrics(run_dir.metrics_path)
    cell = run_dir.load_config().model.cell
    diag = diagnose(records, None if args.no_plots else run_dir.path, cell=cell)
    if not args.json:
        print(diag.render_text())
    result = {"run_dir": str(run_dir.path), **diag.to_dict()}
    print_result(result, args.json, f"plots: {', '.join(diag.plots) or 'none'}")
    return 0
