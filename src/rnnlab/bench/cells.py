"""Part 2: forward+backward throughput of rnnlab's LSTM / GRU (fast and reference paths) vs torch.nn's,
and of minGRU / minLSTM beside torch.nn's GRU and LSTM (:mod:`rnnlab.bench.mincells`).

One layer only: ``x`` random (T, B, H), ``loss = output.sum()``, ``loss.backward()``, in tokens (T * B)
per second. For each configuration the three contenders run in interleaved rounds (rotating who goes
first, so a noisy neighbour hits all of them alike); the table shows medians over the rounds and the
median of the per-round ratios ours / torch.nn. Threads: torch's default, or --threads.

    rnnlab bench --parts cells --quick              # H=256, B=32, T=35
    python benchmarks/bench_cells.py --sizes 512,64,100 --mode lstm --precision fp32 --profile
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass

import torch

from rnnlab.bench import mincells
from rnnlab.bench.measure import BenchConfig, interleave, summarize, table
from rnnlab.nn import GRU, LSTM

LAYERS = {"lstm": (LSTM, torch.nn.LSTM), "gru": (GRU, torch.nn.GRU)}
CONTENDERS = ("fast", "reference", "torch")


@dataclass(frozen=True)
class Config:
    mode: str
    hidden: int
    batch: int
    steps: int
    precision: str  # "fp32", or "bf16" for torch.autocast("cpu", dtype=torch.bfloat16)


SIZES = list(itertools.product((256, 512), (32, 64), (35, 100)))  # (H, B, T), the issue's grid
QUICK_SIZES = [(256, 32, 35)]


def grid(sizes: list[tuple[int, int, int]], precisions: list[str], modes: list[str]) -> list[Config]:
    """Every (precision, mode, size) combination, in that nesting order."""
    combos = itertools.product(precisions, modes, sizes)
    return [Config(mode, hidden, batch, steps, prec) for prec, mode, (hidden, batch, steps) in combos]


@contextmanager
def _mkldnn_off() -> Iterator[None]:
    """oneDNN off for torch.nn's RNN kernels, without the TF32 warning that toggling it prints."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with torch.backends.mkldnn.flags(enabled=False):
            yield


def make_runners(config: Config) -> dict[str, Callable[[], None]]:
    """One zero-argument fwd+bwd closure per contender, all three on the same weights and input."""
    ours_cls, theirs_cls = LAYERS[config.mode]
    theirs = theirs_cls(config.hidden, config.hidden)
    fast, reference = ours_cls(config.hidden, config.hidden), ours_cls(config.hidden, config.hidden)
    for ours in (fast, reference):
        ours.load_state_dict(theirs.state_dict())
    reference.fast = False
    x = torch.randn(config.steps, config.batch, config.hidden)
    autocast = config.precision == "bf16"

    def runner(module: torch.nn.Module, mkldnn: bool = True) -> Callable[[], None]:
        def run() -> None:
            module.zero_grad(set_to_none=True)
            with nullcontext() if mkldnn else _mkldnn_off():
                with torch.autocast("cpu", dtype=torch.bfloat16) if autocast else nullcontext():
                    out, _ = module(x)
                out.float().sum().backward()

        return run

    runners = {"fast": runner(fast), "reference": runner(reference), "torch": runner(theirs)}
    try:
        runners["torch"]()
    except RuntimeError:  # oneDNN has no bf16 LSTM primitive on CPUs without bf16 instructions
        runners["torch"] = runner(theirs, mkldnn=False)
        runners["torch"].note = "torch.nn ran with oneDNN off"
    return runners


def _timed(run: Callable[[], None], tokens: int) -> Callable[[], dict]:
    def sample() -> dict:
        start = time.perf_counter()
        run()
        return {"tokens_per_s": tokens / (time.perf_counter() - start)}

    return sample


def measure(config: Config, rounds: int, warm_up: bool = True) -> dict:
    """Median tokens/s per contender over ``rounds`` interleaved rounds, after one warm-up each."""
    runners = make_runners(config)
    for run in runners.values() if warm_up else ():
        run()
    tokens = config.steps * config.batch
    samples = interleave({name: _timed(runners[name], tokens) for name in CONTENDERS}, rounds)
    summary = summarize(samples, "tokens_per_s", anchor="torch")
    row = {name: summary[name]["tokens_per_s"] for name in CONTENDERS}
    row |= {f"{name}/torch": summary[name]["ratio"] for name in ("fast", "reference")}
    return {**asdict(config), **row, "note": getattr(runners["torch"], "note", ""), "rounds": rounds}


