"""torchrun: two CPU processes train as one process does, only rank 0 writes, and a run resumes."""

import json
import math
import os
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
from conftest import last_json, metric_records, tiny_run_argv

from rnnlab.cli import main
from rnnlab.errors import RnnlabError
from rnnlab.rundir import RunDir
from rnnlab.train.distributed import OneProcess, Torchrun, processes, rank_seed, row_slice

# Dropout stays off (--preset default): then no random draw depends on how the batch is split, and the
# two-process run must match the one-process run up to the order of floating-point sums. A small
# --clip-norm clips every step, so the test also fails if a process clipped by its own gradient's norm.
# Batches of 8 x 8 end no epoch before step 31: validations and gradient readings at 5, 10, 15, 20 only.
# The plateau schedule: the one-process run has its 20 steps from the start, the torchrun one 10 and then
# 10 more, and the deadline schedule plans the learning rate for the budget it is given.
SETTINGS = {
    "schedule": "plateau",
    "batch_size": 8,
    "num_steps": 8,
    "eval_every": 5,
    "monitor_every": 5,
    "clip_norm": 0.001,
    "json": True,
}


def torchrun(argv):
    """``python -m torch.distributed.run --nproc_per_node 2 -m rnnlab ARGV`` on the CPU (gloo)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([*cmd, "-m", "rnnlab", *argv], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def readings(run_dir, event, key):
    return {r["step"]: r[key] for r in metric_records(run_dir, event)}


def json_lines(text):
    return [line for line in text.splitlines() if line.startswith("{")]


# --- the pieces, without processes ------------------------------------------------------------------


def test_each_rank_takes_its_own_contiguous_rows():
    assert [row_slice(8, r, 2) for r in range(2)] == [slice(0, 4), slice(4, 8)]
    X = torch.arange(12 * 3).view(12, 3)
    parts = [Torchrun(r, 3, r).rows(X) for r in range(3)]
    torch.testing.assert_close(torch.cat(parts), X)  # every row once, in order
    torch.testing.assert_close(parts[1], X[4:8])
    with pytest.raises(RnnlabError, match=r"--batch-size 7 .* 2 processes"):
        row_slice(7, 0, 2)
    # A whole-batch state (layers, B, H), e.g. from a checkpoint: each rank keeps its rows.
    h = torch.randn(2, 8, 5)
    mine = [Torchrun(r, 2, 0).own_rows((h, -h)) for r in range(2)]
    torch.testing.assert_close(torch.cat([m[0] for m in mine], dim=1), h)
    assert mine[1][1].is_contiguous()


def test_torchrun_is_detected_from_its_environment(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert type(processes()) is OneProcess
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    p = processes()
    assert (p.rank, p.world_size, p.local_rank, p.is_main) == (3, 4, 1, False)
    assert len({rank_seed(0, r) for r in range(4)}) == 4  # each rank its own dropout stream


def test_a_batch_that_does_not_split_is_refused_in_one_line(tmp_path, corpus_file, monkeypatch, capsys):
    for name, value in (("WORLD_SIZE", "2"), ("RANK", "0"), ("LOCAL_RANK", "0")):
        monkeypatch.setenv(name, value)
    argv = tiny_run_argv(corpus_file, tmp_path / "r", **{**SETTINGS, "batch_size": 5, "max_steps": 2})
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--batch-size 5 is the global batch" in err
    assert not (tmp_path / "r").exists()


def test_the_collectives_in_a_group_of_one():
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        p = Torchrun(0, 1, 0)
        loss, total, terms = p.average(torch.tensor(2.0), torch.tensor(math.nan), {"l2": torch.tensor(0.5)})
        assert float(loss) == 2.0 and math.isnan(float(total)) and float(terms["l2"]) == 0.5
        assert p.agree(True, 3.5) == (True, 3.5)
        assert p.from_main(lambda: "runs/x") == "runs/x"
        state = (torch.randn(1, 4, 3), torch.randn(1, 4, 3))
        torch.testing.assert_close(p.own_rows(p.gather_rows(state)), state)
        saved = p.rng_states()
        expected = torch.rand(3)
        p.restore_rng(saved, seed=0, step=0)
        torch.testing.assert_close(torch.rand(3), expected)
    finally:
        dist.destroy_process_group()


# --- two processes under torchrun -------------------------------------------------------------------


def test_two_processes_train_as_one_write_once_and_resume(tmp_path, corpus_file, capsys):
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(tiny_run_argv(corpus_file, one, **SETTINGS, max_steps=20)) == 0
    capsys.readouterr()
    first = torchrun(tiny_run_argv(corpus_file, two, **SETTINGS, max_steps=10))
    # Only rank 0 wrote: one summary, one line per validation, one log with one "start".
    assert len(json_lines(first.stdout)) == 1 and first.stderr.count("step     10") == 1
    events = [r["event"] for r in metric_records(two)]
    # Validations at steps 0 (the n-gram the residual network starts as), 5 and 10.
    assert events.count("start") == 1 and events.count("val") == 3
    resumed = torchrun(["train", "--resume", str(two), "--max-steps", "20", "--quiet", "--json"])
    assert json.loads(json_lines(resumed.stdout)[-1])["steps"] == 20

    # Same global batch, same seed: the same run, up to the order of floating-point sums.
    for event, key in (("val", "loss"), ("train", "loss"), ("grad", "norm_before")):
        a, b = readings(one, event, key), readings(two, event, key)
        assert list(a) == list(b) == ([0] if event == "val" else []) + [5, 10, 15, 20], event
        worst = max(abs(a[s] - b[s]) / abs(a[s]) for s in a)
        assert worst < 1e-4, (event, a, b)
    assert all(r["clip_frac"] == 1.0 for r in metric_records(two, "grad"))

    # The checkpoint holds the plain model (no DDP "module." prefix): one process continues the run.
    RunDir(two).load_model()
    assert main(["train", "--resume", str(two), "--max-steps", "25", "--quiet", "--json"]) == 0
    assert last_json(capsys.readouterr().out)["steps"] == 25


def test_a_min_cell_trains_under_torchrun_as_in_one_process(tmp_path, corpus_file, capsys):
    # minGRU's block (norm, causal convolution, scan, MLP) under DistributedDataParallel: nothing in it
    # is cell-specific, so two processes must give one process's run up to summation order.
    one, two = tmp_path / "one", tmp_path / "two"
    flags = {**SETTINGS, "max_steps": 10, "cell": "mingru"}
    assert main(tiny_run_argv(corpus_file, one, **flags)) == 0
    capsys.readouterr()
    torchrun(tiny_run_argv(corpus_file, two, **flags))
    a, b = readings(one, "val", "loss"), readings(two, "val", "loss")
    assert list(a) == list(b) == [0, 5, 10]
    assert max(abs(a[s] - b[s]) / abs(a[s]) for s in a) < 1e-4, (a, b)
