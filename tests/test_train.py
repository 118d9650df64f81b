"""The training loop: repeatable runs, exact resume, early stopping, a model that learns."""

import json
import math
from functools import partial

import numpy as np
import pytest
import torch
from conftest import last_json, metric_records, metrics_without_timing, tiny_run_argv

from rnnlab.cli import main
from rnnlab.train import Trainer, load_checkpoint
from rnnlab.train.evaluate import held_out
from rnnlab.train.loop import INTERRUPTED

# This file's runs: two layers, so the resume tests also cover dropout between layers and weight drop
# on both; 8 x 12 batches cross an epoch boundary at step 21 of 30 (see conftest.NUM_SENTENCES).
train_argv = partial(tiny_run_argv, hidden_size=24, num_layers=2, num_steps=12, max_steps=30, json=True)


def interrupt_at(monkeypatch, step):
    """Make the next run behave as if Ctrl-C arrived during the given step."""
    original = Trainer._train_step

    def step_then_interrupt(self, X, Y, starts):
        original(self, X, Y, starts)
        if self.state.step == step:
            self.stop_request = INTERRUPTED

    monkeypatch.setattr(Trainer, "_train_step", step_then_interrupt)


def test_same_seed_same_run_bit_for_bit(tmp_path, corpus_file, capsys):
    for name in ("a", "b"):
        assert main(train_argv(corpus_file, tmp_path / name, "--dropout", "0.2")) == 0
    assert metrics_without_timing(tmp_path / "a") == metrics_without_timing(tmp_path / "b")
    assert main(train_argv(corpus_file, tmp_path / "c", "--dropout", "0.2", "--seed", "1")) == 0
    assert metrics_without_timing(tmp_path / "a") != metrics_without_timing(tmp_path / "c")


@pytest.mark.parametrize(
    ("sampling", "stop_at"), [("consecutive", 13), ("random", 7), ("consecutive", 30), ("random", 25)]
)
def test_interrupted_and_resumed_run_equals_uninterrupted(
    tmp_path, corpus_file, monkeypatch, capsys, sampling, stop_at
):
    # Dropout consumes the global RNG and consecutive sampling carries the state: both must resume.
    # Batches of 8 x 12 end an epoch at step 21, so the cut falls before (7, 13) or after (25, 30) an
    # epoch boundary.
    flags = ["--sampling", sampling, "--dropout", "0.3", "--batch-size", "8", "--eval-every", "4"]
    assert main(train_argv(corpus_file, tmp_path / "whole", *flags)) == 0
    assert load_checkpoint(tmp_path / "whole")["loop"]["epoch"] == 1  # one epoch boundary crossed
    with monkeypatch.context() as m:
        interrupt_at(m, stop_at)
        assert main(train_argv(corpus_file, tmp_path / "cut", *flags)) == 130
    assert "--resume" in capsys.readouterr().out
    assert main(["train", "--resume", str(tmp_path / "cut"), "--quiet", "--json"]) == 0
    assert metrics_without_timing(tmp_path / "cut") == metrics_without_timing(tmp_path / "whole")
    summary = last_json(capsys.readouterr().out)
    assert summary["steps"] == 30 and summary["test_loss"] is not None


def test_resume_from_an_epoch_boundary_redraws_the_next_epoch_not_the_first(
    tmp_path, corpus_file, monkeypatch, capsys
):
    """A checkpoint taken by the end-of-epoch validation (batch 0 of the next epoch) must resume with
    the random sampler's generator where the finished epoch left it, not where the run began."""
    flags = ["--sampling", "random", "--batch-size", "64", "--eval-every", "1000", "--max-steps", "40"]
    assert main(train_argv(corpus_file, tmp_path / "whole", *flags)) == 0
    original = Trainer._validate

    def stop_after_the_first_epoch(self):
        original(self)
        if self.state.epoch == 1 and self.state.batch == 0:
            self.stop_request = INTERRUPTED

    with monkeypatch.context() as m:
        m.setattr(Trainer, "_validate", stop_after_the_first_epoch)
        assert main(train_argv(corpus_file, tmp_path / "cut", *flags)) == 130
    cut = load_checkpoint(tmp_path / "cut")["loop"]
    assert (cut["epoch"], cut["batch"]) == (1, 0) and 0 < cut["step"] < 40  # stopped on the boundary
    assert main(["train", "--resume", str(tmp_path / "cut"), "--quiet", "--json"]) == 0
    assert metrics_without_timing(tmp_path / "cut") == metrics_without_timing(tmp_path / "whole")


def test_resume_refuses_changed_settings_and_finished_runs(tmp_path, corpus_file, capsys):
    assert main(train_argv(corpus_file, tmp_path / "r")) == 0
    assert main(["train", "--resume", str(tmp_path / "r"), "--hidden-size", "8"]) == 2
    assert "cannot change --hidden-size" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "r")]) == 2
    assert "already stopped (max steps)" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "r"), "--max-steps", "35", "--quiet"]) == 0


