"""A network learning the residual of a Kneser-Ney n-gram (--ngram residual): its invariants, and that
every command works with it."""

import json

import numpy as np
import pytest
import torch
from conftest import last_json, metric_records, metrics_without_timing, tiny_run_argv

from rnnlab.cli import main
from rnnlab.data import Corpus
from rnnlab.generate import sample_ids
from rnnlab.model import LanguageModel
from rnnlab.nn import KneserNeyLM, fit_ngram
from rnnlab.rundir import RunDir
from rnnlab.train.evaluate import evaluate_parts
from rnnlab.train.loop import INTERRUPTED, Trainer


@pytest.fixture(scope="module")
def corpus(corpus_file):
    return Corpus.from_files([corpus_file])


def _model(corpus, order: int = 4, **kwargs) -> tuple[LanguageModel, object]:
    fit = fit_ngram(corpus.train, corpus.val, len(corpus.vocab), max_order=order, order=order)
    torch.manual_seed(0)
    model = LanguageModel(len(corpus.vocab), hidden_size=16, embedding_dim=8, ngram=fit.dense(), **kwargs)
    return model, fit


@pytest.mark.parametrize("gate", ["one", "orders"])
@pytest.mark.parametrize("order", [1, 2, 4])
def test_an_untrained_residual_model_scores_exactly_its_ngram(corpus, order, gate):
    model, fit = _model(corpus, order, ngram_gate=gate)
    parts = evaluate_parts(model, corpus.val)
    assert parts["loss"] == pytest.approx(parts["ngram"], abs=1e-6)  # the decoder starts at zero
    lm = KneserNeyLM(fit.counts, order)  # the reference, one position at a time
    assert parts["ngram"] == pytest.approx(float(-lm.log_prob(corpus.val)[1:].mean()), abs=1e-5)
    uniform = np.log(len(corpus.vocab))
    assert parts["network"] == pytest.approx(uniform, abs=1e-5)  # zero logits: the network knows nothing


def test_held_out_rows_start_warm_so_every_token_keeps_its_context_in_the_stream(corpus):
    # Long enough for several rows: each row but the first reads the ids before it first, so the n-gram
    # part scores every token as the stream does, and the network's part does not depend on the cut.
    model, fit = _model(corpus, 4)
    ids = np.resize(np.concatenate([corpus.val, corpus.train]), 6000)
    parts = evaluate_parts(model, ids)
    n = parts["count"]
    assert n // 1024 >= 4  # several rows
    stream = -KneserNeyLM(fit.counts, 4).log_prob(ids)[1 : n + 1]
    assert parts["ngram"] == pytest.approx(float(stream.mean()), abs=1e-6)
    whole = evaluate_parts(model, ids, num_steps=n)  # one window per row: the same scores
    assert whole["loss"] == pytest.approx(parts["loss"], abs=1e-6)


def test_the_weight_on_the_ngram_is_read_from_the_state_and_scales_its_log_probabilities(corpus):
    model, _ = _model(corpus)
    with torch.no_grad():
        model.prior_gate.bias.fill_(0.5)  # trust the counts 1.5 times as much everywhere
    x = torch.from_numpy(corpus.train[:64].astype(np.int64)).view(2, 32)
    out = model(x)
    torch.testing.assert_close(out.logits, 1.5 * out.prior)  # the decoder is still zero
    torch.testing.assert_close(out.network, torch.zeros_like(out.logits))
    with torch.no_grad():
        model.decoder.bias.normal_()
    out = model(x)
    torch.testing.assert_close(out.logits, out.network + 1.5 * out.prior)


@pytest.mark.parametrize("residual", [True, False])
def test_reading_ids_without_scoring_them_leaves_the_state_that_scoring_leaves(corpus, residual):
    model, _ = _model(corpus)
    if not residual:
        model = LanguageModel(len(corpus.vocab), hidden_size=16, embedding_dim=8)
    model.eval()
    x = torch.from_numpy(corpus.train[:96].astype(np.int64)).view(2, 48)
    start = model(x[:, :10]).state
    for state in (None, start):
        read, scored = model.read(x[:, 10:], state), model(x[:, 10:], state).state
        assert len(read) == len(scored)
        for a, b in zip(read, scored):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_the_ngram_distributions_sum_to_one_and_the_state_carries_its_context(corpus):
    model, _ = _model(corpus)
    x = torch.from_numpy(corpus.train[:96].astype(np.int64)).view(2, 48)
    whole = model(x)
    torch.testing.assert_close(whole.prior.exp().sum(-1), torch.ones(2, 48), rtol=0, atol=1e-5)
    first = model(x[:, :20])
    second = model(x[:, 20:], first.state)  # the history (the last n - 2 ids) goes with the state
    torch.testing.assert_close(torch.cat([first.prior, second.prior], 1), whole.prior)
    torch.testing.assert_close(torch.cat([first.logits, second.logits], 1), whole.logits)


