"""`rnnlab generate`: sample text from a trained run, streaming it to stdout."""

from __future__ import annotations

import argparse
import sys

from rnnlab.cli.common import positive_int
from rnnlab.data.vocab import ON_UNKNOWN
from rnnlab.device import resolve_device
from rnnlab.errors import RnnlabError
from rnnlab.generate import SamplingConfig, beam_steps, generate_text
from rnnlab.rundir import RunDir


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "generate",
        help="sample text from a trained run",
        description="Prime the model with --prefix, then sample --length characters one at a time.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory made by rnnlab train")
    g = p.add_argument_group("what to generate")
    g.add_argument(
        "--prefix", default="", help="text to start from (default: a character drawn from training)"
    )
    g.add_argument("--length", type=int, default=200, help="new characters (words) per sample (default: 200)")
    g.add_argument(
        "--num-samples", type=positive_int, default=1, help="samples, drawn as one batch (default: 1)"
    )
    g.add_argument(
        "--unknown",
        choices=ON_UNKNOWN,
        default="error",
        help="prefix characters outside the vocabulary: error, skip or map to unk (default: error)",
    )
    s = p.add_argument_group("how to choose each character")
    s.add_argument(
        "--greedy", action="store_true", help="always the most likely character (the notes' predict)"
    )
    s.add_argument(
        "--temperature", type=float, default=0.8, help="<1 sharper, >1 wilder, 0 greedy (default: 0.8)"
    )
    s.add_argument("--top-k", type=int, default=None, help="sample among the k most likely characters")
    s.add_argument(
        "--top-p", type=float, default=None, help="sample among the most likely characters holding mass p"
    )
    s.add_argument("--seed", type=int, default=None, help="random seed: the same seed gives the same text")
    s.add_argument(
        "--beam",
        type=positive_int,
        default=None,
        metavar="N",
        help="beam search of width N: the likeliest continuation (length-normalised), no sampling",
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: cpu)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    cfg = SamplingConfig(args.temperature, args.top_k, args.top_p, args.greedy)
    run_dir = RunDir.open(args.run_dir)
    vocab = run_dir.load_vocab()
    model, _ = run_dir.load_model(resolve_device(args.device))
    if args.beam is not None:
        if args.num_samples != 1:
            raise RnnlabError("--beam finds one continuation: drop --num-samples")
        text = beam_steps(model, vocab, args.prefix, args.length, args.beam, on_unknown=args.unknown)
        print(args.prefix + "".join(text))
        return 0
    steps = generate_text(
        model,
        vocab,
        args.prefix,
        args.length,
        cfg,
        num_samples=args.num_samples,
        seed=args.seed,
        on_unknown=args.unknown,
    )
    if args.num_samples == 1:
        sys.stdout.write(args.prefix)
        for step in steps:
            sys.stdout.write(step[0])
            sys.stdout.flush()
        sys.stdout.write("\n")
    else:
        samples = [args.prefix] * args.num_samples
        for step in steps:
            samples = [s + c for s, c in zip(samples, step)]
        for i, text in enumerate(samples):
            print(f"--- sample {i + 1} ---\n{text}")
    sys.stdout.flush()
    return 0
