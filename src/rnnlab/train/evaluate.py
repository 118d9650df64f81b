"""Held-out evaluation: mean next-token loss over a whole id stream, state carried throughout."""

from __future__ import annotations

import numpy as np
import torch

from rnnlab.losses import cross_entropy
from rnnlab.nn.state import state_from_tensors, state_tensors

# Rows evaluated in parallel get at least this many characters each.
MIN_ROW_CHARS = 1024
MAX_ROWS = 64
# ...and each row but the first starts warm: it reads the BURN_IN ids before it (unscored) first, so
# no token is scored without the context the stream gives it. Cold, each row start cost the 100 MB
# corpus of the quality bench 0.015 nats/char (its 7-gram scored 0.460 along the stream, 0.475 in rows).
BURN_IN = 64


# Scoring a token costs about the vocabulary's size (the decoder, the n-gram's distribution, the
# softmax): at most this many token x vocabulary entries per pass, so a 3,000-character vocabulary is
# scored on 10,000+ tokens in seconds rather than 250,000 in a minute (the 100 MB corpus of the
# quality bench spent 4 of its 5.6 minutes scoring). Never fewer than EVAL_MIN_TOKENS.
EVAL_ENTRIES = 32_000_000
EVAL_MIN_TOKENS = 20_000


def held_out(ids: np.ndarray, max_tokens: int, vocab_size: int = 0) -> np.ndarray:
    """The first scored tokens of a split (one more id than tokens): at most ``max_tokens`` (0: all) and,
    given ``vocab_size``, at most ``EVAL_ENTRIES / vocab_size`` but no fewer than ``EVAL_MIN_TOKENS``."""
    limit = max_tokens or len(ids)
    if vocab_size:
        limit = min(limit, max(EVAL_MIN_TOKENS, EVAL_ENTRIES // vocab_size))
    return ids[: limit + 1]


@torch.no_grad()
def evaluate_parts(model: torch.nn.Module, ids: np.ndarray, num_steps: int = 256) -> dict:
    """Mean cross-entropy (nats) of predicting ``ids[1:]`` from what precedes each one.

    The stream is laid into rows (as :func:`rnnlab.data.consecutive_batches` does) and read window by
    window with the state carried; each row starts from the state of reading the :data:`BURN_IN` ids
    before it, so every token is scored with (at least that much of) what precedes it in the stream;
    the last, shorter window is scored too. At most ``rows - 1`` tokens at the very end are left out.

    Returns:
        ``{"loss", "count"}``: the mean loss and how many tokens it averages over; for a residual model
        (its output carries a ``prior``) also ``"network"`` and ``"ngram"``: the loss of the network's
        logits alone and of the n-gram alone, on the same tokens.
    """
    n = len(ids) - 1
    if n < 1:
        return {"loss": float("nan"), "count": 0}
    rows = int(np.clip(n // MIN_ROW_CHARS, 1, MAX_ROWS))
    row_len = n // rows
    device = next(model.parameters()).device
    stream = torch.from_numpy(np.asarray(ids[: rows * row_len + 1]).astype(np.int64))
    X = stream[:-1].view(rows, row_len).to(device)  # (rows, row_len)
    Y = stream[1:].view(rows, row_len).to(device)
    was_training = model.training
    model.eval()
    sums = {"loss": 0.0}
    try:
        state = _warm_state(model, stream, rows, row_len, device)
        for t in range(0, row_len, num_steps):
            out = model(X[:, t : t + num_steps], state)
            state, y = out.state, Y[:, t : t + num_steps]
            sums["loss"] += float(cross_entropy(out.logits, y, reduction="sum"))
            if out.prior is not None:  # the n-gram's are log-probabilities already: no normalising
                network = cross_entropy(out.network, y, reduction="sum")
                sums["network"] = sums.get("network", 0.0) + float(network)
                ngram = -out.prior.gather(-1, y[..., None].to(out.prior.device)).sum()
                sums["ngram"] = sums.get("ngram", 0.0) + float(ngram)
    finally:
        model.train(was_training)
    count = rows * row_len
    return {**{k: v / count for k, v in sums.items()}, "count": count}


def _warm_state(model: torch.nn.Module, stream: torch.Tensor, rows: int, row_len: int, device):
    """The state each row starts from: the first row's the stream's start (None when there is one row),
    every other row's after reading the up to :data:`BURN_IN` ids before it."""
    burn = min(BURN_IN, row_len)
    if rows == 1 or burn == 0:
        return None
    starts = torch.arange(1, rows) * row_len
    before = stream[starts[:, None] + torch.arange(-burn, 0)].to(device)  # (rows - 1, burn)
    warm = model.read(before, model.init_state(rows - 1))  # the state alone: nothing to score here
    cold = model.init_state(1)
    pairs = zip(state_tensors(cold), state_tensors(warm))
    return state_from_tensors([torch.cat(pair, dim=1) for pair in pairs])  # rows along dim 1


def evaluate_loss(model: torch.nn.Module, ids: np.ndarray, num_steps: int = 256) -> tuple[float, int]:
    """``(loss, count)`` of :func:`evaluate_parts`: the mean loss and how many tokens it averages over."""
    parts = evaluate_parts(model, ids, num_steps)
    return parts["loss"], parts["count"]
