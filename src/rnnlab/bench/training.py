"""Part 1: training chars/s and loss per character seen at the notes' config, rnnlab vs the notes.

Both train an LSTM, hidden 256, batch 32, 35 steps, consecutive windows, on the same first 10,000
characters of the notes' corpus (newlines as spaces). rnnlab runs through its real training machinery
(:class:`rnnlab.train.Trainer`, the dataclass defaults otherwise: embedding encoder, Adam at 5e-3,
clipping at norm 1) and validates once per epoch on the next 1,111 characters; its chars/s is the
Trainer's own (seconds in training steps only, validation and checkpoints excluded), as is the
notes' (its epoch loop only). Contenders: ``--impl torch`` (the default), ``--impl scratch``, and
each under bf16 autocast (``--precision bf16``).
"""

from __future__ import annotations

import tempfile
from functools import partial
from pathlib import Path

import torch

from rnnlab.bench.measure import BenchConfig, interleave, summarize, table
from rnnlab.bench.notes import BATCH, HIDDEN, NOTES_CHARS, STEPS, chars_per_epoch, notes_text, run_notes
from rnnlab.config import TrainConfig
from rnnlab.data import Corpus, consecutive_batch_count
from rnnlab.model import LanguageModel
from rnnlab.rundir import RunDir
from rnnlab.train import Trainer, read_metrics

OURS = {"torch": ("torch", "fp32"), "scratch": ("scratch", "fp32")}
OURS |= {f"{name}-bf16": (impl, "bf16") for name, (impl, _) in OURS.items()}
COLUMNS = ["contender", "chars/s", "ours / notes", "epochs", "train loss", "val loss"]
COLUMNS += ["train loss <= notes' (last epoch / every epoch)", "bf16 - fp32 loss", "note"]
# rnnlab's corpus: 11,111 characters split 0.9 / 0.1, so train is exactly the notes' 10,000.
SPLIT = (0.9, 0.1, 0.0)
TEXT_CHARS = round(NOTES_CHARS / SPLIT[0])


def train_ours(text: str, impl: str, precision: str, epochs: int) -> dict:
    """One seeded rnnlab run through ``Trainer.fit`` in a temporary run directory.

    Returns:
        ``chars_per_s``, and per epoch ``train_losses`` (the epoch's mean) and ``val_losses``.
    """
    corpus = Corpus.from_text(text, split=SPLIT)
    batches = consecutive_batch_count(len(corpus.train), BATCH, STEPS)  # validate once per epoch
    values = dict(
        batch_size=BATCH, num_steps=STEPS, hidden_size=HIDDEN, cell="lstm", impl=impl,
        precision=precision, epochs=epochs, max_time=None, eval_every=batches, patience=10**6,
        baseline=False, sample_length=0, device="cpu", seed=0, ngram="off", schedule="plateau",
    )  # fmt: skip
    cfg = TrainConfig.from_flat(values)
    torch.manual_seed(cfg.run.seed)
    model = LanguageModel.from_config(cfg.model, len(corpus.vocab))
    with tempfile.TemporaryDirectory(prefix="rnnlab-bench-") as tmp:
        run = RunDir.create(Path(tmp) / "run", cfg, corpus.fingerprint(), "rnnlab bench")
        summary = Trainer(cfg, corpus, model, run, torch.device("cpu"), log=_quiet, progress=False).fit()
        records = read_metrics(run.metrics_path)
    return {
        "chars_per_s": summary["train_chars_per_s"],
        "train_losses": [r["loss"] for r in records if r["event"] == "train"],
        "val_losses": [r["loss"] for r in records if r["event"] == "val"],
        "vocab": len(corpus.vocab),
    }


def run(cfg: BenchConfig) -> dict:
    """Interleaved rounds of the notes and each rnnlab contender; medians, same-round ratios, curves.

    bf16 contenders train fewer epochs (1 with --quick, else 2): without bf16 instructions they are
    an order of magnitude slower. Their loss is compared with fp32's after the same characters.
    """
    epochs, bf16_epochs, rounds = cfg.pick(2, 6), cfg.pick(1, 2), cfg.rounds_or(1, 3)
    text = notes_text(cfg.corpus, TEXT_CHARS)
    contenders = {"notes": partial(run_notes, cfg.notes_script, cfg.corpus, epochs)}
    for name, (impl, precision) in OURS.items():
        n = bf16_epochs if precision == "bf16" else epochs
        contenders[name] = partial(train_ours, text, impl, precision, n)
    samples = interleave(contenders, rounds)
    speed = summarize(samples, "chars_per_s", anchor="notes")
    curves = {name: rows[0] for name, rows in samples.items() if "error" not in rows[0]}
    rows = [_row(name, speed[name], curves) for name in speed]
    per_epoch = chars_per_epoch()
    curve_rows = [
        [k * per_epoch, *[_at(curves.get(name, {}).get("train_losses", []), k) for name in speed]]
        for k in range(1, epochs + 1)
    ]
    setup = dict(
        corpus=str(cfg.corpus), chars=NOTES_CHARS, newlines="as spaces", cell="lstm", hidden_size=HIDDEN,
        batch_size=BATCH, num_steps=STEPS, epochs=epochs, bf16_epochs=bf16_epochs, rounds=rounds,
        chars_per_epoch=per_epoch, vocab={name: c["vocab"] for name, c in curves.items()},
    )  # fmt: skip
    return {
        "config": setup,
        "anchor": curves["notes"]["label"],
        "method": "rnnlab: Trainer.fit, seconds in training steps (validation excluded); notes: "
        "its epoch loop (train_chars_per_s)",
        "speed": speed,
        "curves": curves,
        "tables": [
            table(
                "Training at the notes' config (chars/s: median of rounds; ratio: median of same-round "
                "ours / notes; losses in nats after the contender's last epoch)",
                COLUMNS,
                rows,
            ),
            table("Train loss (nats, epoch mean) per characters seen", ["chars seen", *speed], curve_rows),
        ],
    }


def _row(name: str, speed: dict, curves: dict[str, dict]) -> list:
    """One contender's table row; its losses compared with the notes' and, for bf16, with fp32's."""
    curve = curves.get(name)
    if curve is None:
        return [name, None, None, None, None, None, None, None, speed.get("error", "")]
    losses = curve["train_losses"]
    notes = curves["notes"]["train_losses"]
    no_worse = None
    if name != "notes":
        pairs = list(zip(losses, notes))
        no_worse = f"{_yes(pairs[-1][0] <= pairs[-1][1])} / {_yes(all(a <= b for a, b in pairs))}"
    fp32 = curves.get(name.removesuffix("-bf16"), {}).get("train_losses", [])
    gap = losses[-1] - fp32[len(losses) - 1] if name.endswith("-bf16") and fp32 else None
    val = curve.get("val_losses") or [None]
    return [name, speed["chars_per_s"], speed["ratio"], len(losses), losses[-1], val[-1], no_worse, gap, ""]


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _at(losses: list[float], epoch: int) -> float | None:
    return losses[epoch - 1] if epoch <= len(losses) else None


def _quiet(line: str) -> None:
    """The Trainer's progress lines are not the benchmark's output."""
