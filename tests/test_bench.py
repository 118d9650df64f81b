"""`rnnlab bench` on tiny sizes: every part runs and returns its documented keys; the report writes.

Also the fast paths the benchmark measures: LeanStep generation gives the reference path's ids, and
the inverse-CDF draw follows the distribution. No timing is asserted anywhere.
"""

import itertools
import json
import math

import pytest
import torch
from conftest import last_json

import rnnlab.bench.cells as cells
import rnnlab.bench.encoding as encoding
import rnnlab.bench.flops as flops
import rnnlab.bench.generation as generation
import rnnlab.bench.mincells as mincells
import rnnlab.bench.notes as notes
import rnnlab.bench.quality as quality
import rnnlab.bench.training as training
import rnnlab.generate.lean as generate_step
from rnnlab.bench import BenchConfig, markdown, run_bench, write_report
from rnnlab.bench.measure import interleave, summarize
from rnnlab.cli import main
from rnnlab.generate import SamplingConfig, draw, sample_ids
from rnnlab.model import LanguageModel


@pytest.fixture
def tiny(tmp_path, corpus_file, monkeypatch):
    """Every part shrunk to toy sizes, the notes' script absent (its in-bench twin stands in)."""
    for module in (notes, training, generation):
        monkeypatch.setattr(module, "HIDDEN", 8)
    for module in (notes, training):
        monkeypatch.setattr(module, "BATCH", 4)
        monkeypatch.setattr(module, "STEPS", 8)
    monkeypatch.setattr(training, "TEXT_CHARS", 600)
    monkeypatch.setattr(cells, "QUICK_SIZES", [(8, 2, 3)])
    monkeypatch.setattr(mincells, "QUICK_SIZES", [(8, 2, 3)])
    for name, value in dict(HIDDEN=8, BATCH=2, STEPS=5, GEMM_N=32, VOCAB=20, EMBEDDING=4).items():
        monkeypatch.setattr(flops, name, value)
    monkeypatch.setattr(encoding, "SIZE_BYTES", 50_000)
    monkeypatch.setattr(quality, "QUICK_BUDGETS", (2,))
    monkeypatch.setattr(quality, "QUICK_BIG_BYTES", 300_000)
    small = [
        "--hidden-size",
        "8",
        "--embedding-dim",
        "4",
        "--batch-size",
        "4",
        "--num-steps",
        "8",
        "--max-steps",
        "3",
    ]
    monkeypatch.setattr(quality, "EXTRA_FLAGS", [*small, "--eval-every", "2", "--preset", "default"])
    monkeypatch.setattr(encoding, "encode_in_child", lambda path, mode: encoding._child(path, mode))
    return BenchConfig(quick=True, corpus=corpus_file, notes_script=tmp_path / "absent.py", rounds=1)


def test_interleave_rotates_and_drops_failures():
    calls = []

    def contender(name, fail=False):
        def run():
            calls.append(name)
            if fail:
                raise RuntimeError("no bf16 here\nmore")
            return {"x": len(calls)}

        return run

    samples = interleave({"a": contender("a"), "b": contender("b"), "c": contender("c", fail=True)}, 3)
    assert calls == ["a", "b", "c", "b", "a", "a", "b"]  # rotating start; c dropped after round 1
    assert samples["c"] == [{"error": "RuntimeError: no bf16 here"}]
    summary = summarize({"a": [{"x": 2.0}, {"x": 4.0}], "b": [{"x": 4.0}, {"x": 2.0}]}, "x", anchor="a")
    assert summary["b"]["ratio"] == pytest.approx(1.25)  # median of same-round ratios 2 and 0.5
    assert summary["a"]["ratio"] == 1 and summary["b"]["x"] == 3.0


def test_flop_count_by_hand():
    # 1 layer, B=T=1: 3 * (2 * 4H * (E + H) + 2 * H * V)
    assert flops.lstm_lm_flops(vocab=5, embedding=2, hidden=3, layers=1, batch=1, steps=1) == 3 * (120 + 30)
    two = flops.lstm_lm_flops(vocab=5, embedding=2, hidden=3, layers=2, batch=2, steps=3)
    assert two == 3 * 6 * (2 * 12 * 5 + 2 * 12 * 6 + 2 * 3 * 5)


@pytest.mark.parametrize(
    ("part", "keys"),
    [
        ("training", {"config", "anchor", "speed", "curves", "tables"}),
        ("cells", {"anchor", "rows", "tables"}),
        ("flops", {"anchor", "model", "flops_per_step", "summary", "tables"}),
        ("generation", {"anchor", "model", "target", "summary", "tables"}),
        ("encoding", {"anchor", "file", "target", "samples", "tables"}),
        ("quality", {"anchor", "target", "tables", "runs"}),
    ],
)
def test_each_part_runs_on_tiny_sizes(tiny, part, keys):
    result = run_bench(tiny, [part])
    out = result["parts"][part]
    assert keys <= set(out) and out["seconds"] >= 0
    assert {"platform", "cpu", "cpu_flags", "torch", "threads"} <= set(result["machine"])
    assert out["tables"]
    for tab in out["tables"]:
        assert all(len(row) == len(tab["columns"]) for row in tab["rows"]) and tab["rows"]
    if part == "training":
        assert "in-bench twin" in out["anchor"]
        assert set(out["speed"]) == {"notes", "torch", "scratch", "torch-bf16", "scratch-bf16"}
        assert len(out["curves"]["torch"]["train_losses"]) == 2  # --quick: two epochs
    if part == "encoding":
        assert out["samples"]["stream"][0]["chars"] == out["samples"]["whole"][0]["chars"] > 0


