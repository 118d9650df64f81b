"""Several processes under torchrun: who trains which batch rows, and what every process must agree on.

``torchrun --nproc_per_node N -m rnnlab train ...`` starts N copies of the same command; torchrun tells
each one its place through the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``). Every process
draws the same global batch of ``--batch-size`` rows (same seed, same sampler) and trains on its own
slice of the rows::

    global batch (B = 8 rows, N = 2 processes)     rank 0: rows 0-3 ─┐ forward, backward on 4 rows
    row 0 ── a b c d ...                           rank 1: rows 4-7 ─┘ DDP averages the gradients
    ...                                            → the same update as one process on all 8 rows
    row 7 ── w x y z ...

Each process carries the recurrent state of its own rows from batch to batch, as one process carries
all of them. Anything that decides what happens next (a non-finite step, a signal, the time limit, the
validation loss) is agreed through a collective, or the processes would part ways and wait for each
other forever. Only rank 0 writes: the run directory, the log, the checkpoints, the terminal.

:class:`OneProcess` is a plain run: every method is the identity, so ``rnnlab train`` without torchrun
is the run it always was, bit for bit. :class:`Torchrun` is the same interface over a process group.
"""

from __future__ import annotations

import atexit
import gc
import os
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch
import torch.distributed as dist

from rnnlab.config import TrainConfig
from rnnlab.device import resolve_device
from rnnlab.errors import RnnlabError
from rnnlab.nn.state import State, map_state

T = TypeVar("T")


def row_slice(batch_size: int, rank: int, world_size: int) -> slice:
    """The rows ``[rank*B/N, (rank+1)*B/N)`` of a global batch of ``B`` rows that ``rank`` trains on.

    Raises:
        RnnlabError: when ``B`` does not divide evenly among the ``N`` processes (unequal slices would
            weigh rows unequally in the averaged gradient).
    """
    if batch_size % world_size:
        raise RnnlabError(
            f"--batch-size {batch_size} is the global batch and must divide evenly among the "
            f"{world_size} processes; give a multiple of {world_size}"
        )
    per = batch_size // world_size
    return slice(rank * per, (rank + 1) * per)


def rank_seed(seed: int, rank: int, step: int = 0) -> int:
    """A seed of its own for each process (dropout masks must differ between the slices of a batch)."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0])


class OneProcess:
    """A plain run, one process: the whole batch, nothing to agree on, and it writes everything."""

    rank, world_size, local_rank = 0, 1, 0

    @property
    def is_main(self) -> bool:
        """Whether this process writes the run directory and talks to the terminal."""
        return self.rank == 0

    def setup(self, cfg: TrainConfig) -> torch.device:
        """Check the config against the number of processes; returns the device to train on."""
        return resolve_device(cfg.run.device)

    def seed(self, seed: int, step: int = 0) -> None:
        """After the (identical) initialisation: give every process but rank 0 its own random stream."""

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module the training step calls (DistributedDataParallel under torchrun)."""
        return model

    def leave(self) -> None:
        """After training: every process waits for the others, then leaves the process group."""

    def rows(self, batch: torch.Tensor) -> torch.Tensor:
        """This process's rows of a global ``(B, ...)`` batch."""
        return batch

    def average(self, loss: torch.Tensor, total: torch.Tensor, terms: dict) -> tuple:
        """The step's loss, loss + penalties, and each penalty term, averaged over the global batch."""
        return loss, total, terms

    def agree(self, requested: bool, train_time: float) -> tuple[bool, float]:
        """Whether any process was asked to stop (a signal), and the longest training time so far."""
        return requested, train_time

    def from_main(self, fn: Callable[[], T]) -> T:
        """``fn()`` computed by rank 0 and handed to every process (the others do not call it)."""
        return fn()

    def gather_rows(self, state: State | None) -> State | None:
        """The recurrent state of the whole global batch (the processes' rows, in rank order)."""
        return state

    def own_rows(self, state: State | None) -> State | None:
        """This process's rows of a whole-batch recurrent state (inverse of :meth:`gather_rows`)."""
        return state

    def rng_states(self) -> dict:
        """Every process's random state, for the checkpoint (nothing beyond ``rng.torch`` for one)."""
        return {}

    def restore_rng(self, rng: dict, seed: int, step: int) -> None:
        """Reseat this process's random state from a checkpoint's ``rng`` (after ``rng.torch`` was)."""


