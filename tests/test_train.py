"""The training loop: repeatable runs, exact resume, early stopping, a model that learns."""

import json
import math

import pytest
import torch

from rnnlab.cli import main
from rnnlab.train import Trainer, load_checkpoint, read_metrics
from rnnlab.train.loop import INTERRUPTED

TIMING = {"chars_per_s", "train_time", "seconds"}
SENTENCES = [
    "the quick brown fox jumps over the lazy dog. ",
    "分开 不分开 我不能再想 我不要再想 ",
    "a stitch in time saves nine; ",
    "rnnlab trains recurrent models. ",
]


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    g = torch.Generator().manual_seed(0)
    picks = torch.randint(len(SENTENCES), (400,), generator=g).tolist()
    path = tmp_path_factory.mktemp("data") / "corpus.txt"
    path.write_text("".join(SENTENCES[i] for i in picks), encoding="utf-8")
    return path


def tiny_flags(corpus_file, out, *extra):
    return [
        "train",
        str(corpus_file),
        "--out",
        str(out),
        "--hidden-size",
        "24",
        "--num-layers",
        "2",
        "--embedding-dim",
        "8",
        "--batch-size",
        "4",
        "--num-steps",
        "12",
        "--eval-every",
        "5",
        "--max-steps",
        "30",
        "--max-time",
        "none",
        "--sample-length",
        "10",
        "--quiet",
        "--preset",
        "default",
        "--json",
        *extra,
    ]


def values(run_dir):
    """Every metric the run logged, minus wall-clock readings."""
    return [{k: v for k, v in r.items() if k not in TIMING} for r in read_metrics(run_dir / "metrics.jsonl")]


def interrupt_at(monkeypatch, step):
    """Make the next run behave as if Ctrl-C arrived during the given step."""
    original = Trainer._train_step

    def step_then_interrupt(self, X, Y):
        original(self, X, Y)
        if self.state.step == step:
            self.stop_request = INTERRUPTED

    monkeypatch.setattr(Trainer, "_train_step", step_then_interrupt)


def test_same_seed_same_run_bit_for_bit(tmp_path, corpus_file, capsys):
    for name in ("a", "b"):
        assert main(tiny_flags(corpus_file, tmp_path / name, "--dropout", "0.2")) == 0
    assert values(tmp_path / "a") == values(tmp_path / "b")
    assert main(tiny_flags(corpus_file, tmp_path / "c", "--dropout", "0.2", "--seed", "1")) == 0
    assert values(tmp_path / "a") != values(tmp_path / "c")


@pytest.mark.parametrize(
    ("sampling", "stop_at"), [("consecutive", 13), ("random", 7), ("consecutive", 30), ("random", 25)]
)
def test_interrupted_and_resumed_run_equals_uninterrupted(
    tmp_path, corpus_file, monkeypatch, capsys, sampling, stop_at
):
    # Dropout consumes the global RNG and consecutive sampling carries the state: both must resume.
    # 120 train chars per epoch row... the tiny corpus has several epochs in 30 steps, so epoch
    # boundaries are crossed too.
    flags = ["--sampling", sampling, "--dropout", "0.3", "--batch-size", "8", "--eval-every", "4"]
    assert main(tiny_flags(corpus_file, tmp_path / "whole", *flags)) == 0
    with monkeypatch.context() as m:
        interrupt_at(m, stop_at)
        assert main(tiny_flags(corpus_file, tmp_path / "cut", *flags)) == 130
    assert "--resume" in capsys.readouterr().out
    assert main(["train", "--resume", str(tmp_path / "cut"), "--quiet", "--json"]) == 0
    assert values(tmp_path / "cut") == values(tmp_path / "whole")
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 30 and summary["test_loss"] is not None