def profile(config: Config, names: tuple[str, ...] = ("fast", "torch"), rows: int = 12) -> None:
    """Print torch.profiler's top ops by self CPU time, one fwd+bwd each, for where the time goes."""
    runners = make_runners(config)
    for name in names:
        runners[name]()
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            runners[name]()
        print(f"\n{name}: {config}")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))


def run(cfg: BenchConfig) -> dict:
    """The grid (``--quick``: H=256, B=32, T=35), both cells and precisions, as a result part.

    On the full grid bf16 gets one round and no warm-up: without bf16 instructions (AVX2) it runs an
    order of magnitude slower than fp32, up to ~20 s per call at H=512, B=64, T=100, and what it
    shows is that order of magnitude.
    """
    rounds = {"fp32": cfg.rounds_or(2, 3), "bf16": cfg.rounds_or(2, 1)}
    configs = grid(cfg.pick(QUICK_SIZES, SIZES), ["fp32", "bf16"], list(LAYERS))
    rows = [measure(c, rounds[c.precision], warm_up=cfg.quick or c.precision == "fp32") for c in configs]
    columns = ["mode", "precision", "hidden", "batch", "steps", *CONTENDERS, "fast/torch", "reference/torch"]
    mins = mincells.run(cfg)  # the parallel-scan cells beside torch.nn's GRU and LSTM
    return {
        "anchor": "torch.nn's layer on the same weights and input",
        "method": "one layer, loss = output.sum(), forward + backward; tokens (T*B) per second",
        "rows": rows,
        "min_rows": mins["rows"],
        "tables": [
            table(
                f"From-scratch vs torch.nn, fwd+bwd tokens/s (median of interleaved rounds: {rounds})",
                [*columns, "note"],
                [[row[c] for c in columns] + [row["note"]] for row in rows],
            ),
            *mins["tables"],
        ],
    }


def main(argv: Sequence[str] | None = None) -> None:
    """The stand-alone command line (benchmarks/bench_cells.py): any subset of the grid, a profile."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="H=256, B=32, T=35, 2 rounds (< 60 s)")
    parser.add_argument("--sizes", nargs="+", type=_size, metavar="H,B,T", help="instead of the grid")
    parser.add_argument("--mode", choices=sorted(LAYERS), help="only this layer kind")
    parser.add_argument("--precision", choices=("fp32", "bf16"), help="only this precision")
    parser.add_argument("--rounds", type=int, help="interleaved rounds per configuration (5; --quick 2)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's default)")
    parser.add_argument("--profile", action="store_true", help="also print top ops of fast and torch")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON to PATH")
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (2 if args.quick else 5)
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    sizes = args.sizes or (QUICK_SIZES if args.quick else SIZES)
    precisions = [args.precision] if args.precision else ["fp32", "bf16"]
    configs = grid(sizes, precisions, [args.mode] if args.mode else list(LAYERS))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.rounds} rounds; tokens/s")
    header = f"{'mode':5} {'prec':4} {'H':>4} {'B':>3} {'T':>4} {'fast':>8} {'ref':>8} {'torch':>8}"
    print(header + f" {'fast/torch':>10} {'ref/torch':>9}")
    rows = []
    for config in configs:
        row = measure(config, args.rounds)
        rows.append(row)
        print(
            f"{row['mode']:5} {row['precision']:4} {row['hidden']:>4} {row['batch']:>3} {row['steps']:>4} "
            f"{row['fast']:>8.0f} {row['reference']:>8.0f} {row['torch']:>8.0f} "
            f"{row['fast/torch']:>10.2f} {row['reference/torch']:>9.2f}  {row['note']}",
            flush=True,
        )
    if args.profile:
        for config in configs:
            profile(config)
    if args.json:
        meta = {"torch": torch.__version__, "threads": torch.get_num_threads(), "rounds": args.rounds}
        with open(args.json, "w") as file:
            json.dump({**meta, "rows": rows}, file, indent=2)


def _size(text: str) -> tuple[int, int, int]:
    hidden, batch, steps = (int(part) for part in text.split(","))
    return hidden, batch, steps
