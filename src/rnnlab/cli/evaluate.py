"""`rnnlab evaluate`: loss, perplexity and bits per character of a trained run on held-out text."""

from __future__ import annotations

import argparse

import numpy as np

from rnnlab.cli.common import print_result
from rnnlab.data import SPLITS, Corpus, read_texts
from rnnlab.device import resolve_device
from rnnlab.losses import loss_readings
from rnnlab.rundir import RunDir
from rnnlab.train.evaluate import evaluate_loss


def add_parser(sub) -> None:
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
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    run_dir = RunDir.open(args.run_dir)
    vocab = run_dir.load_vocab()
    model, info = run_dir.load_model(resolve_device(args.device))
    if args.data:
        ids = vocab.encode(read_texts(args.data, encoding=args.encoding), on_unknown="unk")
        source, oov = (
            ", ".join(args.data),
            float(np.mean(ids == vocab.unk_id)) if vocab.unk_id is not None else 0.0,
        )
    else:
        corpus = Corpus.from_config(run_dir.load_config().data, vocab=vocab)
        ids, source, oov = corpus.split(args.split), f"{args.split} split", corpus.oov_rate[args.split]
    loss, count = evaluate_loss(model, ids)
    result = {
        "run_dir": str(run_dir.path),
        "data": source,
        "chars": count,
        "oov_rate": oov,
        "model_step": info.get("step"),
        "unit": vocab.kind,  # what "chars", loss and ppl count: characters, or words
        **loss_readings(loss),
    }
    unit, bpc = vocab.kind, f", {result['bpc']:.3f} bpc"
    if unit == "word":  # per word: "bits per character" would mislabel it
        result["bpc"], bpc = None, ""
    human = (
        f"{source}: loss {loss:.4f} nats/{unit}, ppl {result['ppl']:.2f}{bpc} "
        f"over {count:,} {unit}s (OOV {oov:.2%})"
    )
    print_result(result, args.json, human)
    return 0