def test_resume_from_an_epoch_boundary_redraws_the_next_epoch_not_the_first(
    tmp_path, corpus_file, monkeypatch, capsys
):
    """A checkpoint taken by the end-of-epoch validation (batch 0 of the next epoch) must resume with
    the random sampler's generator where the finished epoch left it, not where the run began."""
    flags = ["--sampling", "random", "--batch-size", "64", "--eval-every", "1000", "--max-steps", "40"]
    assert main(tiny_flags(corpus_file, tmp_path / "whole", *flags)) == 0
    original = Trainer._validate

    def stop_after_the_first_epoch(self):
        original(self)
        if self.state.epoch == 1 and self.state.batch == 0:
            self.stop_request = INTERRUPTED

    with monkeypatch.context() as m:
        m.setattr(Trainer, "_validate", stop_after_the_first_epoch)
        assert main(tiny_flags(corpus_file, tmp_path / "cut", *flags)) == 130
    cut = load_checkpoint(tmp_path / "cut")["loop"]
    assert (cut["epoch"], cut["batch"]) == (1, 0) and 0 < cut["step"] < 40  # stopped on the boundary
    assert main(["train", "--resume", str(tmp_path / "cut"), "--quiet", "--json"]) == 0
    assert values(tmp_path / "cut") == values(tmp_path / "whole")


def test_resume_refuses_changed_settings_and_finished_runs(tmp_path, corpus_file, capsys):
    assert main(tiny_flags(corpus_file, tmp_path / "r")) == 0
    assert main(["train", "--resume", str(tmp_path / "r"), "--hidden-size", "8"]) == 2
    assert "cannot change --hidden-size" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "r")]) == 2
    assert "already stopped (max steps)" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "r"), "--max-steps", "35", "--quiet"]) == 0


def test_early_stopping_and_best_checkpoint(tmp_path, corpus_file, capsys):
    # A huge learning rate makes validation worse and worse: patience 2 stops the run early.
    assert (
        main(tiny_flags(corpus_file, tmp_path / "e", "--lr", "5", "--patience", "2", "--max-steps", "200"))
        == 0
    )
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["stop_reason"] == "early stopping" and summary["steps"] < 200
    vals = [r for r in read_metrics(tmp_path / "e" / "metrics.jsonl") if r["event"] == "val"]
    assert summary["best_val_loss"] == pytest.approx(min(r["loss"] for r in vals), abs=1e-5)


def test_tiny_model_overfits_one_sentence(tmp_path, capsys):
    path = tmp_path / "one.txt"
    path.write_text("分开 不分开 我不能再想 我不要再想\n" * 40, encoding="utf-8")
    flags = [
        "train",
        str(path),
        "--out",
        str(tmp_path / "o"),
        "--hidden-size",
        "64",
        "--num-layers",
        "1",
        "--batch-size",
        "8",
        "--num-steps",
        "16",
        "--lr",
        "0.01",
        "--max-steps",
        "50",
        "--eval-every",
        "25",
        "--max-time",
        "none",
        "--split",
        "0.8,0.2,0",
        "--quiet",
        "--preset",
        "default",
        "--json",
    ]
    assert main(flags) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["best_val_loss"] < 0.3  # from ln(10) = 2.3 at the start


