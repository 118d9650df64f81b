"""`rnnlab export`: a run's best model as a one-step ONNX graph, its vocabulary beside it."""

from __future__ import annotations

import argparse

from rnnlab.errors import RnnlabError
from rnnlab.export import NGRAM_REFUSAL, export_onnx, onnx_path_problem, require_onnx
from rnnlab.rundir import RunDir


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "export",
        help="export a trained run's best model to ONNX (one step: ids + state in, logits + state out)",
        description="Write the run's best model as a one-step ONNX graph: inputs ids (batch,) int64 and "
        "the state h (and c for an LSTM), (num_layers, batch, hidden); outputs logits (batch, V) and "
        "h_new (c_new). The vocabulary goes into the graph's metadata and beside it as FILE.vocab.json. "
        "Existing files are never overwritten.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory made by rnnlab train")
    p.add_argument("--onnx", required=True, metavar="FILE", help="the .onnx file to write")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    require_onnx()  # before any work: the one thing a user may have to install
    run_dir = RunDir.open(args.run_dir)
    if run_dir.load_config().model.ngram != "off":
        raise RnnlabError(NGRAM_REFUSAL)
    problem = onnx_path_problem(args.onnx)
    if problem:
        raise RnnlabError(problem)
    model, info = run_dir.load_model("cpu")
    vocab_file = export_onnx(run_dir.load_config().model, model, run_dir.load_vocab(), args.onnx)
    print(f"wrote {args.onnx} (model of step {info.get('step')}) and {vocab_file}")
    return 0
