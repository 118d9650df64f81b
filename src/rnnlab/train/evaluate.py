"""Held-out evaluation: mean next-character loss over a whole id stream, state carried throughout."""

from __future__ import annotations

import numpy as np
import torch

from rnnlab.losses import cross_entropy

# Rows evaluated in parallel get at least this many characters each: every row starts from a zero
# state, and long rows keep that cold start a negligible part of the score.
MIN_ROW_CHARS = 1024
MAX_ROWS = 64


@torch.no_grad()
def evaluate_loss(model: torch.nn.Module, ids: np.ndarray, num_steps: int = 256) -> tuple[float, int]:
    """Mean cross-entropy (nats) of predicting ``ids[1:]`` from what precedes each one.

    The stream is laid into rows (as :func:`rnnlab.data.consecutive_batches` does) and read window by
    window with the state carried, so each character is scored with all the context of its row; the
    last, shorter window is scored too. At most ``rows - 1`` characters at the very end are left out.

    Returns:
        ``(loss, count)``: the mean loss and how many characters it averages over.
    """
    n = len(ids) - 1
    if n < 1:
        return float("nan"), 0
    rows = int(np.clip(n // MIN_ROW_CHARS, 1, MAX_ROWS))
    row_len = n // rows
    device = next(model.parameters()).device
    stream = torch.from_numpy(np.asarray(ids[: rows * row_len + 1]).astype(np.int64))
    X = stream[:-1].view(rows, row_len).to(device)  # (rows, row_len)
    Y = stream[1:].view(rows, row_len).to(device)
    was_training = model.training
    model.eval()
    total, state = 0.0, None
    try:
        for t in range(0, row_len, num_steps):
            out = model(X[:, t : t + num_steps], state)
            state = out.state
            total += float(cross_entropy(out.logits, Y[:, t : t + num_steps], reduction="sum"))
    finally:
        model.train(was_training)
    return total / (rows * row_len), rows * row_len
