"""`rnnlab baseline` and `rnnlab diagnose` on a tiny run; remedies name real flags."""

import re

import pytest
from conftest import last_json, metric_records, tiny_run_argv

from rnnlab.cli import build_parser, main
from rnnlab.diagnose.fit import REMEDIES


@pytest.fixture(scope="module")
def run(tmp_path_factory, corpus_file):
    run = tmp_path_factory.mktemp("diag") / "run"
    # Gradient readings every 10 of 60 steps, over windows of 16 steps: what the tests below count.
    argv = tiny_run_argv(corpus_file, run, num_steps=16, max_steps=60, eval_every=10, monitor_every=10)
    assert main(argv) == 0
    return run


def test_baseline_json(corpus_file, capsys):
    assert main(["baseline", str(corpus_file), "--json"]) == 0
    result = last_json(capsys.readouterr().out)
    assert {"val_ppl", "test_ppl", "order"} <= set(result)
    assert result["val_ppl"] == min(o["val_ppl"] for o in result["orders"])
    assert 1 <= result["order"] <= 7


def test_every_run_scores_the_baseline_and_diagnose_reads_it(run, corpus_file, capsys):
    (baseline,) = metric_records(run, "baseline")
    assert main(["baseline", str(corpus_file), "--json"]) == 0
    standalone = last_json(capsys.readouterr().out)
    assert baseline["val_ppl"] == pytest.approx(standalone["val_ppl"], rel=1e-5)  # same split, same vocab
    assert main(["diagnose", str(run), "--json"]) == 0
    result = last_json(capsys.readouterr().out)
    assert result["fit"]["verdict"] in ("under-fitting", "over-fitting", "good fit", "still improving")
    assert result["fit"]["evidence"]["baseline_val_loss"] == pytest.approx(baseline["val_loss"])
    for name in ("learning_curves.png", "dldh_heatmap.png"):
        png = run / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert result["gradients"]["kind"] in ("vanishing", "exploding", "healthy")


def test_gradient_readings_are_logged(run):
    grads = metric_records(run, "grad")
    assert [r["step"] for r in grads] == [10, 20, 30, 40, 50, 60]
    for r in grads:
        assert len(r["dldh"]) == 16 and r["norm_before"] > 0 and 0 <= r["clip_frac"] <= 1
        assert any(k.startswith("update_ratio/") for k in r) and any(k.startswith("grad_norm/rnn") for k in r)


def test_remedies_name_flags_that_exist():
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    known = {opt for action in train._actions for opt in action.option_strings}
    for remedies in REMEDIES.values():
        for remedy in remedies:
            for flag in re.findall(r"--[a-z0-9-]+", remedy.flags):
                assert flag in known, f"{remedy.action}: {flag} is not a flag of rnnlab train"
