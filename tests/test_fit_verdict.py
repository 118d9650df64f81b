"""fit_verdict on synthetic loss curves: one per verdict, the notes' over-fitting recipe, a tuned run."""

import math

import numpy as np
import pytest

from rnnlab.diagnose.fit import (
    EARLY_STOPPING,
    GOOD_FIT,
    MORE_CAPACITY,
    OVER_FITTING,
    STILL_IMPROVING,
    TRAIN_LONGER,
    UNDER_FITTING,
    fit_verdict,
    render_text,
)
from rnnlab.errors import RnnlabError
from rnnlab.train.metrics import MetricsLog, read_metrics

EVERY = 100


def _records(train, val, vocab_size: int = 65, oov_val: float = 0.0) -> list[dict]:
    """metrics.jsonl records as the loop writes them: a start, then train + val at each evaluation."""
    records = [{"event": "start", "vocab_size": vocab_size, "oov_rate": {"train": 0.0, "val": oov_val}}]
    for i, (t, v) in enumerate(zip(train, val, strict=True), start=1):
        records.append({"event": "train", "step": i * EVERY, "loss": t, "ppl": math.exp(t)})
        records.append({"event": "val", "step": i * EVERY, "loss": v, "ppl": math.exp(v)})
        records.append({"event": "sample", "step": i * EVERY, "prefix": "", "text": "..."})
    return [*records, {"event": "end", "step": len(val) * EVERY, "reason": "time limit"}]


def test_the_notes_recipe_shape_is_over_fitting_from_the_val_minimum():
    # The notes' over-fitting: train error keeps falling far below a validation error that bottomed out
    # early (evaluation 3) and then climbs a lot.
    train = np.linspace(3.0, 0.3, 12)
    val = [3.1, 2.6, 2.4, 2.5, 2.7, 2.9, 3.1, 3.3, 3.5, 3.7, 3.9, 4.1]
    verdict = fit_verdict(_records(train, val), baseline=2.8)
    assert verdict.verdict == OVER_FITTING
    assert verdict.since_step == 3 * EVERY
    e = verdict.evidence
    assert e.best_val_loss == 2.4 and e.best_val_step == 300 and e.final_val_loss == 4.1
    assert e.gap == pytest.approx(4.1 - 0.3) and e.gap_trend > 0
    assert e.beats_baseline is True
    assert verdict.remedies[0] is EARLY_STOPPING
    flags = " ".join(r.flags for r in verdict.remedies)
    for flag in ("--dropout 0.3", "--weight-decay 0.1 --optimizer adamw", "--l2", "--weight-drop"):
        assert flag in flags


def test_a_tuned_curve_that_flattens_with_a_small_gap_is_a_good_fit():
    train = [2.5, 1.9, 1.6, 1.45, 1.40, 1.38, 1.37, 1.365, 1.362, 1.361]
    val = [2.4, 1.9, 1.65, 1.52, 1.48, 1.47, 1.468, 1.467, 1.468, 1.467]  # tiny wiggles at the end
    verdict = fit_verdict(_records(train, val), baseline=1.7)
    assert verdict.verdict == GOOD_FIT
    assert verdict.since_step is None
    assert verdict.evidence.beats_baseline


def test_a_curve_still_falling_at_the_end_is_still_improving():
    train = [3.0, 2.5, 2.2, 2.0, 1.85]
    val = [3.0, 2.55, 2.25, 2.05, 1.9]
    verdict = fit_verdict(_records(train, val), baseline=2.3)
    assert verdict.verdict == STILL_IMPROVING
    assert verdict.remedies[0] is TRAIN_LONGER
    assert verdict.evidence.val_trend < 0


def test_not_beating_the_ngram_baseline_even_on_train_is_under_fitting():
    train = [3.4, 3.2, 3.15, 3.14, 3.14, 3.14]
    val = [3.4, 3.25, 3.2, 3.2, 3.2, 3.2]  # flat over the last three evaluations
    verdict = fit_verdict(_records(train, val), baseline=3.0)
    assert verdict.verdict == UNDER_FITTING
    assert verdict.evidence.beats_baseline is False
    assert verdict.remedies[0] is MORE_CAPACITY  # flat: capacity first
    flags = " ".join(r.flags for r in verdict.remedies)
    assert "--hidden-size" in flags and "--embedding-dim" in flags and "--dropout 0" in flags


def test_a_network_over_the_ngram_is_judged_by_its_val_loss_not_its_left_out_train_loss():
    # Its train loss scores every position with that position left out of the counts: above the
    # n-gram's val loss as often as not, while the model beats the n-gram on validation.
    train = [1.40, 1.36, 1.35, 1.35, 1.35, 1.35]
    val = [1.30, 1.26, 1.25, 1.25, 1.25, 1.25]
    records = _records(train, val)
    assert fit_verdict(records, baseline=1.30).verdict == UNDER_FITTING  # a plain network would be
    records[0]["residual"] = True
    assert fit_verdict(records, baseline=1.30).verdict == GOOD_FIT
    assert fit_verdict(records, baseline=1.20).verdict == UNDER_FITTING  # not beating it on val