class Torchrun(OneProcess):
    """One of ``world_size`` processes started by torchrun; call :meth:`setup` before anything else."""

    def __init__(self, rank: int, world_size: int, local_rank: int):
        self.rank, self.world_size, self.local_rank = rank, world_size, local_rank
        self.device = torch.device("cpu")

    def setup(self, cfg: TrainConfig) -> torch.device:
        """Refuse a batch that does not split evenly, then join the process group: NCCL with each
        process on ``cuda:LOCAL_RANK`` when the run is on CUDA, else gloo on the CPU."""
        row_slice(cfg.data.batch_size, self.rank, self.world_size)
        device = resolve_device(cfg.run.device)
        if device.type == "cuda":
            if self.local_rank >= torch.cuda.device_count():
                raise RnnlabError(
                    f"process {self.local_rank} of this machine wants cuda:{self.local_rank}, but torch "
                    f"sees {torch.cuda.device_count()} GPU(s); start at most that many per machine"
                )
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, rank=self.rank, world_size=self.world_size)
        atexit.register(_leave)
        self.device = device
        return device

    def seed(self, seed: int, step: int = 0) -> None:
        if self.rank > 0:
            torch.manual_seed(rank_seed(seed, self.rank, step))

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        # Every parameter gets a gradient in every step, so DDP needs no search for unused ones.
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def rows(self, batch: torch.Tensor) -> torch.Tensor:
        return batch[row_slice(batch.shape[0], self.rank, self.world_size)]

    def leave(self) -> None:
        # Explicitly and together, not at interpreter exit: a process that tore gloo down at exit
        # while its DDP reducer still held the group was seen to abort ("terminate called without an
        # active exception"), and torchrun then failed the whole run.
        if dist.is_initialized():
            gc.collect()  # a dropped DistributedDataParallel's reducer goes now, while the group lives
            dist.barrier()
            _leave()

    def average(self, loss: torch.Tensor, total: torch.Tensor, terms: dict) -> tuple:
        # Equal slices: the mean of the processes' means is the mean over the global batch. A sum
        # carries a NaN or inf from any process to all of them, so the guard decides the same everywhere.
        names = list(terms)
        values = [loss, total, *(terms[n] for n in names)]
        vec = torch.stack([v.detach().to(torch.float64) for v in values]).to(self.device)
        dist.all_reduce(vec)
        vec = vec / self.world_size
        return vec[0], vec[1], dict(zip(names, vec[2:]))

    def agree(self, requested: bool, train_time: float) -> tuple[bool, float]:
        both = torch.tensor([float(requested), train_time], dtype=torch.float64, device=self.device)
        dist.all_reduce(both, op=dist.ReduceOp.MAX)
        return bool(both[0] > 0), float(both[1])

    def from_main(self, fn: Callable[[], T]) -> T:
        box = [fn() if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather_rows(self, state: State | None) -> State | None:
        def gather(t: torch.Tensor) -> torch.Tensor:
            parts = [torch.empty_like(t) for _ in range(self.world_size)]
            dist.all_gather(parts, t.contiguous())
            return torch.cat(parts, dim=1)  # (layers, B, H)

        return map_state(gather, state)

    def own_rows(self, state: State | None) -> State | None:
        def mine(t: torch.Tensor) -> torch.Tensor:  # (layers, B, H): rows are the second dimension
            return t[:, row_slice(t.shape[1], self.rank, self.world_size)].contiguous()

        return map_state(mine, state)

    def rng_states(self) -> dict:
        cuda = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        states: list = [None] * self.world_size
        dist.all_gather_object(states, {"torch": torch.get_rng_state(), "cuda": cuda})
        return {"ranks": states}

    def restore_rng(self, rng: dict, seed: int, step: int) -> None:
        ranks = rng.get("ranks")
        if ranks is not None and len(ranks) == self.world_size:
            mine = ranks[self.rank]
            torch.set_rng_state(mine["torch"])
            if mine["cuda"] is not None and self.device.type == "cuda":
                torch.cuda.set_rng_state(mine["cuda"], self.device)
        else:
            # Written by another number of processes: rank 0 goes on with the saved stream, the others
            # with fresh ones (repeatable, but not the uninterrupted run's dropout masks).
            self.seed(seed, step)


class QuietReporter:
    """What processes other than rank 0 report to: nothing (the Reporter's interface, no file, no bar)."""

    def write(self, event: str, **values) -> None: ...

    def size(self) -> int:
        return 0

    def say(self, line: str) -> None: ...

    def step(self, loss: float, chars_per_s: float) -> None: ...

    def close_bar(self) -> None: ...

    def close(self) -> None: ...


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def processes() -> OneProcess:
    """:class:`Torchrun` when torchrun started this process with others, else :class:`OneProcess`."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return OneProcess()
    return Torchrun(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
