"""`rnnlab experiment`: run one of the seed's claims as an experiment, print its table, save its figures."""

from __future__ import annotations

import argparse
import inspect
import shlex
import sys
from pathlib import Path

from rnnlab.cli.common import positive_int
from rnnlab.errors import RnnlabError
from rnnlab.experiments import EXPERIMENTS


def _lengths(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(","))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from e
    if any(v < 2 for v in values):
        raise argparse.ArgumentTypeError(f"lengths must be >= 2, got {text!r}")
    return values


def add_parser(sub) -> argparse.ArgumentParser:
    listing = "; ".join(f"{name}: {module.DESCRIPTION}" for name, module in EXPERIMENTS.items())
    p = sub.add_parser(
        "experiment",
        help="run a gradient / long-range experiment (products, adding, copy, bidirectional-leak)",
        description=f"Run an experiment; print its table; save a report (md, JSON) and a PNG. {listing}.",
    )
    p.add_argument("name", metavar="NAME", choices=list(EXPERIMENTS), help=", ".join(EXPERIMENTS))
    p.add_argument("--quick", action="store_true", help="the small setting (under a minute on a laptop CPU)")
    p.add_argument("--out", help="directory for the report and figures (default: results, or results/quick)")
    p.add_argument("--seed", type=int, default=0, help="seed for weights and data (default: 0)")
    p.add_argument(
        "--impl", choices=("torch", "scratch"), help="recurrent layers (default: the experiment's)"
    )
    p.add_argument("--lengths", type=_lengths, metavar="T1,T2", help="sequence lengths (adding, copy)")
    p.add_argument("--steps", type=positive_int, help="step budget per model (adding, copy)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    module = EXPERIMENTS[args.name]
    accepted = inspect.signature(module.run).parameters
    options = {k: getattr(args, k, None) for k in ("impl", "lengths", "steps")}
    options = {k: v for k, v in options.items() if v is not None}
    refused = [f"--{k}" for k in options if k not in accepted]
    if refused:
        raise RnnlabError(f"{' and '.join(refused)} do(es) not apply to the {args.name} experiment")
    out = Path(args.out or ("results/quick" if args.quick else "results"))
    out.mkdir(parents=True, exist_ok=True)
    result = module.run(quick=args.quick, seed=args.seed, out=out, **options)
    argv = getattr(args, "argv", None) or sys.argv[1:]
    written = result.save(out, "rnnlab " + shlex.join(argv))
    print(result.render_text())
    print("wrote " + ", ".join(str(p) for p in [*written, *result.figures]), flush=True)
    return 0
