"""The order batches come in: consecutive rows or random windows, an epoch at a time, resumable mid-epoch."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from rnnlab.config import DataConfig
from rnnlab.data import (
    consecutive_batch_count,
    consecutive_batches,
    random_batch_count,
    random_batches,
)
from rnnlab.data.batches import PlacedBatch


class BatchOrder:
    """The training split's batches, epoch by epoch, with the draws of random sampling kept resumable.

    Random sampling draws each epoch's shift and window order from a generator seeded with the run's
    seed. Its state at the start of the epoch (:attr:`epoch_state`) goes into checkpoints: a resumed
    epoch re-seats the generator there and redraws the same order, then skips the batches already done.

    Args:
        ids: the training split's ids.
        data: the sampler (``consecutive`` or ``random``), ``batch_size`` and ``num_steps``.
        seed: the run's seed.
    """

    def __init__(self, ids: np.ndarray, data: DataConfig, seed: int):
        self.ids, self.data = ids, data
        self.rng = torch.Generator().manual_seed(seed)
        self.epoch_state = self.rng.get_state()  # the generator where the current epoch's draws began

    def per_epoch(self) -> int:
        d = self.data
        count = random_batch_count if d.sampling == "random" else consecutive_batch_count
        return count(len(self.ids), d.batch_size, d.num_steps)

    def epoch(self, start: int) -> Iterator[PlacedBatch]:
        """The current epoch's batches ``(X, Y, starts)`` from batch ``start`` on; ``start == 0``
        begins a new epoch."""
        d = self.data
        if start == 0:
            self.epoch_state = self.rng.get_state()
        if d.sampling == "random":
            self.rng.set_state(self.epoch_state)
            return random_batches(
                self.ids, d.batch_size, d.num_steps, generator=self.rng, start=start, with_starts=True
            )
        return consecutive_batches(self.ids, d.batch_size, d.num_steps, start=start, with_starts=True)
