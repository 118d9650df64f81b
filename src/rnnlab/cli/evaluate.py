"""`rnnlab evaluate`: loss, perplexity and bits per character of a trained run on held-out text."""

from __future__ import annotations

import argparse

from rnnlab.cli.common import print_result
from rnnlab.data import SPLITS
from rnnlab.workflow import evaluate_run


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "evaluate",
        help="score a trained run on its test split or on other text",
        description="Score the run's best model. Unknown characters count as <unk> and are reported.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory made by rnnlab train")
    p.add_argument(
        "--data", nargs="+", metavar="FILE", help="UTF-8 files to score (default: the run's split)"
    )
    p.add_argument("--split", choices=SPLITS, default="test", help="the run's split to score (default: test)")
    p.add_argument("--encoding", default="utf-8", help="encoding of --data files (default: utf-8)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: cpu)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    result = evaluate_run(args.run_dir, args.data, args.split, args.encoding, args.device)
    unit, loss = result["unit"], result["loss"]
    bpc = f", {result['bpc']:.3f} bpc" if result["bpc"] is not None else ""
    human = (
        f"{result['data']}: loss {loss:.4f} nats/{unit}, ppl {result['ppl']:.2f}{bpc} "
        f"over {result['chars']:,} {unit}s (OOV {result['oov_rate']:.2%})"
    )
    if "network_loss" in result:
        human += f"; network alone {result['network_loss']:.4f}, n-gram alone {result['ngram_loss']:.4f}"
    print_result(result, args.json, human)
    return 0
