"""Part 2b: minGRU / minLSTM beside torch.nn's GRU and LSTM: fwd+bwd tokens/s and peak memory of a step.

One layer each, input size = hidden size, on the same random input ``x`` (T, B, H) that requires grad (as
the output of an embedding or a layer below would), ``loss = output.sum()``, ``loss.backward()``.
Speed: all contenders run in interleaved rounds (who goes first rotates, so a noisy neighbour hits all
alike), after one warm-up each; medians of tokens/s (T * B per second) and of the same-round ratio to
torch.nn.GRU.

Memory: each contender runs in a fresh child process (spawned, so nothing is shared) whose glibc maps
every block of 16 KiB or more on its own and unmaps it when freed (``MALLOC_MMAP_THRESHOLD_``, which
also stops glibc from keeping freed blocks resident), so resident memory follows the live tensors.
After one warm-up step the kernel's high-water mark of resident memory is reset
(``/proc/self/clear_refs``, 5), one more step runs, and ``VmHWM - VmRSS before the step`` is the peak
extra memory of a training step: activations saved for backward, gradients, workspaces. Linux only;
elsewhere it is None.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable

import torch

from rnnlab.bench.measure import BenchConfig, interleave, summarize, table
from rnnlab.nn import MinGRU, MinLSTM

SIZES = [(512, 32, 256), (512, 32, 64), (256, 32, 64)]  # (H, B, T), the issue's
QUICK_SIZES = [(256, 32, 64)]
ANCHOR = "torch GRU"
MMAP_THRESHOLD = "MALLOC_MMAP_THRESHOLD_"
CONTENDERS: dict[str, Callable[[int], torch.nn.Module]] = {
    "torch GRU": lambda h: torch.nn.GRU(h, h),
    "torch LSTM": lambda h: torch.nn.LSTM(h, h),
    "MinGRU": lambda h: MinGRU(h, h),
    "MinLSTM": lambda h: MinLSTM(h, h),
}


def scanned(cls: type, scan: str) -> Callable[[int], torch.nn.Module]:
    def make(h: int) -> torch.nn.Module:
        layer = cls(h, h)
        layer.scan = scan
        return layer

    return make


VARIANTS: dict[str, Callable[[int], torch.nn.Module]] = {
    "MinGRU log": scanned(MinGRU, "log"),  # the paper's log-space parallel scan, autograd through it
    "MinGRU step": scanned(MinGRU, "step"),  # the step per t, autograd recording each
    "MinLSTM log": scanned(MinLSTM, "log"),
}


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


def run(cfg: BenchConfig) -> dict:
    """The issue's sizes (``--quick``: H=256, B=32, T=64, no memory children) as a result part."""
    sizes, rounds = cfg.pick(QUICK_SIZES, SIZES), cfg.rounds_or(2, 5)
    rows = []
    for size in sizes:
        for name, figures in speed(CONTENDERS, size, rounds).items():
            memory = None if cfg.quick else peak_memory_mib(name, size, torch.get_num_threads())
            rows.append([*size, name, figures.get("tokens_per_s"), figures.get("ratio"), memory])
    columns = ["hidden", "batch", "steps", "layer", "tokens/s", "/ torch GRU", "peak step MiB"]
    title = f"minGRU / minLSTM vs torch.nn, one layer, fwd+bwd (median of {rounds} interleaved rounds)"
    return {"anchor": ANCHOR, "rows": rows, "tables": [table(title, columns, rows)]}
