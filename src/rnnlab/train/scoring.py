"""What a run scores besides its training steps: checks before it starts, the n-gram baseline, the test
split once at the end, and the adaptive evaluation."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import torch

from rnnlab.config import FOLD_TOKENS, MAX_NGRAM_ORDER, TrainConfig, cross_fitted, ngram_tokens
from rnnlab.data import Corpus, consecutive_batches, random_batches
from rnnlab.errors import RnnlabError
from rnnlab.losses import loss_readings
from rnnlab.nn.ngram import NGramFit, fit_ngram
from rnnlab.rundir import load_model_weights
from rnnlab.train.evaluate import evaluate_parts, held_out
from rnnlab.train.reporting import Reporter


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


def corpus_info(corpus: Corpus, model: torch.nn.Module, batches_per_epoch: int, fold_passes: int = 0) -> dict:
    """What the run trains on, for the "start" record (``fold_passes``: ``--ngram-fold-passes``)."""
    return {
        "source": corpus.source,
        "vocab_size": len(corpus.vocab),
        "unit": corpus.vocab.kind,  # what "chars" and the per-token losses count: chars or words
        "chars": {"train": len(corpus.train), "val": len(corpus.val), "test": len(corpus.test)},
        "oov_rate": corpus.oov_rate,
        "batches_per_epoch": batches_per_epoch,
        "params": sum(p.numel() for p in model.parameters()),
        "residual": getattr(model, "ngram", None) is not None,  # a network over the n-gram
        "ngram_training": ngram_training(model, fold_passes),
    }


def fit_run_ngram(cfg: TrainConfig, corpus: Corpus) -> NGramFit:
    """The run's n-gram: its first ``--ngram-tokens`` training tokens counted (0: by the budget,
    :func:`rnnlab.config.ngram_tokens`), the order chosen on the validation tokens the run is scored on
    (``--ngram-order`` 0), test scored for the record."""
    return fit_ngram(
        corpus.train,
        held_out(corpus.val, cfg.run.eval_tokens, len(corpus.vocab)),
        len(corpus.vocab),
        test=held_out(corpus.test, cfg.run.eval_tokens, len(corpus.vocab)) if len(corpus.test) else None,
        max_order=MAX_NGRAM_ORDER,
        max_tokens=ngram_tokens(cfg.model, cfg.run.max_time),
        order=cfg.model.ngram_order,
    )


def cross_fit(model: torch.nn.Module, cfg: TrainConfig, corpus: Corpus, epoch: int = 0) -> torch.nn.Module:
    """Give a residual model whose n-gram counted the whole training split ``--ngram-folds`` cross-fitted
    n-grams for its training batches (:class:`rnnlab.nn.ngram.FoldKneserNey`), when ``--ngram-folds``
    is not 0 and the split has at most :data:`FOLD_TOKENS` tokens; it keeps leave-one-out otherwise.

    Only the first ``--ngram-fold-passes`` passes are cross-fitted (0: all; the loop passes batch starts
    in those only), so a run resumed at a later ``epoch`` counts nothing. Counting is deterministic: a
    run resumed in such a pass rebuilds the same folds from the same text. Returns ``model``.
    """
    folds = cfg.model.ngram_folds
    if (
        cross_fitted(cfg.model, epoch)
        and getattr(model, "leave_one_out", False)
        and len(corpus.train) <= FOLD_TOKENS
    ):
        model.cross_fit(corpus.train, folds, workers=torch.get_num_threads())
    return model


def ngram_training(model: torch.nn.Module, fold_passes: int = 0) -> str | None:
    """How training positions see a residual model's n-gram: ``"K folds, every pass"`` (cross-fitted;
    or ``"first pass"``, ``"first N passes"``: ``fold_passes``, then leave-one-out), ``"leave-one-out"``
    or ``"all counts"``; None for a plain model."""
    if getattr(model, "ngram", None) is None:
        return None
    if model.folds is not None:
        when = {0: "every pass", 1: "first pass"}.get(fold_passes, f"first {fold_passes} passes")
        return f"{model.folds.folds} folds, {when}"
    return "leave-one-out" if model.leave_one_out else "all counts"


def score_baseline(fit: NGramFit, report: Reporter) -> float:
    """Record the n-gram baseline (Kneser-Ney, order chosen on val); returns its validation loss."""
    best = fit.selection.best
    counted = fit.counts.num_counted
    report.write(
        "baseline",
        order=fit.selection.order,
        val_loss=best.val_loss,
        val_ppl=best.val_ppl,
        test_loss=best.test_loss,
        test_ppl=best.test_ppl,
        counted_tokens=counted,
        seconds=fit.seconds,
    )
    some = "" if fit.counted_all else f", counted on the first {counted:,} training tokens"
    report.say(
        f"n-gram baseline (Kneser-Ney, order {fit.selection.order} chosen on val{some}): "
        f"val ppl {best.val_ppl:.2f}"
    )
    return best.val_loss


def score_best(
    model: torch.nn.Module,
    corpus: Corpus,
    model_path: Path,
    report: Reporter,
    eval_tokens: int,
    val_parts: dict | None = None,
) -> dict:
    """Load the best weights into ``model`` and score the test split once ("test" record). A residual
    model is also scored in parts on val and test ("parts": the network's logits alone, the n-gram alone,
    both), so nobody mistakes counting for learning; ``val_parts``: the best model's on val, when the
    validation that kept it has them. Returns ``{"test": loss or None, "parts": ...}``."""
    if not model_path.exists():
        return {"test": None, "parts": None}
    info = load_model_weights(model_path, model)
    splits = {
        name: held_out(getattr(corpus, name), eval_tokens, len(corpus.vocab)) for name in ("val", "test")
    }
    residual = getattr(model, "ngram", None) is not None
    if not residual or val_parts is not None:
        del splits["val"]  # the validations scored it already
    scored = {name: evaluate_parts(model, ids) for name, ids in splits.items() if len(ids) >= 2}
    if residual and val_parts is not None:
        scored = {"val": val_parts, **scored}
    scores = {"test": None, "parts": None}
    if "test" in scored:
        test = scored["test"]
        readings = loss_readings(test["loss"], corpus.vocab.kind)
        report.write("test", step=info.get("step"), chars=test["count"], **readings)
        scores["test"] = test["loss"]
    if residual:
        scores["parts"] = scored
        report.write("parts", step=info.get("step"), **scored)
    return scores


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
