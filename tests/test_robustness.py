"""Crashes and signals lose nothing: Ctrl-C, SIGTERM and kill -9 at random moments, then --resume."""

import json
import random
import signal
import subprocess
import sys
import time

import pytest
from conftest import last_json, metrics_without_timing, tiny_run_argv

from rnnlab.train import load_checkpoint

KILLS = 3


def rnnlab(argv):
    return [sys.executable, "-m", "rnnlab", *argv]


def train_cmd(corpus, out, **settings):
    return rnnlab(tiny_run_argv(corpus, out, eval_every=10, json=True, **settings))


def resume_cmd(out, *extra):
    return rnnlab(["train", "--resume", str(out), "--quiet", "--json", *extra])


def logged_step(run_dir) -> int:
    """The step of the last record in the run's metrics.jsonl that has one (0: none yet)."""
    try:
        lines = (run_dir / "metrics.jsonl").read_bytes().splitlines()
    except FileNotFoundError:
        return 0
    for line in reversed(lines):
        try:
            record = json.loads(line)
        except ValueError:
            continue  # the line being written
        if "step" in record:
            return record["step"]
    return 0


def wait_until(condition, proc, timeout=120.0):
    """Poll ``condition()`` until it holds; fail if the process ends first or the time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            stderr = proc.stderr.read() if proc.stderr else ""
            pytest.fail(f"the run ended (exit {proc.returncode}) before it got there\n{stderr}")
        assert time.monotonic() < deadline, f"not there after {timeout:.0f} s"
        time.sleep(0.005)


def stray_temp_files(run_dir) -> list[str]:
    return [p.name for p in run_dir.iterdir() if p.name.endswith(".tmp")]


def assert_nothing_corrupt(run_dir, kills=0):
    """Every file parses and the checkpoint verifies. A temp file of an atomic write is left behind only
    by a SIGKILL during that write (nothing runs to remove it): at most one per kill, none otherwise."""
    for name in ("config.json", "vocab.json", "checkpoint.json"):
        json.loads((run_dir / name).read_text(encoding="utf-8"))
    load_checkpoint(run_dir)  # checksum, format and every tensor reference verified
    assert len(stray_temp_files(run_dir)) <= kills, stray_temp_files(run_dir)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_saves_a_resumable_checkpoint(tmp_path, corpus_file, sig):
    out = tmp_path / "run"
    proc = subprocess.Popen(train_cmd(corpus_file, out, max_steps=100000), stdout=subprocess.PIPE, text=True)
    try:
        # Once the log shows a step taken (a residual run validates at step 0, before any step).
        wait_until(lambda: logged_step(out) > 0, proc)
    finally:
        proc.send_signal(sig)
        stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert f"rnnlab train --resume {out}" in stdout
    summary = last_json(stdout)
    assert summary["stop_reason"] == "interrupted" and summary["steps"] > 0
    assert_nothing_corrupt(out)  # a process that stops on a signal removes its temp files
    step = json.loads((out / "checkpoint.json").read_text())["step"]
    assert step == summary["steps"]  # the checkpoint holds the very step it stopped at
    done = subprocess.run(resume_cmd(out, "--max-steps", str(step + 5)), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert last_json(done.stdout)["steps"] == step + 5


def test_kill_9_at_random_moments_loses_nothing(tmp_path, corpus_file):
    """SIGKILL gives no chance to save: resume restarts from the last checkpoint, and because the run
    is deterministic the killed-and-resumed run must end with exactly the reference run's metrics.

    Each kill comes when the run's own log reaches a step drawn at random, never after a wall-clock
    delay, so a fast machine and a slow one get the same kills. The log gains a gradient reading every
    3 steps and a validation every 10 (written before its checkpoint), so a kill lands between
    checkpoints or while one is being written, and each step lies beyond what earlier processes logged.
    """
    settings = {"max_steps": 120, "monitor_every": 3}  # 3: a record in the log every few steps
    ref, out = tmp_path / "ref", tmp_path / "killed"
    subprocess.run(train_cmd(corpus_file, ref, **settings), check=True, capture_output=True)
    # Kills only in the first half: the run still has 60 steps to go when its log says it got there.
    targets = sorted(random.Random(1).sample(range(5, 60), KILLS))
    cmd, logged, kill_points = train_cmd(corpus_file, out, **settings), 0, []
    for kills, target in enumerate(targets, start=1):
        target = max(target, logged + 1)  # records at or below `logged` may be the last process's
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_until(lambda target=target: logged_step(out) >= target, proc)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read()  # killed, not finished
        logged = logged_step(out)  # what it wrote before the kill took effect
        kill_points.append((logged, load_checkpoint(out)["loop"]["step"]))
        assert_nothing_corrupt(out, kills)
        cmd = resume_cmd(out)
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert_nothing_corrupt(out, KILLS)
    print(f"SIGKILL at (logged step, checkpoint step) {kill_points}, resumed each time")  # pytest -s
    assert metrics_without_timing(out) == metrics_without_timing(ref)
