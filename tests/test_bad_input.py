"""Every bad input gets one clear line, exit code 2, no traceback, and nothing on disk lost.

One row per case of docs/errors.md; each row builds its input, runs the CLI in-process and checks the
message names the problem. The run directories it uses are compared byte for byte before and after.
"""

import hashlib
import json
import pickle
import shutil
from pathlib import Path

import pytest
from conftest import tiny_run_argv

from rnnlab.cli import main


@pytest.fixture(scope="module")
def world(tmp_path_factory, corpus_file):
    """A corpus, a finished run, and a gallery of broken files."""
    root = tmp_path_factory.mktemp("bad")
    shutil.copy(corpus_file, root / "good.txt")
    assert main(tiny_run_argv(root / "good.txt", root / "run", max_steps=4, ngram="off")) == 0
    assert main(tiny_run_argv(root / "good.txt", root / "residual", max_steps=4)) == 0  # --ngram residual
    (root / "empty.txt").write_bytes(b"")
    (root / "blank.txt").write_bytes(b" \n\t \r\n")
    (root / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    (root / "binary.bin").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)))
    (root / "short.txt").write_text("分开不分开" * 60, encoding="utf-8")
    (root / "unknown.toml").write_text("hiden-size = 12\n")
    (root / "wrongtype.toml").write_text("hidden-size = 'big'\n")
    (root / "table.toml").write_text("[model]\nhidden-size = 12\n")
    (root / "notrun").mkdir()
    return root


def copy_run(world, name, edit):
    """A copy of the finished run with one file broken by ``edit(run_dir)``."""
    dst = world / name
    if not dst.exists():
        shutil.copytree(world / "run", dst)
        edit(dst)
    return dst


def truncate_tensors(run: Path) -> None:
    f = next(run.glob("checkpoint-*.safetensors"))
    f.write_bytes(f.read_bytes()[:100])


def edit_checkpoint_json(run: Path) -> None:
    doc = json.loads((run / "checkpoint.json").read_text())
    doc["state"]["loop"]["step"] = 999
    (run / "checkpoint.json").write_text(json.dumps(doc))


def future_version(run: Path) -> None:
    doc = json.loads((run / "checkpoint.json").read_text())
    doc["version"] = 99
    (run / "checkpoint.json").write_text(json.dumps(doc))


def pickled_model(run: Path) -> None:
    (run / "model.safetensors").write_bytes(pickle.dumps({"weights": [1, 2, 3]}))


def edited_vocab(run: Path) -> None:
    (run / "vocab.json").write_text(
        '{"format": "rnnlab-vocab", "version": 1, "specials": [], "tokens": ["a", "a"]}'
    )


def edited_config(run: Path) -> None:
    doc = json.loads((run / "config.json").read_text())
    doc["config"]["model"]["hidden_size"] = 99
    (run / "config.json").write_text(json.dumps(doc))


def torn_config(run: Path) -> None:
    (run / "config.json").write_text('{"command": "rnnlab tr')


def no_metrics(run: Path) -> None:
    (run / "metrics.jsonl").unlink()