def test_early_stopping_and_best_checkpoint(tmp_path, corpus_file, capsys):
    # A huge learning rate makes validation worse and worse: patience 2 stops the run early.
    assert (
        main(train_argv(corpus_file, tmp_path / "e", "--lr", "5", "--patience", "2", "--max-steps", "200"))
        == 0
    )
    summary = last_json(capsys.readouterr().out)
    assert summary["stop_reason"] == "early stopping" and summary["steps"] < 200
    vals = metric_records(tmp_path / "e", "val")
    assert summary["best_val_loss"] == pytest.approx(min(r["loss"] for r in vals), abs=1e-5)


def test_tiny_model_overfits_one_sentence(tmp_path, capsys):
    path = tmp_path / "one.txt"
    path.write_text("分开 不分开 我不能再想 我不要再想\n" * 40, encoding="utf-8")
    # The loss bound below needs this model and these steps.
    flags = tiny_run_argv(
        path, tmp_path / "o", hidden_size=64, embedding_dim=128, batch_size=8, num_steps=16, lr=0.01,
        max_steps=50, eval_every=25, split="0.8,0.2,0", json=True,
    )  # fmt: skip
    assert main(flags) == 0
    summary = last_json(capsys.readouterr().out)
    assert summary["best_val_loss"] < 0.3  # from ln(10) = 2.3 at the start


def test_disk_full_while_saving_keeps_training(tmp_path, corpus_file, monkeypatch, capsys):
    import rnnlab.io

    real_save_file, run = rnnlab.io.save_file, tmp_path / "full"

    def full_disk_after_the_first_checkpoint(tensors, path, metadata=None):
        if (run / "checkpoint.json").exists():
            raise OSError(28, "No space left on device")
        real_save_file(tensors, path, metadata=metadata)

    monkeypatch.setattr(rnnlab.io, "save_file", full_disk_after_the_first_checkpoint)
    assert main(train_argv(corpus_file, tmp_path / "full")) == 0
    assert "No space left on device" in capsys.readouterr().err
    events = [r["event"] for r in metric_records(tmp_path / "full")]
    assert "save_failed" in events and events[-1] == "end"
    monkeypatch.setattr(rnnlab.io, "save_file", real_save_file)
    load_checkpoint(tmp_path / "full")  # the last good checkpoint is intact


AWD = [
    "--weight-drop",
    "0.3",
    "--embedding-dropout",
    "0.1",
    "--input-dropout",
    "0.1",
    "--variational",
    "--dropout",
    "0.2",
    "--l1",
    "1e-6",
    "--l2",
    "1e-5",
    "--elastic-net",
    "1e-5,0.5",
    "--ar",
    "1",
    "--tar",
    "1",
]


def test_every_regulariser_trains_logs_its_term_and_resumes_exactly(
    tmp_path, corpus_file, monkeypatch, capsys
):
    assert main(train_argv(corpus_file, tmp_path / "whole", *AWD)) == 0
    train = metric_records(tmp_path / "whole", "train")
    for term in ("l1", "l2", "elastic_net", "ar", "tar"):
        assert all(r[f"penalty_{term}"] > 0 for r in train), term
    with monkeypatch.context() as m:
        interrupt_at(m, 17)
        assert main(train_argv(corpus_file, tmp_path / "cut", *AWD)) == 130
    assert main(["train", "--resume", str(tmp_path / "cut"), "--quiet"]) == 0
    assert metrics_without_timing(tmp_path / "cut") == metrics_without_timing(tmp_path / "whole")
    assert main(["generate", str(tmp_path / "cut"), "--length", "5", "--seed", "0"]) == 0


def test_injected_nan_loss_is_skipped(tmp_path, corpus_file, monkeypatch, capsys):
    import rnnlab.train.step as step

    calls = {"n": 0}
    real = step.cross_entropy

    def nan_on_the_seventh(logits, targets):
        calls["n"] += 1
        loss = real(logits, targets)
        return loss * float("nan") if calls["n"] == 7 else loss

    monkeypatch.setattr(step, "cross_entropy", nan_on_the_seventh)
    assert main(train_argv(corpus_file, tmp_path / "nan")) == 0
    summary = last_json(capsys.readouterr().out)
    assert summary["skipped_steps"] == 1 and summary["rollbacks"] == 0
    skips = metric_records(tmp_path / "nan", "skip")
    assert [r["step"] for r in skips] == [7] and "non-finite loss" in skips[0]["reason"]


