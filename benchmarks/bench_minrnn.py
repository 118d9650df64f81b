"""Training speed and memory of MinGRU / MinLSTM against torch.nn.GRU / LSTM: fwd+bwd tokens/s, peak RSS.

The stand-alone command line of rnnlab.bench.mincells (also part of `rnnlab bench --parts cells`), with the
scan variants and torch.compile.

How speed and memory are measured: the docstring of rnnlab.bench.mincells.

Threads: ``--threads`` or, by default, 2 when the 1-minute load average is under 0.5 (a quiet
2-core machine) and 1 otherwise; the figures say which, and the load.

    python benchmarks/bench_minrnn.py                         # the issue's three sizes
    python benchmarks/bench_minrnn.py --sizes 512,32,256 --rounds 7 --variants --json out.json
"""

from __future__ import annotations

import argparse
import json
import os

import torch

from rnnlab.bench.measure import machine
from rnnlab.bench.mincells import (
    CONTENDERS,
    SIZES,
    VARIANTS,
    peak_memory_mib,
    scanned,
    speed,
)
from rnnlab.nn import MinGRU, minscan


def compiled_log(h: int) -> torch.nn.Module:
    """MinGRU on the log-space scan compiled by torch.compile (inductor; needs a C++ compiler)."""
    minscan.SCANS.setdefault("log-compiled", torch.compile(minscan.log_scan, dynamic=False))
    return scanned(MinGRU, "log-compiled")(h)


def default_threads() -> int:
    """2 on a quiet machine (1-minute load average under 0.5), else 1."""
    return 2 if os.getloadavg()[0] < 0.5 else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", metavar="H,B,T", help="instead of the issue's three sizes")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per size (5)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: see the docstring)")
    parser.add_argument("--variants", action="store_true", help="also the log-space and step scans")
    parser.add_argument("--compile", action="store_true", help="also MinGRU's log scan under torch.compile")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory children")
    parser.add_argument("--json", metavar="PATH", help="also write the JSON to PATH")
    args = parser.parse_args()
    sizes = [tuple(int(v) for v in s.split(",")) for s in args.sizes] if args.sizes else SIZES
    threads = args.threads or default_threads()
    torch.set_num_threads(threads)
    contenders = {**CONTENDERS, **(VARIANTS if args.variants else {})}
    if args.compile:
        contenders["MinGRU log compiled"] = compiled_log
    info = {**machine(), "rounds": args.rounds, "input_requires_grad": True}
    print(f"torch {torch.__version__}, {threads} threads, load {info['loadavg']}, {args.rounds} rounds")
    print(f"{'H':>4} {'B':>3} {'T':>4}  {'contender':20} {'tokens/s':>9} {'vs GRU':>7} {'peak MiB':>9}")
    rows = []
    for size in sizes:
        summary = speed(contenders, size, args.rounds)
        for name, figures in summary.items():
            memory = (
                None
                if args.no_memory or name not in {**CONTENDERS, **VARIANTS}
                else (peak_memory_mib(name, size, threads))
            )
            row = {"hidden": size[0], "batch": size[1], "steps": size[2], "contender": name, **figures}
            rows.append({**row, "peak_mib": memory})
            tokens, ratio = figures.get("tokens_per_s"), figures.get("ratio")
            print(
                f"{size[0]:>4} {size[1]:>3} {size[2]:>4}  {name:20} "
                + (f"{tokens:>9.0f} {ratio:>7.2f} " if tokens else f"{figures.get('error', '')} ")
                + (f"{memory:>9.1f}" if memory is not None else f"{'-':>9}"),
                flush=True,
            )
    result = {**info, "load_after": [round(x, 2) for x in os.getloadavg()], "rows": rows}
    print(json.dumps(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(result, file, indent=2)


if __name__ == "__main__":
    main()