CASES = {
    # corpus files
    "missing file": (["train", "{root}/nope.txt"], "does not exist"),
    "directory as file": (["train", "{root}/notrun"], "is a directory"),
    "empty corpus": (["train", "{root}/empty.txt"], "is empty"),
    "whitespace-only corpus": (["train", "{root}/blank.txt"], "holds only whitespace"),
    "non-UTF-8 bytes": (["train", "{root}/latin1.txt"], "not valid utf-8 (byte 0xe9 at offset 3)"),
    "binary file": (["train", "{root}/binary.bin"], "looks binary"),
    "unknown encoding": (["train", "{root}/good.txt", "--encoding", "klingon"], "unknown --encoding"),
    "bad --errors": (["train", "{root}/good.txt", "--errors", "maybe"], "--errors must be one of"),
    "corpus too short for a batch": (["train", "{root}/short.txt"], "needs at least"),
    "empty validation split": (
        tiny_run_argv("{root}/good.txt", None, split="1,0,0"),
        "validation split has 0",
    ),
    "split not summing to 1": (["train", "{root}/good.txt", "--split", "0.9,0.2,0.1"], "sum to 1"),
    # numeric flags and names
    "negative lr": (["train", "--lr", "-1"], "--lr must be > 0"),
    "zero batch size": (["train", "--batch-size", "0"], "--batch-size must be >= 1"),
    "NaN dropout": (["train", "--dropout", "nan"], "must be finite"),
    "dropout above 1": (["train", "--dropout", "1.5"], "--dropout must be >= 0 and <= 1"),
    "negative max time": (["train", "--max-time", "-5"], "--max-time must be > 0"),
    "not a number": (["train", "--hidden-size", "many"], "not a number"),
    "unknown cell": (["train", "--cell", "transformer"], "invalid choice: 'transformer'"),
    "unknown tokens": (["train", "--tokens", "bpe"], "invalid choice: 'bpe'"),
    "bidirectional": (["train", "--bidirectional"], "reads the very character it must predict"),
    "no GPU": (["train", "--device", "cuda"], "no CUDA GPU"),
    "unknown device": (["train", "--device", "tpu"], "--device"),
    # config files
    "TOML unknown key": (["train", "--config", "{root}/unknown.toml"], "unknown config keys: hiden_size"),
    "TOML wrong type": (["train", "--config", "{root}/wrongtype.toml"], "--hidden-size must be of type int"),
    "TOML with tables": (["train", "--config", "{root}/table.toml"], "use flat keys"),
    "TOML missing": (["train", "--config", "{root}/none.toml"], "does not exist"),
    "TOML not TOML": (["train", "--config", "{root}/good.txt"], "is not valid TOML"),
    # run directories
    "--out is an existing run": (["train", "{root}/good.txt", "--out", "{root}/run"], "already exists"),
    "--out is a file": (["train", "{root}/good.txt", "--out", "{root}/good.txt"], "is a file"),
    "resume missing dir": (["train", "--resume", "{root}/nowhere"], "does not exist"),
    "resume a non-run": (["train", "--resume", "{root}/notrun"], "not an rnnlab run directory"),
    "resume finished run": (["train", "--resume", "{root}/run"], "already stopped"),
    "resume changing the model": (
        ["train", "--resume", "{root}/run", "--cell", "gru"],
        "cannot change --cell",
    ),
    "resume truncated checkpoint": (["train", "--resume", "{truncated}"], "checksum"),
    "resume hand-edited checkpoint": (["train", "--resume", "{edited}"], "edited by hand"),
    "checkpoint from another version": (["train", "--resume", "{future}"], "version 99"),
    # generation and evaluation
    "top-k above vocabulary": (["generate", "{root}/run", "--top-k", "100000"], "larger than the vocabulary"),
    "negative temperature": (["generate", "{root}/run", "--temperature", "-1"], "--temperature must be >= 0"),
    "negative length": (["generate", "{root}/run", "--length", "-3"], "--length must be >= 0"),
    "prefix with unknown characters": (["generate", "{root}/run", "--prefix", "分开жщэ"], "'жщэ'"),
    "pickle where the model should be": (["generate", "{pickled}"], "never unpickles"),
    "hand-edited vocab": (["generate", "{vocab}"], "duplicate tokens"),
    "config no longer fits the weights": (["generate", "{config}"], "does not fit this model's config"),
    "torn config.json": (["evaluate", "{torn}"], "is not valid JSON"),
    "evaluate missing data": (["evaluate", "{root}/run", "--data", "{root}/nope.txt"], "does not exist"),
    # reports
    "report missing run": (["report", "{root}/nowhere"], "/nowhere does not exist"),
    "report run without metrics": (["report", "{nometrics}"], "metrics.jsonl does not exist"),
    "report --out is a directory": (["report", "{root}/run", "--out", "{root}/notrun"], "is a directory"),
    "report --out in a missing directory": (
        ["report", "{root}/run", "--out", "{root}/nowhere/r.html"],
        "r.html: directory",
    ),
    # export
    "export missing run": (["export", "{root}/nowhere", "--onnx", "{root}/m.onnx"], "does not exist"),
    # inspect
    "inspect missing run": (["inspect", "{root}/nowhere"], "does not exist"),
    "inspect bad regex": (["inspect", "{root}/run", "--feature", "x=("], "does not compile"),
    "inspect --out is a directory": (["inspect", "{root}/run", "--out", "{root}/notrun"], "is a directory"),
    "export to a directory": (["export", "{root}/run", "--onnx", "{root}/notrun"], "is a directory"),
    "export a residual model": (["export", "{root}/residual", "--onnx", "{root}/m.onnx"], "--ngram off"),
    "export over a file": (["export", "{root}/run", "--onnx", "{root}/good.txt"], "already exists"),
    "export into a missing directory": (
        ["export", "{root}/run", "--onnx", "{root}/nodir/m.onnx"],
        "does not exist; create it first",
    ),
}


def snapshot(root: Path) -> dict:
    """Every file's hash and every directory (an empty runs/ counts too) under ``root``."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(root.rglob("*"))
    }


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input(world, case, capsys, monkeypatch):
    monkeypatch.chdir(world)  # a refused run must not even create runs/ here
    dirs = {
        "root": world,
        "truncated": copy_run(world, "truncated", truncate_tensors),
        "edited": copy_run(world, "edited", edit_checkpoint_json),
        "future": copy_run(world, "future", future_version),
        "pickled": copy_run(world, "pickled", pickled_model),
        "vocab": copy_run(world, "vocab", edited_vocab),
        "config": copy_run(world, "config", edited_config),
        "torn": copy_run(world, "torn", torn_config),
        "nometrics": copy_run(world, "nometrics", no_metrics),
    }
    argv, message = CASES[case]
    argv = [a.format(**dirs) for a in argv]
    before = snapshot(world)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert snapshot(world) == before  # nothing written, nothing lost