def test_disk_full_while_saving_keeps_training(tmp_path, corpus_file, monkeypatch, capsys):
    import rnnlab.io

    real_save_file, calls = rnnlab.io.save_file, {"n": 0}

    def full_disk_after_two(tensors, path, metadata=None):
        calls["n"] += 1
        if calls["n"] > 2:
            raise OSError(28, "No space left on device")
        real_save_file(tensors, path, metadata=metadata)

    monkeypatch.setattr(rnnlab.io, "save_file", full_disk_after_two)
    assert main(tiny_flags(corpus_file, tmp_path / "full")) == 0
    assert "No space left on device" in capsys.readouterr().err
    events = [r["event"] for r in read_metrics(tmp_path / "full" / "metrics.jsonl")]
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
    assert main(tiny_flags(corpus_file, tmp_path / "whole", *AWD)) == 0
    train = [r for r in read_metrics(tmp_path / "whole" / "metrics.jsonl") if r["event"] == "train"]
    for term in ("l1", "l2", "elastic_net", "ar", "tar"):
        assert all(r[f"penalty_{term}"] > 0 for r in train), term
    with monkeypatch.context() as m:
        interrupt_at(m, 17)
        assert main(tiny_flags(corpus_file, tmp_path / "cut", *AWD)) == 130
    assert main(["train", "--resume", str(tmp_path / "cut"), "--quiet"]) == 0
    assert values(tmp_path / "cut") == values(tmp_path / "whole")
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
    assert main(tiny_flags(corpus_file, tmp_path / "nan")) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["skipped_steps"] == 1 and summary["rollbacks"] == 0
    skips = [r for r in read_metrics(tmp_path / "nan" / "metrics.jsonl") if r["event"] == "skip"]
    assert [r["step"] for r in skips] == [7] and "non-finite loss" in skips[0]["reason"]


def test_poisoned_weights_roll_back_and_are_never_saved(tmp_path, corpus_file, monkeypatch, capsys):
    from safetensors.torch import load_file

    original = Trainer._train_step

    def poison_at_13(self, X, Y):
        if self.state.step == 13:
            with torch.no_grad():
                self.model.decoder.weight[0, 0] = float("nan")
        original(self, X, Y)

    monkeypatch.setattr(Trainer, "_train_step", poison_at_13)
    assert main(tiny_flags(corpus_file, tmp_path / "p")) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["rollbacks"] == 1 and summary["skipped_steps"] == 3
    events = [r["event"] for r in read_metrics(tmp_path / "p" / "metrics.jsonl")]
    assert "save_skipped" in events and "rollback" in events  # the NaN model met a validation, unsaved
    train = [r for r in read_metrics(tmp_path / "p" / "metrics.jsonl") if r["event"] == "train"]
    assert train[-1]["lr"] < train[0]["lr"]  # the rollback lowered the learning rate
    for f in (tmp_path / "p").glob("*.safetensors"):
        assert all(torch.isfinite(t).all() for t in load_file(f).values()), f.name


def test_adaptive_evaluation_at_the_end(tmp_path, corpus_file, capsys):
    assert main(tiny_flags(corpus_file, tmp_path / "a", "--adaptive-eval")) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    event = next(r for r in read_metrics(tmp_path / "a" / "metrics.jsonl") if r["event"] == "adaptive")
    assert set(event["val"]) == {"model", "+dynamic", "+cache", "+ngram", "all"}
    assert event["val"]["all"] <= min(event["val"].values()) + 1e-9  # the grid includes every part alone
    assert summary["adaptive_val_ppl"] <= summary["best_val_ppl"] * 1.01


def test_lr_factor_one_keeps_the_learning_rate_constant(tmp_path, corpus_file, capsys):
    flags = tiny_flags(corpus_file, tmp_path / "c", "--lr-factor", "1", "--lr", "5", "--patience", "20")
    assert main(flags) == 0
    lrs = {r["lr"] for r in read_metrics(tmp_path / "c" / "metrics.jsonl") if r["event"] == "train"}
    assert lrs == {5.0}


@pytest.mark.parametrize("impl", ["torch", "scratch"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_bf16_trains_on_any_cpu(tmp_path, corpus_file, capsys, impl, cell):
    """Without AVX-512 bf16, oneDNN has no bf16 LSTM/GRU primitive: torch.nn must still run (oneDNN
    off inside the autocast) rather than crash with a RuntimeError."""
    flags = tiny_flags(corpus_file, tmp_path / "r", "--precision", "bf16", "--impl", impl, "--cell", cell)
    assert main(flags) == 0
    losses = [r["loss"] for r in read_metrics(tmp_path / "r" / "metrics.jsonl") if r["event"] == "val"]
    assert losses and all(math.isfinite(x) for x in losses)
