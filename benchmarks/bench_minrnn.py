"""Training speed and memory of MinGRU / MinLSTM against torch.nn.GRU / LSTM: fwd+bwd tokens/s, peak RSS.

One layer each, input size = hidden size, on the same random input ``x`` (T, B, H) that requires grad (as
the output of an embedding or a layer below would), ``loss = output.sum()``, ``loss.backward()``.
Speed: all contenders run in interleaved rounds (rnnlab.bench.measure.interleave: who goes first
rotates, so a noisy neighbour hits all alike), after one warm-up each; the table shows the median
tokens/s (T * B per second) and the median over rounds of the same-round ratio to torch.nn.GRU.

Memory: each contender runs in a fresh child process (spawned, so nothing is shared) whose glibc maps
every block of 16 KiB or more on its own and unmaps it when freed (``MALLOC_MMAP_THRESHOLD_``, which
also stops glibc from keeping freed blocks resident), so resident memory follows the live tensors.
After one warm-up step the kernel's high-water mark of resident memory is reset
(``/proc/self/clear_refs``, 5), one more step runs, and ``VmHWM - VmRSS before the step`` is the peak
extra memory of a training step: activations saved for backward, gradients, workspaces. Linux only;
elsewhere it is skipped.

Threads: ``--threads`` or, by default, 2 when the 1-minute load average is under 0.5 (a quiet
2-core machine) and 1 otherwise; the figures say which, and the load.

    python benchmarks/bench_minrnn.py                         # the issue's three sizes
    python benchmarks/bench_minrnn.py --sizes 512,32,256 --rounds 7 --variants --json out.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from collections.abc import Callable

import torch

from rnnlab.bench.measure import interleave, machine, summarize
from rnnlab.nn import minscan
from rnnlab.nn.minrnn import MinGRU, MinLSTM

SIZES = [(512, 32, 256), (512, 32, 64), (256, 32, 64)]  # (H, B, T), the issue's
ANCHOR = "torch GRU"
MMAP_THRESHOLD = "MALLOC_MMAP_THRESHOLD_"
CONTENDERS: dict[str, Callable[[int], torch.nn.Module]] = {
    "torch GRU": lambda h: torch.nn.GRU(h, h),
    "torch LSTM": lambda h: torch.nn.LSTM(h, h),
    "MinGRU": lambda h: MinGRU(h, h),
    "MinLSTM": lambda h: MinLSTM(h, h),
}


def _scanned(cls: type, scan: str) -> Callable[[int], torch.nn.Module]:
    def make(h: int) -> torch.nn.Module:
        layer = cls(h, h)
        layer.scan = scan
        return layer

    return make


VARIANTS: dict[str, Callable[[int], torch.nn.Module]] = {
    "MinGRU log": _scanned(MinGRU, "log"),  # the paper's log-space parallel scan, autograd through it
    "MinGRU step": _scanned(MinGRU, "step"),  # the step per t, autograd recording each
    "MinLSTM log": _scanned(MinLSTM, "log"),
}


def _compiled_log(h: int) -> torch.nn.Module:
    """MinGRU on the log-space scan compiled by torch.compile (inductor; needs a C++ compiler)."""
    minscan.SCANS.setdefault("log-compiled", torch.compile(minscan.log_scan, dynamic=False))
    return _scanned(MinGRU, "log-compiled")(h)


def step_of(make: Callable[[int], torch.nn.Module], size: tuple[int, int, int]) -> Callable[[], None]:
    """A zero-argument training step (fwd + bwd) of a fresh layer on a fixed input of ``size``."""
    hidden, batch, steps = size
    torch.manual_seed(0)
    layer = make(hidden)
    x = torch.randn(steps, batch, hidden, requires_grad=True)

    def run() -> None:
        layer.zero_grad(set_to_none=True)
        x.grad = None
        out, _ = layer(x)
        out.sum().backward()

    return run


def speed(contenders: dict, size: tuple[int, int, int], rounds: int) -> dict:
    """Median tokens/s and same-round ratio to torch.nn.GRU of every contender at ``size``."""
    runs = {name: step_of(make, size) for name, make in contenders.items()}
    for run in runs.values():
        run()  # warm-up: first-touch allocations, oneDNN primitives, torch.compile
    tokens = size[1] * size[2]

    def timed(run: Callable[[], None]) -> Callable[[], dict]:
        def sample() -> dict:
            start = time.perf_counter()
            run()
            return {"tokens_per_s": tokens / (time.perf_counter() - start)}

        return sample

    samples = interleave({name: timed(run) for name, run in runs.items()}, rounds)
    return summarize(samples, "tokens_per_s", anchor=ANCHOR)


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="utf-8") as file:
        for line in file:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def _peak_child(name: str, size: tuple[int, int, int], threads: int, queue) -> None:
    torch.set_num_threads(threads)
    run = step_of({**CONTENDERS, **VARIANTS}[name], size)
    run()
    with open("/proc/self/clear_refs", "w", encoding="utf-8") as file:
        file.write("5")  # the high-water mark of RSS restarts from the current RSS
    before = _status_kib("VmRSS")
    run()
    queue.put((_status_kib("VmHWM") - before) / 1024)


def peak_memory_mib(name: str, size: tuple[int, int, int], threads: int) -> float | None:
    """Peak extra resident memory (MiB) of one training step of contender ``name``, in a fresh process."""
    if not os.path.exists("/proc/self/clear_refs"):
        return None
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_peak_child, args=(name, size, threads, queue))
    saved = os.environ.get(MMAP_THRESHOLD)
    os.environ[MMAP_THRESHOLD] = "16384"  # read by the child's glibc at start-up
    try:
        child.start()
    finally:
        if saved is None:
            del os.environ[MMAP_THRESHOLD]
        else:
            os.environ[MMAP_THRESHOLD] = saved
    child.join(timeout=600)
    return queue.get() if child.exitcode == 0 else None


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
        contenders["MinGRU log compiled"] = _compiled_log
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