def test_poisoned_weights_roll_back_and_are_never_saved(tmp_path, corpus_file, monkeypatch, capsys):
    from safetensors.torch import load_file

    original = Trainer._train_step

    def poison_at_13(self, X, Y, starts):
        if self.state.step == 13:
            with torch.no_grad():
                self.model.decoder.weight[0, 0] = float("nan")
        original(self, X, Y, starts)

    monkeypatch.setattr(Trainer, "_train_step", poison_at_13)
    assert main(train_argv(corpus_file, tmp_path / "p")) == 0
    summary = last_json(capsys.readouterr().out)
    assert summary["rollbacks"] == 1 and summary["skipped_steps"] == 3
    events = [r["event"] for r in metric_records(tmp_path / "p")]
    assert "save_skipped" in events and "rollback" in events  # the NaN model met a validation, unsaved
    train = metric_records(tmp_path / "p", "train")
    assert train[-1]["lr"] < train[0]["lr"]  # the rollback lowered the learning rate
    for f in (tmp_path / "p").glob("*.safetensors"):
        assert all(torch.isfinite(t).all() for t in load_file(f).values()), f.name


def test_adaptive_evaluation_at_the_end(tmp_path, corpus_file, capsys):
    assert main(train_argv(corpus_file, tmp_path / "a", "--adaptive-eval")) == 0
    summary = last_json(capsys.readouterr().out)
    event = metric_records(tmp_path / "a", "adaptive")[0]
    assert set(event["val"]) == {"model", "+dynamic", "+cache", "+ngram", "all"}
    assert event["val"]["all"] <= min(event["val"].values()) + 1e-9  # the grid includes every part alone
    assert summary["adaptive_val_ppl"] <= summary["best_val_ppl"] * 1.01


def test_lr_factor_one_keeps_the_learning_rate_constant(tmp_path, corpus_file, capsys):
    flags = ["--schedule", "plateau", "--lr-factor", "1", "--lr", "5", "--patience", "20"]
    assert main(train_argv(corpus_file, tmp_path / "c", *flags)) == 0
    lrs = {r["lr"] for r in metric_records(tmp_path / "c", "train")}
    assert lrs == {5.0}


def test_deadline_schedule_warms_up_then_reaches_zero_with_the_budget(tmp_path, corpus_file, capsys):
    flags = ["--lr", "0.01", "--warmup", "0.2", "--eval-every", "2", "--max-steps", "20"]
    assert main(train_argv(corpus_file, tmp_path / "d", *flags)) == 0
    # The lr a validation logs is the one the step before it used: step s ran at progress (s - 1) / 20.
    lrs = {r["step"]: r["lr"] for r in metric_records(tmp_path / "d", "train")}
    expected = {s: 0.01 * ((s - 1) / 20 / 0.2 if s - 1 < 4 else (1 - (s - 1) / 20) / 0.8) for s in lrs}
    assert lrs == pytest.approx(expected, abs=1e-6)
    assert (
        json.loads((tmp_path / "d" / "config.json").read_text())["config"]["optim"]["schedule"] == "deadline"
    )


def test_a_larger_budget_on_resume_replans_the_schedule(tmp_path, corpus_file, capsys):
    """The schedule is a function of the budget's share spent: resuming with twice the steps puts the
    run at half way, where a run planned with 20 steps from the start would be."""
    flags = ["--lr", "0.01", "--warmup", "0", "--eval-every", "5"]
    assert main(train_argv(corpus_file, tmp_path / "r", *flags, "--max-steps", "10")) == 0
    assert main(["train", "--resume", str(tmp_path / "r"), "--max-steps", "20", "--quiet"]) == 0
    lrs = {r["step"]: r["lr"] for r in metric_records(tmp_path / "r", "train")}
    assert lrs[10] == pytest.approx(0.01 * 1 / 10, abs=1e-6)  # step 10 ran at 9/10 of the first budget
    assert lrs[15] == pytest.approx(0.01 * (1 - 14 / 20), abs=1e-6)  # ... step 15 at 14/20 of the new one


@pytest.mark.parametrize("impl", ["torch", "scratch"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_bf16_trains_on_any_cpu(tmp_path, corpus_file, capsys, impl, cell):
    """Without AVX-512 bf16, oneDNN has no bf16 LSTM/GRU primitive: torch.nn must still run (oneDNN
    off inside the autocast) rather than crash with a RuntimeError."""
    flags = train_argv(corpus_file, tmp_path / "r", "--precision", "bf16", "--impl", impl, "--cell", cell)
    assert main(flags) == 0
    losses = [r["loss"] for r in metric_records(tmp_path / "r", "val")]
    assert losses and all(math.isfinite(x) for x in losses)


@pytest.mark.parametrize(
    ("max_tokens", "vocab_size", "scored"),
    [
        (0, 0, 999_999),
        (250_000, 0, 250_000),
        (250_000, 100, 250_000),
        (250_000, 3_200, 20_000),
        (0, 1_000, 32_000),
    ],
)
def test_held_out_bounds_scoring_by_tokens_and_by_vocabulary(max_tokens, vocab_size, scored):
    ids = np.arange(1_000_000)
    assert len(held_out(ids, max_tokens, vocab_size)) - 1 == scored  # one more id than scored tokens
