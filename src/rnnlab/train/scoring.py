"""What a run scores besides its training steps: checks before it starts, the n-gram baseline, the test
split once at the end, and the adaptive evaluation."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import torch

from rnnlab.config import TrainConfig
from rnnlab.data import Corpus, consecutive_batches, random_batches
from rnnlab.errors import RnnlabError
from rnnlab.losses import loss_readings
from rnnlab.nn.ngram import select_order
from rnnlab.rundir import load_model_weights
from rnnlab.train.evaluate import evaluate_loss
from rnnlab.train.reporting import Reporter

BASELINE_MAX_CHARS = 20_000_000  # beyond this the n-gram counts cost more than they tell


def check_trainable(cfg: TrainConfig, corpus: Corpus) -> None:
    """Refuse, before anything is written, a corpus that cannot give a batch or a validation score."""
    if len(corpus.val) < 2:
        raise RnnlabError(
            f"the validation split has {len(corpus.val)} characters; give --split a VAL fraction "
            "that leaves it some text (or use a larger corpus)"
        )
    d = cfg.data
    if d.sampling == "random":
        next(random_batches(corpus.train, d.batch_size, d.num_steps, generator=torch.Generator()), None)
    else:
        next(consecutive_batches(corpus.train, d.batch_size, d.num_steps), None)


def corpus_info(corpus: Corpus, model: torch.nn.Module, batches_per_epoch: int) -> dict:
    """What the run trains on, for the "start" record."""
    return {
        "source": corpus.source,
        "vocab_size": len(corpus.vocab),
        "unit": corpus.vocab.kind,  # what "chars" and the per-token losses count: chars or words
        "chars": {"train": len(corpus.train), "val": len(corpus.val), "test": len(corpus.test)},
        "oov_rate": corpus.oov_rate,
        "batches_per_epoch": batches_per_epoch,
        "params": sum(p.numel() for p in model.parameters()),
    }


def score_baseline(corpus: Corpus, report: Reporter) -> float | None:
    """Score the Kneser-Ney n-gram on the same split and vocabulary; returns its validation loss."""
    if len(corpus.train) > BASELINE_MAX_CHARS:
        report.say(f"n-gram baseline skipped: over {BASELINE_MAX_CHARS:,} training characters")
        return None
    start = time.perf_counter()
    sel = select_order(corpus.train, corpus.val, len(corpus.vocab), test=corpus.test)
    best = sel.best
    report.write(
        "baseline",
        order=sel.order,
        val_loss=best.val_loss,
        val_ppl=best.val_ppl,
        test_loss=best.test_loss,
        test_ppl=best.test_ppl,
        seconds=time.perf_counter() - start,
    )
    report.say(f"n-gram baseline (Kneser-Ney, order {sel.order} chosen on val): val ppl {best.val_ppl:.2f}")
    return best.val_loss


def score_test(model: torch.nn.Module, corpus: Corpus, model_path: Path, report: Reporter) -> float | None:
    """Load the best weights into ``model`` and score the test split once; returns its loss."""
    if len(corpus.test) < 2 or not model_path.exists():
        return None
    info = load_model_weights(model_path, model)
    loss, count = evaluate_loss(model, corpus.test)
    report.write("test", step=info.get("step"), chars=count, **loss_readings(loss, corpus.vocab.kind))
    return loss


def score_adaptive(model: torch.nn.Module, corpus: Corpus, report: Reporter) -> dict[str, float] | None:
    """Adaptive evaluation of the best model (cache, dynamic evaluation, n-gram mixing; tuned on val,
    then applied unchanged to test). Returns the val/test loss of all of them together."""
    from rnnlab.train.adaptive import tune_adaptive

    if len(corpus.val) < 2:
        return None
    start = time.perf_counter()
    splits = {"train": corpus.train, "val": corpus.val, "test": corpus.test}
    result = tune_adaptive(model, splits, len(corpus.vocab))
    report.write(
        "adaptive",
        config=dataclasses.asdict(result.config),
        ngram_order=result.ngram_order,
        val=result.val,
        test=result.test,
        seconds=time.perf_counter() - start,
    )
    for name, loss in result.val.items():
        test = f", test ppl {math.exp(result.test[name]):.2f}" if name in result.test else ""
        report.say(f"adaptive evaluation {name:>9}: val ppl {math.exp(loss):.2f}{test}")
    return {"val": result.val["all"], "test": result.test.get("all")}
