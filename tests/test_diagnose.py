"""`rnnlab baseline` and `rnnlab diagnose` on a tiny run; remedies name real flags."""

import json
import re

import pytest

from rnnlab.cli import build_parser, main
from rnnlab.diagnose.fit import REMEDIES

TEXT = "分开 不分开 我不能再想 我不要再想 我不 我不 我不能\n爱情来的太快就像龙卷风\n" * 40


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("diag")
    (root / "c.txt").write_text(TEXT, encoding="utf-8")
    flags = [
        "train",
        str(root / "c.txt"),
        "--out",
        str(root / "run"),
        "--hidden-size",
        "32",
        "--batch-size",
        "4",
        "--num-steps",
        "16",
        "--max-steps",
        "60",
        "--eval-every",
        "10",
        "--max-time",
        "none",
        "--quiet",
        "--preset",
        "default",
        "--monitor-every",
        "10",
    ]
    assert main(flags) == 0
    return root


def test_baseline_json(run, capsys):
    assert main(["baseline", str(run / "c.txt"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"val_ppl", "test_ppl", "order"} <= set(result)
    assert result["val_ppl"] == min(o["val_ppl"] for o in result["orders"])
    assert 1 <= result["order"] <= 7


def test_every_run_scores_the_baseline_and_diagnose_reads_it(run, capsys):
    records = [json.loads(line) for line in (run / "run" / "metrics.jsonl").read_text().splitlines()]
    baseline = next(r for r in records if r["event"] == "baseline")
    assert main(["baseline", str(run / "c.txt"), "--json"]) == 0
    standalone = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert baseline["val_ppl"] == pytest.approx(standalone["val_ppl"], rel=1e-5)  # same split, same vocab
    assert main(["diagnose", str(run / "run"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["fit"]["verdict"] in ("under-fitting", "over-fitting", "good fit", "still improving")
    assert result["fit"]["evidence"]["baseline_val_loss"] == pytest.approx(baseline["val_loss"])
    for name in ("learning_curves.png", "dldh_heatmap.png"):
        png = run / "run" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert result["gradients"]["kind"] in ("vanishing", "exploding", "healthy")


def test_gradient_readings_are_logged(run):
    records = [json.loads(line) for line in (run / "run" / "metrics.jsonl").read_text().splitlines()]
    grads = [r for r in records if r["event"] == "grad"]
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