def test_report_and_cli(tiny, tmp_path, capsys):
    stem = tmp_path / "out" / "speed"
    argv = ["bench", "--quick", "--parts", "cells", "--rounds", "1", "--out", str(stem), "--json"]
    argv += ["--corpus", str(tiny.corpus), "--notes", str(tiny.notes_script)]
    assert main(argv) == 0
    printed = last_json(capsys.readouterr().out)
    saved = json.loads((tmp_path / "out" / "speed.json").read_text(encoding="utf-8"))
    assert printed == saved and saved["command"].startswith("rnnlab bench --quick")
    page = (tmp_path / "out" / "speed.md").read_text(encoding="utf-8")
    assert "## 2. From-scratch vs torch.nn layers" in page and "| mode | precision |" in page
    assert "--quick" in page
    json_path, md_path = write_report(saved, tmp_path / "again")
    assert md_path.read_text(encoding="utf-8") == markdown(saved) and json_path.exists()


# --- the fast paths the benchmark measures --------------------------------------------------------


CELLS = list(itertools.product(["lstm", "gru", "rnn"], ["torch", "scratch"], ["embedding", "onehot"]))


def generated(model, prefix, cfg, batch, fast):
    start = torch.ones(40).index_fill_(0, torch.tensor([0, 7]), 0) / 38  # never starts on a banned id
    g = torch.Generator().manual_seed(1)
    steps = sample_ids(model, prefix, 40, cfg, num_samples=batch, generator=g, start_probs=start,
                       banned=[0, 7], fast=fast)  # fmt: skip
    return torch.stack(list(steps))


@pytest.mark.parametrize(("cell", "impl", "encoder"), CELLS)
def test_lean_generation_gives_the_reference_ids(cell, impl, encoder):
    torch.manual_seed(0)
    weight_drop = 0.2 if cell == "lstm" else 0.0  # WeightDrop is the identity in eval: still lean
    model = LanguageModel(40, cell=cell, impl=impl, encoder=encoder, hidden_size=24, embedding_dim=12,
                          num_layers=2, weight_drop=weight_drop).eval()  # fmt: skip
    state = model(torch.tensor([[1, 2]])).state
    assert generate_step.LeanStep.of(model, state, torch.zeros(40), rows=100) is not None  # it applies
    for cfg, batch, prefix in itertools.product(
        [SamplingConfig(greedy=True), SamplingConfig(temperature=1.2, top_k=10, top_p=0.95)],
        [1, 5],
        [torch.tensor([3, 4, 5]), torch.tensor([], dtype=torch.long)],
    ):
        fast = generated(model, prefix, cfg, batch, fast=True)
        assert torch.equal(fast, generated(model, prefix, cfg, batch, fast=False))
        assert not bool(((fast == 0) | (fast == 7)).any())


def test_lean_step_table_and_row_by_row_agree(monkeypatch):
    torch.manual_seed(0)
    model = LanguageModel(30, hidden_size=16, embedding_dim=8).eval()
    state = model(torch.tensor([[1, 2]])).state
    ids = torch.tensor([3, 4])
    with_table = generate_step.LeanStep.of(model, state, torch.zeros(30), rows=100)
    monkeypatch.setattr(generate_step, "TABLE_MAX", 0)
    row_by_row = generate_step.LeanStep.of(model, state, torch.zeros(30), rows=100)
    assert with_table.table is not None and row_by_row.table is None
    torch.testing.assert_close(with_table(ids[:1]), row_by_row(ids[:1]))


def test_draw_follows_the_distribution_and_never_draws_zeros():
    probs = torch.tensor([[0.0, 0.1, 0.2, 0.0, 0.7]]).expand(20_000, -1)
    ids = draw(probs, torch.Generator().manual_seed(0))
    freq = torch.bincount(ids, minlength=5).double() / len(ids)
    torch.testing.assert_close(freq, probs[0].double(), atol=0.015, rtol=0)
    assert freq[0] == 0 and freq[3] == 0


@pytest.mark.parametrize(
    ("name", "budget", "ngram", "val", "val_goal", "met"),
    [
        ("built-in", 60, 1.2, 1.10, 0.95 * 1.2, True),
        ("built-in", 600, 1.2, 1.10, 0.90 * 1.2, False),
        # At 600 s tiny Shakespeare has two goals: 0.90x the n-gram's and 1.40; the lower binds.
        ("tiny Shakespeare (90/10)", 600, 1.2, 1.39, 0.90 * 1.2, False),
        ("tiny Shakespeare (90/10)", 600, 1.6, 1.30, 1.40, True),
    ],
)
def test_a_quality_row_gives_the_val_loss_that_meets_its_goals_and_the_distance_to_it(
    name, budget, ngram, val, val_goal, met
):
    summary = {"best_val_loss": val, "baseline_val_ppl": math.exp(ngram), "steps": 10}
    row = dict(
        zip(
            quality.COLUMNS,
            quality._row(name, "rnnlab", budget, {"summary": summary, "wall_s": 1.0, "peak_rss_mb": 1.0}),
        )
    )
    assert row["val goal"] == pytest.approx(val_goal)
    assert row["to goal"] == pytest.approx(val - val_goal)
    assert row["met"] is met
