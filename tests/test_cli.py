"""A fast smoke test per subcommand on a tiny corpus, and the CLI's error contract (one line, exit 2)."""

import json
import subprocess
import sys

import pytest
from conftest import last_json, tiny_run_argv

from rnnlab.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory, corpus_file):
    root = tmp_path_factory.mktemp("cli")
    assert main(tiny_run_argv(corpus_file, root / "run", hidden_size=32, prefix="分开", json=True)) == 0
    return root


def test_train_summary_and_run_directory(trained, capsys):
    run = trained / "run"
    for name in ("config.json", "vocab.json", "model.safetensors", "checkpoint.json", "metrics.jsonl"):
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert config["command"].startswith("rnnlab train") and config["config"]["model"]["hidden_size"] == 32


def test_train_json_keys(tmp_path, corpus_file, capsys):
    argv = tiny_run_argv(corpus_file, tmp_path / "r", batch_size=2, num_steps=8, max_steps=3, json=True)
    assert main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(out[-1])
    for key in (
        "run_dir",
        "steps",
        "chars_seen",
        "train_chars_per_s",
        "wall_s",
        "best_val_loss",
        "best_val_ppl",
        "best_val_bpc",
        "test_loss",
        "test_ppl",
        "test_bpc",
    ):
        assert key in summary, key
    assert summary["steps"] == 3 and summary["chars_seen"] == 3 * 2 * 8
    assert len(out) >= 2  # a generated sample before the summary


def test_generate_is_repeatable_and_streams_the_prefix(trained, capsys):
    run = str(trained / "run")
    assert main(["generate", run, "--prefix", "分开", "--length", "50", "--seed", "1"]) == 0
    first = capsys.readouterr().out
    assert main(["generate", run, "--prefix", "分开", "--length", "50", "--seed", "1"]) == 0
    assert capsys.readouterr().out == first
    assert first.startswith("分开") and len(first.rstrip("\n")) == 52
    assert main(["generate", run, "--num-samples", "3", "--length", "5", "--seed", "0", "--top-k", "3"]) == 0
    assert capsys.readouterr().out.count("--- sample") == 3


def test_evaluate(trained, capsys):
    run = str(trained / "run")
    assert main(["evaluate", run, "--json"]) == 0
    result = last_json(capsys.readouterr().out)
    assert result["data"] == "test split" and result["chars"] > 0 and result["ppl"] > 1
    other, text = trained / "other.txt", "我不能再想 жщэюя ✓"  # Cyrillic and the tick: not in the corpus
    other.write_text(text, encoding="utf-8")
    assert main(["evaluate", run, "--data", str(other), "--json"]) == 0
    result = last_json(capsys.readouterr().out)
    assert result["oov_rate"] > 0.3 and result["chars"] == len(text) - 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "missing.txt"], "does not exist"),
        (["train", "--lr", "-1"], "--lr must be > 0"),
        (["train", "--hidden-size", "0"], "--hidden-size must be >= 1"),
        (["train", "--bidirectional"], "bidirectional"),
        (["generate", "nowhere"], "run directory nowhere does not exist"),
        (["generate", "{run}", "--prefix", "жщэ"], "not in the training vocabulary"),
        (["generate", "{run}", "--top-k", "100000"], "larger than the vocabulary"),
        (["generate", "{run}", "--temperature", "-1"], "--temperature"),
        (["train", "--out", "{run}"], "already exists"),
        (["train", "--config", "{run}/config.json"], "not valid TOML"),
    ],
)
def test_errors_are_one_line_exit_2(trained, capsys, argv, message):
    argv = [a.replace("{run}", str(trained / "run")) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_toml_config_and_flags_win(tmp_path, corpus_file, capsys):
    cfg = tmp_path / "run.toml"
    cfg.write_text(
        'hidden-size = 12\nnum_layers = 1\nmax-steps = 2\nbatch-size = 2\nnum-steps = 8\ncell = "gru"\n'
    )
    argv = ["train", str(corpus_file), "--config", str(cfg), "--cell", "rnn", "--out", str(tmp_path / "r")]
    assert main([*argv, "--quiet", "--preset", "default", "--json"]) == 0
    saved = json.loads((tmp_path / "r" / "config.json").read_text())["config"]["model"]
    assert saved["hidden_size"] == 12 and saved["cell"] == "rnn"
    cfg.write_text("hidden-size = 'big'\n")
    assert main(["train", "--config", str(cfg)]) == 2
    assert "--hidden-size must be of type int" in capsys.readouterr().err
    cfg.write_text("hiden-size = 12\n")
    assert main(["train", "--config", str(cfg)]) == 2
    assert "unknown config keys: hiden_size" in capsys.readouterr().err


def test_python_dash_m_and_help():
    out = subprocess.run([sys.executable, "-m", "rnnlab", "train", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for group in ("data:", "model:", "optimisation:", "run:", "--hidden-size", "--resume"):
        assert group in out.stdout


def test_auto_preset_by_corpus_size_and_flags_win(tmp_path, corpus_file, capsys):
    auto = tiny_run_argv(corpus_file, tmp_path / "a", "--dropout", "0.1", "--no-adaptive-eval", preset="auto")
    assert main(auto) == 0
    saved = json.loads((tmp_path / "a" / "config.json").read_text())["config"]
    assert saved["run"]["preset"] == "small-corpus"  # auto: a few kB of text
    assert saved["model"]["weight_drop"] == 0.6 and saved["optim"]["optimizer"] == "adamw"  # from the preset
    assert saved["model"]["dropout"] == 0.1 and saved["run"]["adaptive_eval"] is False  # flags win
    assert main(tiny_run_argv(corpus_file, tmp_path / "b", preset="default")) == 0
    saved = json.loads((tmp_path / "b" / "config.json").read_text())["config"]
    assert saved["run"]["preset"] == "default" and saved["model"]["weight_drop"] == 0.0
