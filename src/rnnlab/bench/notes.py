"""The anchor every speed figure is divided by: the notes' own pipeline, run as a subprocess.

``seed_pipeline.py`` trains the notes' char-RNN (one-hot inputs, torch.nn.LSTM, Adam at lr 1e-2,
global-norm clipping at 1e-2, consecutive windows of 35 steps, batch 32, hidden 256, on the first
10,000 characters with newlines as spaces) and times its greedy ``predict()``. It runs in its own
process, with as many threads as this one, and only its printed figures are used.

Where that script is missing, :class:`NotesTwin` stands in: the same recipe written here (one matmul
per gate and input, a Python loop over time steps), labelled ``in-bench twin`` in every result.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rnnlab.data import consecutive_batch_count, consecutive_batches
from rnnlab.errors import RnnlabError

NOTES_CHARS = 10_000
BATCH, STEPS, HIDDEN = 32, 35, 256
_EPOCH_LINE = re.compile(r"^epoch (\d+) train_ppl ([0-9.eE+-]+|inf|nan)")


def notes_text(corpus: Path, chars: int = NOTES_CHARS) -> str:
    """The notes' training text: the corpus with newlines as spaces, cut to its first ``chars``."""
    return corpus.read_text(encoding="utf-8").replace("\n", " ").replace("\r", " ")[:chars]


def chars_per_epoch(num_chars: int = NOTES_CHARS) -> int:
    """Characters one epoch of consecutive windows reads (the notes' sampler and rnnlab's agree)."""
    return consecutive_batch_count(num_chars, BATCH, STEPS) * BATCH * STEPS


def run_notes(script: Path | None, corpus: Path, epochs: int, predict: int = 0) -> dict:
    """One run of the notes' pipeline (or of its twin when ``script`` is None or missing).

    Returns:
        ``label``, ``chars_per_s`` (training, evaluation excluded), ``train_losses`` (nats, the mean
        of each epoch), ``vocab``, and with ``predict`` > 0 ``predict_chars_per_s``.
    """
    if script is None or not script.is_file():
        return NotesTwin(notes_text(corpus)).run(epochs, predict)
    command = [sys.executable, str(script), str(corpus), "--kind", "torch-lstm", "--epochs", str(epochs)]
    command += ["--chars", str(NOTES_CHARS)] + (["--predict", str(predict)] if predict else [])
    threads = str(torch.get_num_threads())
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        raise RnnlabError(f"the notes' pipeline failed ({script}): {tail[0]}")
    lines = proc.stdout.strip().splitlines()
    out = json.loads(lines[-1])
    losses = [math.log(float(m.group(2))) for m in map(_EPOCH_LINE.match, lines) if m]
    result = {
        "label": f"notes: {script.name} --kind torch-lstm (subprocess)",
        "chars_per_s": float(out["train_chars_per_s"]),
        "train_losses": losses,
        "vocab": out["vocab"],
    }
    if predict:
        result["predict_chars_per_s"] = float(out["predict_chars_per_s"])
    return result


class NotesTwin(nn.Module):
    """The notes' recipe, written here: one-hot x_t, ``I = σ(x W_xi + h W_hi + b_i)`` and so on, one
    matmul per gate and input, then ``Y = h W_hq + b_q``; weights ~ N(0, 0.01), biases 0.

    Only a stand-in for timing when the notes' script is absent; its figures are labelled as such.
    """

    def __init__(self, text: str, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        index = {c: i for i, c in enumerate(sorted(set(text)))}
        self.ids = np.array([index[c] for c in text], dtype=np.int64)
        V, H = len(index), HIDDEN
        self.V, self.H = V, H
        self.w_x = nn.ParameterList(_normal(V, H) for _ in "ifoc")
        self.w_h = nn.ParameterList(_normal(H, H) for _ in "ifoc")
        self.b = nn.ParameterList(nn.Parameter(torch.zeros(H)) for _ in "ifoc")
        self.w_q, self.b_q = _normal(H, V), nn.Parameter(torch.zeros(V))

    def forward(self, X: torch.Tensor, state):
        """``X`` (B, T) ids -> logits (T*B, V), time-major as the notes' model returns them."""
        h, c = state if state is not None else (torch.zeros(X.shape[0], self.H),) * 2
        outputs = []
        for x in F.one_hot(X.t(), self.V).float():  # (B, V) per step
            i, f, o, g = (x @ wx + h @ wh + b for wx, wh, b in zip(self.w_x, self.w_h, self.b))
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outputs.append(h @ self.w_q + self.b_q)
        return torch.cat(outputs), (h, c)

    def run(self, epochs: int, predict: int = 0) -> dict:
        optimizer = torch.optim.Adam(self.parameters(), lr=1e-2)
        losses, seconds, seen = [], 0.0, 0
        for _ in range(epochs):
            start, total, state = time.perf_counter(), 0.0, None
            for X, Y in consecutive_batches(self.ids, BATCH, STEPS):
                state = None if state is None else tuple(s.detach() for s in state)
                logits, state = self(X, state)
                loss = F.cross_entropy(logits, Y.t().reshape(-1))
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.parameters(), 1e-2)
                optimizer.step()
                total, seen = total + loss.item() * Y.numel(), seen + Y.numel()
            seconds += time.perf_counter() - start
            losses.append(total / chars_per_epoch(len(self.ids)))
        result = {"label": "in-bench twin of the notes' pipeline (its script was not found)"}
        result |= {"chars_per_s": seen / seconds, "train_losses": losses, "vocab": self.V}
        if predict:
            result["predict_chars_per_s"] = predict / self._time_predict(predict)
        return result

    @torch.no_grad()
    def _time_predict(self, length: int) -> float:
        """Seconds for the notes' greedy predict(): one id at a time through the whole model."""
        start, state, last = time.perf_counter(), None, int(self.ids[0])
        for _ in range(length):
            logits, state = self(torch.tensor([[last]]), state)
            last = int(logits.argmax(dim=1).item())
        return time.perf_counter() - start


def _normal(*shape: int) -> nn.Parameter:
    return nn.Parameter(torch.randn(*shape) * 0.01)