def test_a_model_scored_before_its_first_step_can_over_fit_from_step_0():
    # A network over the n-gram is scored at step 0 (no train loss yet); here it only got worse after.
    records = _records([2.0, 1.6, 1.2, 1.0], [5.2, 5.5, 5.9, 6.3])
    records.remove(next(r for r in records if r["event"] == "train"))  # step 0 has no train record
    for r in records:
        if r.get("step"):
            r["step"] -= EVERY  # the first evaluation at step 0
    records[0]["residual"] = True
    verdict = fit_verdict(records, baseline=5.16)
    assert verdict.verdict == OVER_FITTING and verdict.since_step == 0


def test_under_fitting_while_still_falling_puts_longer_training_first():
    verdict = fit_verdict(_records([4.0, 3.6, 3.3, 3.1], [4.0, 3.6, 3.35, 3.15]), baseline=2.8)
    assert verdict.verdict == UNDER_FITTING
    assert verdict.remedies[0] is TRAIN_LONGER


def test_without_a_baseline_a_loss_near_uniform_is_under_fitting():
    flat = [math.log(65) * 0.97] * 5
    assert fit_verdict(_records(flat, flat, vocab_size=65)).verdict == UNDER_FITTING
    low = [1.5] * 5
    assert fit_verdict(_records(low, low, vocab_size=65)).verdict == GOOD_FIT


def test_a_widening_gap_with_a_stalled_val_is_over_fitting():
    train = [2.0, 1.7, 1.5, 1.35, 1.2, 1.05, 0.95, 0.85]
    val = [2.0, 1.75, 1.62, 1.60, 1.605, 1.61, 1.60, 1.607]  # never 2% above its minimum
    verdict = fit_verdict(_records(train, val))
    assert verdict.verdict == OVER_FITTING
    assert verdict.since_step == 4 * EVERY


def test_one_noisy_evaluation_after_the_minimum_is_not_over_fitting():
    train = [2.5, 2.0, 1.8, 1.7, 1.65]
    val = [2.5, 2.05, 1.85, 1.75, 1.85]  # a 6% bump, but a single evaluation
    assert fit_verdict(_records(train, val)).verdict != OVER_FITTING


def test_val_rising_with_train_rising_is_instability_not_over_fitting():
    train = [2.0, 1.6, 1.5, 1.8, 2.2, 2.6]
    val = [2.0, 1.65, 1.55, 1.85, 2.25, 2.65]
    verdict = fit_verdict(_records(train, val))
    assert verdict.verdict != OVER_FITTING
    assert any("unstable" in note for note in verdict.evidence.notes)


def test_one_evaluation_and_a_high_oov_rate_are_reported():
    verdict = fit_verdict(_records([2.0], [2.1], oov_val=0.03), baseline=2.5)
    assert verdict.verdict == STILL_IMPROVING
    assert verdict.evidence.oov_rate == 0.03
    text = render_text(verdict)
    assert "one evaluation only" in text and "<unk>" in text and "3.00%" in text


def test_render_text_names_the_verdict_evidence_and_flags():
    train = np.linspace(3.0, 0.3, 12)
    val = [3.1, 2.6, 2.4, 2.5, 2.7, 2.9, 3.1, 3.3, 3.5, 3.7, 3.9, 4.1]
    text = render_text(fit_verdict(_records(train, val), baseline=2.8))
    assert text.startswith("verdict: over-fitting since step 300")
    assert "best 2.4000 at step 300" in text and "baseline val loss 2.8000: the model beats it" in text
    assert "1. early stopping" in text and "--dropout 0.3" in text


def test_reads_what_metrics_log_writes_including_non_finite_losses(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    log.write("start", vocab_size=30, oov_rate={"train": 0.0, "val": 0.0, "test": 0.0})
    for step, (t, v) in enumerate([(math.nan, 3.0), (2.5, 2.6), (2.2, 2.3), (2.0, 2.1)], start=1):
        log.write("train", step=step, loss=t)
        log.write("val", step=step, loss=v)
    log.write("val", step=5, loss=math.inf)  # a diverged evaluation: skipped
    log.close()
    verdict = fit_verdict(read_metrics(tmp_path / "metrics.jsonl"))
    assert verdict.evidence.evaluations == 4 and verdict.evidence.final_train_loss == 2.0
    assert verdict.verdict == STILL_IMPROVING


def test_no_validation_record_is_an_error():
    with pytest.raises(RnnlabError, match="no validation loss"):
        fit_verdict([{"event": "start"}, {"event": "train", "step": 1, "loss": 2.0}])