def test_leave_one_out_applies_in_training_with_targets_only(corpus):
    model, _ = _model(corpus, leave_one_out=True)
    x = torch.from_numpy(corpus.train[:129].astype(np.int64))
    x, y = x[:-1].view(2, 64), x[1:].view(2, 64)
    model.train()
    left_out = model(x, targets=y).prior
    assert not torch.allclose(left_out, model(x).prior)  # seen contexts lose their own event

    # ...which makes the n-gram less sure of the training text: its loss there rises
    def nll(prior):
        return torch.nn.functional.nll_loss(prior.reshape(128, -1), y.reshape(-1))

    assert nll(left_out) > nll(model(x).prior)
    model.eval()
    torch.testing.assert_close(model(x, targets=y).prior, model(x).prior)  # never on held-out text


def test_cross_fitted_training_batches_read_their_folds_counts_and_held_out_text_the_whole(corpus):
    model, fit = _model(corpus, leave_one_out=True)
    model.cross_fit(corpus.train, 4)
    starts = torch.tensor([0, len(corpus.train) // 2 - 30])  # the second row crosses a fold's edge
    index = starts[:, None] + torch.arange(65)
    xy = torch.from_numpy(corpus.train.astype(np.int64))[index]
    x, y = xy[:, :-1], xy[:, 1:]
    model.train()
    crossed = model(x, targets=y, starts=starts).prior
    torch.testing.assert_close(crossed, model.folds.log_probs(x, starts))
    assert not torch.allclose(crossed, model(x, targets=y).prior)  # without starts: leave-one-out
    model.eval()
    torch.testing.assert_close(model(x, targets=y, starts=starts).prior, fit.dense().log_probs(x))


def test_a_weight_per_order_mixes_every_orders_log_probabilities(corpus):
    model, fit = _model(corpus, ngram_gate="orders")
    with torch.no_grad():
        model.prior_gate.bias.copy_(torch.tensor([0.2, 0.0, -0.3, 0.5]))
    x = torch.from_numpy(corpus.train[:64].astype(np.int64)).view(2, 32)
    out = model(x)
    each = fit.dense().log_probs(x, by_order=True)  # (2, 32, 4, V)
    want = 0.2 * each[:, :, 0] - 0.3 * each[:, :, 2] + 1.5 * each[:, :, 3]
    torch.testing.assert_close(out.prior, each[:, :, 3])  # the n-gram alone is its top order
    torch.testing.assert_close(out.logits, out.network + want)
    torch.testing.assert_close(out.logits, want)  # the decoder is still zero


def test_one_weight_per_order_is_the_default_for_small_vocabularies_only():
    from rnnlab.config import ModelConfig, ngram_gate

    assert ngram_gate(ModelConfig(), 104) == "orders"
    assert ngram_gate(ModelConfig(), 2493) == "one"
    assert ngram_gate(ModelConfig(ngram_gate="one"), 104) == "one"


@pytest.mark.parametrize("gate", ["one", "orders"])
def test_generation_fast_path_draws_the_reference_ids(corpus, gate):
    model, _ = _model(corpus, ngram_gate=gate)
    with torch.no_grad():
        model.decoder.weight.normal_(0, 0.5)  # a residual that changes the n-gram's distribution...
        model.prior_gate.weight.normal_(0, 0.3)  # ...and how much of it to trust at each position
    prefix = torch.from_numpy(corpus.train[:10].astype(np.int64))
    for samples in (1, 3):
        runs = []
        for fast in (True, False):
            generator = torch.Generator().manual_seed(4)
            steps = sample_ids(model.eval(), prefix, 60, num_samples=samples, generator=generator, fast=fast)
            runs.append(torch.stack(list(steps)))
        torch.testing.assert_close(runs[0], runs[1])


def test_a_residual_run_trains_generates_evaluates_reports_and_refuses_export(tmp_path, corpus_file, capsys):
    run = tmp_path / "r"
    assert main(tiny_run_argv(corpus_file, run, max_steps=20, json=True)) == 0
    summary = last_json(capsys.readouterr().out)
    assert (run / "ngram.safetensors").is_file()
    assert summary["best_val_loss"] < summary["ngram_val_loss"] + 0.5  # it starts from the n-gram
    assert {"network_val_loss", "ngram_test_loss"} <= set(summary)
    parts = metric_records(run, "parts")[0]  # the best model's, in parts
    assert parts["val"]["loss"] == pytest.approx(summary["best_val_loss"], abs=1e-9)
    assert parts["step"] == summary["best_step"] and set(parts) >= {"val", "test"}
    first = metric_records(run, "val")[0]  # scored before the first step: the n-gram's loss
    assert first["step"] == 0 and summary["best_val_loss"] <= first["loss"]
    baseline = metric_records(run, "baseline")[0]
    assert baseline["counted_tokens"] == len(Corpus.from_files([corpus_file]).train)
    assert main(["evaluate", str(run), "--json"]) == 0
    evaluated = last_json(capsys.readouterr().out)
    assert evaluated["loss"] == pytest.approx(summary["test_loss"]) and "ngram_loss" in evaluated
    assert main(["generate", str(run), "--prefix", "the ", "--length", "40", "--seed", "3"]) == 0
    assert len(capsys.readouterr().out.strip()) >= 40
    assert main(["report", str(run)]) == 0
    assert "network alone" in (run / "report.html").read_text(encoding="utf-8")
    assert main(["export", str(run), "--onnx", str(tmp_path / "m.onnx")]) == 2
    assert "--ngram off" in capsys.readouterr().err and not (tmp_path / "m.onnx").exists()
    config = json.loads((run / "config.json").read_text())["config"]["model"]
    assert config["ngram"] == "residual"


# 21 batches per pass: cut in the cross-fitted first pass, and in the second (where none are counted)
@pytest.mark.parametrize("cut", [13, 25])
@pytest.mark.parametrize("sampling", ["consecutive", "random"])
def test_a_residual_run_resumes_exactly(tmp_path, corpus_file, monkeypatch, capsys, sampling, cut):
    argv = tiny_run_argv  # the interrupted and the whole run take the same flags
    flags = {"sampling": sampling, "batch_size": 8, "num_steps": 12, "max_steps": 30, "eval_every": 4}
    assert main(argv(corpus_file, tmp_path / "whole", **flags)) == 0
    original = Trainer._train_step

    def stop_at_cut(self, X, Y, starts):
        original(self, X, Y, starts)
        if self.state.step == cut:
            self.stop_request = INTERRUPTED

    with monkeypatch.context() as m:
        m.setattr(Trainer, "_train_step", stop_at_cut)
        assert main(argv(corpus_file, tmp_path / "cut", **flags)) == 130
    assert main(["train", "--resume", str(tmp_path / "cut"), "--quiet"]) == 0
    assert metrics_without_timing(tmp_path / "cut") == metrics_without_timing(tmp_path / "whole")


@pytest.mark.parametrize(
    ("flags", "seen"),
    [
        ({}, "5 folds, every pass"),
        ({"ngram_folds": 0}, "leave-one-out"),
        ({"ngram_folds": 3, "ngram_fold_passes": 1}, "3 folds, first pass"),
        ({"ngram_fold_passes": 2}, "5 folds, first 2 passes"),
    ],
)
def test_a_run_says_how_its_training_positions_see_the_ngram(tmp_path, corpus_file, capsys, flags, seen):
    assert main(tiny_run_argv(corpus_file, tmp_path / "r", max_steps=2, **flags)) == 0
    start = next(r for r in metric_records(tmp_path / "r") if r["event"] == "start")
    assert start["ngram_training"] == seen
    config = json.loads((tmp_path / "r" / "config.json").read_text())["config"]
    assert config["model"]["ngram_gate"] == "orders"  # auto, resolved for this small vocabulary
    assert config["model"]["ngram_tokens"] == 8_000_000  # 0, resolved: no time limit


def test_the_ngram_counts_a_share_of_a_short_budget_on_a_large_corpus(tmp_path, corpus_file, capsys):
    from rnnlab.config import ModelConfig, ngram_tokens

    assert ngram_tokens(ModelConfig(), None) == 8_000_000
    assert ngram_tokens(ModelConfig(), 60.0) == 6_000_000  # 100k tokens per second of the budget
    assert ngram_tokens(ModelConfig(), 600.0) == 8_000_000
    assert ngram_tokens(ModelConfig(), 2.0) == 1_000_000  # never below 1M
    assert ngram_tokens(ModelConfig(ngram_tokens=500), 60.0) == 500  # a flag wins
    argv = tiny_run_argv(corpus_file, tmp_path / "r", "--ngram-tokens", "1500", max_steps=2)
    assert main(argv) == 0
    assert "counted on the first 1,500 training tokens" in capsys.readouterr().err
    baseline = next(r for r in metric_records(tmp_path / "r") if r["event"] == "baseline")
    assert baseline["counted_tokens"] == 1500


def test_a_run_from_before_folds_and_order_weights_loads_as_it_was_trained(tmp_path, corpus_file, capsys):
    run = tmp_path / "old"
    flags = {"max_steps": 4, "ngram_folds": 0, "ngram_gate": "one"}  # how such runs trained
    assert main(tiny_run_argv(corpus_file, run, **flags)) == 0
    doc = json.loads((run / "config.json").read_text())
    for key in ("ngram_folds", "ngram_gate"):
        del doc["config"]["model"][key]  # what their config.json lacked
    (run / "config.json").write_text(json.dumps(doc))
    cfg = RunDir.open(run).load_config()
    assert (cfg.model.ngram_folds, cfg.model.ngram_gate) == (0, "one")
    model, _ = RunDir.open(run).load_model()  # one weight on the n-gram, as stored
    assert model.prior_gate.weight.shape[0] == 1
    assert main(["evaluate", str(run), "--json"]) == 0


@pytest.mark.parametrize(("passes", "fitted"), [(None, {0, 1, 2}), (1, {0}), (2, {0, 1})])
def test_the_first_fold_passes_are_cross_fitted(tmp_path, corpus_file, monkeypatch, capsys, passes, fitted):
    seen = []  # per training forward: (epoch, whether the batch's starts reached the model)
    original_step, original_forward = Trainer._train_step, LanguageModel.forward

    def step(self, X, Y, starts):
        seen.append([self.state.epoch])
        original_step(self, X, Y, starts)

    def forward(self, ids, state=None, targets=None, starts=None):
        if self.training:
            seen[-1].append(starts is not None)
        return original_forward(self, ids, state, targets, starts)

    monkeypatch.setattr(Trainer, "_train_step", step)
    monkeypatch.setattr(LanguageModel, "forward", forward)
    flags = {"batch_size": 16, "num_steps": 32, "max_steps": None, "epochs": 3, "ngram_fold_passes": passes}
    assert main(tiny_run_argv(corpus_file, tmp_path / "r", **flags)) == 0
    assert {e for e, _ in seen} == {0, 1, 2}
    assert all(placed == (epoch in fitted) for epoch, placed in seen)  # by default, every pass


def test_the_long_preset_and_runs_from_before_the_option_cross_fit_the_first_pass_only(tmp_path, corpus_file):
    from rnnlab.presets import resolve_preset

    assert resolve_preset("long", 10**6)[1]["ngram_fold_passes"] == 1
    run = tmp_path / "old"
    assert main(tiny_run_argv(corpus_file, run, max_steps=2)) == 0
    doc = json.loads((run / "config.json").read_text())
    assert doc["config"]["model"]["ngram_fold_passes"] == 0
    del doc["config"]["model"]["ngram_fold_passes"]  # what config.json held before the option
    (run / "config.json").write_text(json.dumps(doc))
    assert RunDir.open(run).load_config().model.ngram_fold_passes == 1


def test_one_fold_is_refused(tmp_path, corpus_file, capsys):
    assert main(tiny_run_argv(corpus_file, tmp_path / "r", ngram_folds=1)) == 2
    assert "--ngram-folds must be 0 (leave-one-out) or at least 2" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_word_runs_build_on_a_word_ngram(tmp_path, corpus_file, capsys):
    assert main(tiny_run_argv(corpus_file, tmp_path / "w", tokens="word", max_steps=10, json=True)) == 0
    summary = last_json(capsys.readouterr().out)
    assert summary["unit"] == "word" and summary["ngram_val_loss"] is not None
    model, _ = RunDir(tmp_path / "w").load_model()
    assert model.ngram is not None and model.ngram.vocab_size == model.vocab_size


def test_ngram_off_is_the_network_alone(tmp_path, corpus_file, capsys):
    assert main(tiny_run_argv(corpus_file, tmp_path / "n", ngram="off", max_steps=10, json=True)) == 0
    summary = last_json(capsys.readouterr().out)
    assert "network_val_loss" not in summary and not (tmp_path / "n" / "ngram.safetensors").exists()
    assert metric_records(tmp_path / "n", "baseline")  # still judged against the n-gram
