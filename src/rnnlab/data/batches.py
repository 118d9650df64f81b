"""Batch samplers: (X, Y) windows over an id stream, random or consecutive, and one-hot encoding."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from rnnlab.errors import RnnlabError

Batch = tuple[torch.Tensor, torch.Tensor]
# With ``with_starts``: also where each row starts in the stream, ``(B,)`` int64 (X[b, t] is ids[s[b] + t]).
PlacedBatch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def _check(ids: np.ndarray, batch_size: int, num_steps: int, needed: int, kind: str) -> None:
    if batch_size < 1 or num_steps < 1:
        raise RnnlabError(f"--batch-size and --num-steps must be >= 1, got {batch_size} and {num_steps}")
    if len(ids) < needed:
        raise RnnlabError(
            f"{kind} sampling with --batch-size {batch_size} --num-steps {num_steps} needs at least "
            f"{needed} characters, the split has {len(ids)}; lower --batch-size or --num-steps"
        )


def _as_numpy(ids) -> np.ndarray:
    return ids.cpu().numpy() if isinstance(ids, torch.Tensor) else np.asarray(ids)


def _windows(ids: np.ndarray, starts: np.ndarray, num_steps: int, with_starts: bool) -> Batch | PlacedBatch:
    # Gather in the compact id dtype, widen only the batch: a big corpus is never copied as int64.
    index = starts[:, None] + np.arange(num_steps + 1)  # (B, T+1)
    xy = torch.from_numpy(ids[index].astype(np.int64))
    if with_starts:
        return xy[:, :-1], xy[:, 1:], torch.from_numpy(starts.astype(np.int64))
    return xy[:, :-1], xy[:, 1:]


def random_batch_count(num_ids: int, batch_size: int, num_steps: int) -> int:
    """Batches per epoch of :func:`random_batches` (the same every epoch, whatever the shift)."""
    return max(num_ids - num_steps, 0) // num_steps // batch_size


def random_batches(
    ids,
    batch_size: int,
    num_steps: int,
    *,
    generator: torch.Generator | None = None,
    start: int = 0,
    with_starts: bool = False,
) -> Iterator[Batch | PlacedBatch]:
    """One epoch of windows at random places, each used at most once; Y is X shifted by one.

    The stream is cut into windows of ``num_steps`` ids after a random shift drawn in
    ``[0, num_steps)`` (a fresh shift each epoch, so every position can start a window), and the
    windows are dealt out in a random order, ``batch_size`` per batch::

        ids:    a b c d e f g h i j k l m n o p q r s t u v w x ...
        shift 2     |c d e|f g h|i j k|l m n|o p q|r s t|...      windows of num_steps=3
        batch 0:  X = [l m n]   Y = [m n o]       rows: windows drawn without replacement
                      [c d e]       [d e f]
        batch 1:  X = [r s t]   Y = [s t u]
                      [i j k]       [j k l]

    Neighbouring rows and batches are unrelated, so the loop starts every batch from a fresh state.

    Args:
        ids: 1-D id array (numpy or tensor).
        batch_size, num_steps: the shape ``(B, T)`` of X and Y.
        generator: the torch generator that draws the shift and the order (the run's seed).
        start: skip the first ``start`` batches of this epoch (used to resume mid-epoch; the draws are
            the same as without skipping).
        with_starts: also yield each row's start in ``ids`` (a cross-fitted n-gram needs it).

    Yields:
        ``(X, Y)``, int64 tensors of shape ``(batch_size, num_steps)`` (and the ``(batch_size,)`` starts).
    """
    ids = _as_numpy(ids)
    _check(ids, batch_size, num_steps, num_steps * (batch_size + 1), "random")
    num_windows = (len(ids) - num_steps) // num_steps
    shift = int(torch.randint(num_steps, (1,), generator=generator))
    order = torch.randperm(num_windows, generator=generator).numpy()
    starts = shift + order * num_steps
    for b in range(start, num_windows // batch_size):
        yield _windows(ids, starts[b * batch_size : (b + 1) * batch_size], num_steps, with_starts)


def consecutive_batch_count(num_ids: int, batch_size: int, num_steps: int) -> int:
    """Batches per epoch of :func:`consecutive_batches`."""
    return max(num_ids // batch_size - 1, 0) // num_steps


def consecutive_batches(
    ids, batch_size: int, num_steps: int, *, start: int = 0, with_starts: bool = False
) -> Iterator[Batch | PlacedBatch]:
    """One epoch of windows where row ``i`` of batch ``k+1`` continues row ``i`` of batch ``k``.

    The stream is laid into ``batch_size`` rows of equal length (the remainder is dropped) and
    the rows are read left to right, ``num_steps`` columns at a time::

        ids:  a b c d e f g h i j k l m n o p q r s t u v w x      batch_size=3 -> rows of 8
        row 0: a b c d e f g h       batch 0: X = a b c  Y = b c d    batch 1: X = d e f  Y = e f g
        row 1: i j k l m n o p                    i j k      j k l                 l m n      m n o
        row 2: q r s t u v w x                    q r s      r s t                 t u v      u v w

    Because each row runs on where it stopped, the final hidden state of one batch is a good start
    state for the next: the loop carries it (detached, so backpropagation stays within a window).

    Args:
        ids: 1-D id array (numpy or tensor).
        batch_size, num_steps: the shape ``(B, T)`` of X and Y.
        start: skip the first ``start`` batches (used to resume mid-epoch).
        with_starts: also yield each row's start in ``ids``.

    Yields:
        ``(X, Y)``, int64 tensors of shape ``(batch_size, num_steps)`` (and the ``(batch_size,)`` starts).
    """
    ids = _as_numpy(ids)
    _check(ids, batch_size, num_steps, batch_size * (num_steps + 1), "consecutive")
    row_len = len(ids) // batch_size
    row_starts = np.arange(batch_size) * row_len
    for b in range(start, consecutive_batch_count(len(ids), batch_size, num_steps)):
        yield _windows(ids, row_starts + b * num_steps, num_steps, with_starts)


def fit_batch_shape(num_ids: int, batch_size: int, num_steps: int, sampling: str) -> tuple[int, int]:
    """The largest ``(batch_size, num_steps)`` no bigger than asked that gives at least one batch.

    Halves ``num_steps`` first (down to 8), then ``batch_size``, then ``num_steps`` again down to 1.

    Raises:
        RnnlabError: when not even one window of one step fits.
    """
    count = random_batch_count if sampling == "random" else consecutive_batch_count
    B, T = batch_size, num_steps
    while count(num_ids, B, T) == 0:
        if T > 8:
            T = max(8, T // 2)
        elif B > 1:
            B = max(1, B // 2)
        elif T > 1:
            T //= 2
        else:
            raise RnnlabError(f"a split of {num_ids} characters is too short to train on; give more text")
    return B, T


def one_hot(ids: torch.Tensor, num_classes: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The notes' one-hot encoding: a ``(..., num_classes)`` tensor with a single 1 per id.

    Kept for teaching and tests; the model never multiplies by it (see ``rnnlab.model``: a row gather of
    the weight gives the same result without the ``V``-wide matmul).
    """
    ids = ids.long()
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= num_classes):
        raise ValueError(f"ids must lie in [0, {num_classes}), got [{int(ids.min())}, {int(ids.max())}]")
    out = torch.zeros(*ids.shape, num_classes, dtype=dtype, device=ids.device)
    out.scatter_(-1, ids.unsqueeze(-1), 1)
    return out
