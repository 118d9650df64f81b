"""Why a bidirectional RNN is no language model: its backward half reads the answer, then sampling fails."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from rnnlab.data import Vocab, builtin_corpus, random_batches
from rnnlab.experiments.common import ExperimentResult, SequenceModel, Timer, one_thread, pyplot, train

NAME = "bidirectional-leak"
DESCRIPTION = "a bidirectional LSTM 'language model' reaches ~0 training loss and samples garbage"
LYRICS = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "jaychou_lyrics.txt"
# Adam's lr: high in the quick setting so the leak shows within 150 steps; rnnlab's default in the full one
QUICK = {"steps": 150, "hidden_size": 64, "embedding_dim": 32, "num_steps": 32, "batch_size": 32, "lr": 1e-2}
FULL = {"steps": 800, "hidden_size": 128, "embedding_dim": 64, "num_steps": 35, "batch_size": 32, "lr": 5e-3}
CONTEXT = 32  # characters of past a model sees when it predicts or samples one character at a time
HELD_OUT = 0.1  # the text's last tenth is held out


def load_text(path: Path | None = None) -> tuple[str, str]:
    """The notes' lyrics when the shared data is there, else the built-in corpus (and its name)."""
    path = path or LYRICS
    if path.is_file():
        return path.read_text(encoding="utf-8"), path.name
    return builtin_corpus(), "python-docs (built-in)"


def causal_loss(model: SequenceModel, ids: Tensor, positions: int) -> float:
    """Next-character loss when each prediction sees only the ``CONTEXT`` characters up to itself.

    This is how a language model is used (sampling, scoring text as it arrives). For a unidirectional
    model it equals the usual loss; a bidirectional one is robbed of the future it learnt to read.
    """
    ends = torch.arange(CONTEXT - 1, CONTEXT - 1 + positions)
    windows = ids[ends[:, None] - torch.arange(CONTEXT - 1, -1, -1)]  # (N, CONTEXT), each ends at t
    with torch.no_grad():
        logits = model(windows)[0][:, -1]  # (N, V): the prediction after the window's last character
    return float(F.cross_entropy(logits, ids[ends + 1]))


def window_loss(model: SequenceModel, ids: Tensor, positions: int) -> float:
    """The usual teacher-forced loss over ``CONTEXT``-long windows: every position sees the whole window."""
    count = positions // CONTEXT
    x = ids[: count * CONTEXT].view(count, CONTEXT)
    y = ids[1 : count * CONTEXT + 1].view(count, CONTEXT)
    with torch.no_grad():
        logits = model(x)[0]
    return float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)))


def sample(model: SequenceModel, prefix: Tensor, length: int, seed: int) -> list[int]:
    """Sample ``length`` ids one at a time from softmax(logits), each step re-reading the last CONTEXT ids."""
    generator = torch.Generator().manual_seed(seed)
    ids = prefix.tolist()
    with torch.no_grad():
        for _ in range(length):
            logits = model(torch.tensor([ids[-CONTEXT:]]))[0][0, -1]
            ids.append(int(torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)))
    return ids[len(prefix) :]


@one_thread()
def run(
    quick: bool = False, seed: int = 0, out: Path | None = None, impl: str = "scratch"
) -> ExperimentResult:
    """Train a bidirectional and a unidirectional LSTM next-character model on the same windows.

    Args:
        quick: 150 steps of a 64-unit LSTM; else 800 steps of a 128-unit one.
        seed: seeds the weights, the batches and the samples.
        out: where to save ``bidirectional-leak[-quick].png``; None draws nothing.
        impl: ``"scratch"`` (rnnlab.nn.LSTM, the default here) or ``"torch"``.
    """
    size = QUICK if quick else FULL
    text, source = load_text()
    cut = int(len(text) * (1 - HELD_OUT))
    vocab = Vocab.build(text[:cut])
    train_ids = vocab.encode(text[:cut]).astype(np.int64)
    held_out = torch.from_numpy(vocab.encode(text[cut:]).astype(np.int64))
    positions = min(1000, len(held_out) - CONTEXT - 1)
    rows, curves, samples = [], {}, {}
    with Timer() as timer:
        for bidirectional in (False, True):
            name = "bidirectional" if bidirectional else "unidirectional"
            model, curves[name] = _train_one(bidirectional, size, len(vocab), train_ids, impl, seed)
            samples[name] = vocab.decode(sample(model, held_out[:CONTEXT], 60, seed))
            rows.append(
                {
                    "model": name,
                    "train loss": sum(curves[name][-20:]) / len(curves[name][-20:]),
                    "held-out, whole window": window_loss(model, held_out, positions),
                    "held-out, past only": causal_loss(model, held_out, positions),
                }
            )
    prompt = vocab.decode(held_out[:CONTEXT].tolist())
    result = ExperimentResult(
        NAME,
        "quick" if quick else "full",
        ["model", "train loss", "held-out, whole window", "held-out, past only"],
        rows,
        notes=[
            f"Losses in nats per character on {source} ({len(vocab)} characters in the vocabulary; "
            f"uniform guessing scores ln V = {np.log(len(vocab)):.2f}). 'whole window': teacher-forced "
            f"{CONTEXT}-character windows, as in training; 'past only': each character predicted from the "
            f"{CONTEXT} before it, as when sampling.",
            "The bidirectional model's backward direction has read x[t+1] = y[t] when it predicts y[t], so "
            "it learns to copy: near-zero loss while the answer is in view, and garbage once it is not.",
            f"Prompt: {prompt!r}",
            *(f"{name} sample: {text!r}" for name, text in samples.items()),
            f"LSTM {size['hidden_size']} units, embedding {size['embedding_dim']}, {size['steps']} Adam "
            f"steps (lr {size['lr']:g}, clip-norm 1) of {size['batch_size']} x {size['num_steps']} windows, "
            f"impl {impl}, seed {seed}.",
        ],
        extra={"size": size, "source": source, "samples": samples, "train_curves": curves},
        seconds=timer.seconds,
    )
    if out is not None:
        result.figures.append(_plot(curves, rows, Path(out) / f"{result.stem()}.png"))
    return result


def _train_one(
    bidirectional: bool, size: dict, vocab_size: int, train_ids: np.ndarray, impl: str, seed: int
) -> tuple[SequenceModel, list[float]]:
    """One next-character LSTM (reading both ways or forwards only) trained on random windows; returns
    it in eval mode with its per-step training losses."""
    torch.manual_seed(seed)
    embedding_dim, hidden_size = size["embedding_dim"], size["hidden_size"]
    model = SequenceModel("lstm", embedding_dim, hidden_size, vocab_size, impl, vocab_size, bidirectional)
    generator = torch.Generator().manual_seed(seed)

    def batches():
        while True:
            yield from random_batches(train_ids, size["batch_size"], size["num_steps"], generator=generator)

    stream = batches()
    losses, _ = train(
        model,
        lambda step: next(stream),
        lambda logits, y: F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)),
        size["steps"],
        lr=size["lr"],
    )
    return model.eval(), losses


def _plot(curves: dict, rows: list[dict], path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (name, losses) in enumerate(curves.items()):
        ax.plot(losses, color=f"C{i}", alpha=0.8, label=f"{name}: training loss")
        causal = next(r["held-out, past only"] for r in rows if r["model"] == name)
        ax.axhline(causal, color=f"C{i}", linestyle="--", label=f"{name}: held-out, past only")
    ax.set(xlabel="step", ylabel="nats per character", title="bidirectional 'language model' leak")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
