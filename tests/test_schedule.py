"""Learning-rate schedules: the deadline curve, the plateau and constant ones, and what auto picks."""

import pytest
import torch
from conftest import last_json, tiny_run_argv

from rnnlab.cli import main
from rnnlab.config import OptimConfig, RunConfig
from rnnlab.errors import RnnlabError
from rnnlab.train.schedule import ConstantLR, DeadlineLR, PlateauLR, build_schedule, schedule_name


def _optimizer(lr: float = 1.0) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr)


def _lr(optimizer) -> float:
    return optimizer.param_groups[0]["lr"]


def test_deadline_warms_up_linearly_then_decays_to_zero_at_the_deadline():
    opt = _optimizer()
    schedule = DeadlineLR(opt, lr=0.5, warmup=0.1)
    for p, expected in [(0.0, 0.0), (0.05, 0.25), (0.1, 0.5), (0.55, 0.25), (1.0, 0.0), (1.5, 0.0)]:
        schedule.progress(p)
        assert _lr(opt) == pytest.approx(expected)
    schedule.progress(None)  # no budget: the rate stays where it is
    assert _lr(opt) == 0.0


def test_a_rollback_scales_the_curve_from_then_on_and_survives_a_checkpoint():
    opt = _optimizer()
    schedule = DeadlineLR(opt, lr=1.0, warmup=0.0)
    schedule.progress(0.5)
    schedule.scaled(0.5)
    assert _lr(opt) == pytest.approx(0.25)
    restored = DeadlineLR(_optimizer(), lr=1.0, warmup=0.0)
    restored.load_state_dict(schedule.state_dict())
    restored.progress(0.5)
    assert _lr(restored.optimizer) == pytest.approx(0.25)


def test_plateau_lowers_the_rate_when_validation_stalls_and_constant_never_does():
    opt = _optimizer()
    plateau = PlateauLR(opt, factor=0.5, patience=1)
    for loss in (1.0, 1.0, 1.0):
        plateau.validated(loss)
        plateau.progress(0.9)  # no effect on the plateau schedule
    assert _lr(opt) == pytest.approx(0.5)
    opt = _optimizer()
    constant = ConstantLR(opt)
    constant.validated(1.0), constant.progress(0.99)
    assert _lr(opt) == 1.0


@pytest.mark.parametrize(
    ("schedule", "lr_factor", "run", "expected"),
    [
        ("auto", 0.5, RunConfig(max_time=60.0), "deadline"),
        ("auto", 0.5, RunConfig(max_time=None, max_steps=100), "deadline"),
        ("auto", 0.5, RunConfig(max_time=None, epochs=2), "deadline"),
        ("auto", 0.5, RunConfig(max_time=None), "plateau"),
        ("plateau", 1.0, RunConfig(), "constant"),
        ("constant", 0.5, RunConfig(), "constant"),
    ],
)
def test_what_each_name_builds(schedule, lr_factor, run, expected):
    optim = OptimConfig(schedule=schedule, lr_factor=lr_factor)
    assert schedule_name(optim, run) == expected
    built = build_schedule(_optimizer(), optim, run)
    assert type(built) is {"deadline": DeadlineLR, "plateau": PlateauLR, "constant": ConstantLR}[expected]


def test_bad_schedule_values_are_refused():
    with pytest.raises(RnnlabError, match="--schedule must be one of"):
        OptimConfig(schedule="cosine")
    with pytest.raises(RnnlabError, match="--warmup"):
        OptimConfig(warmup=1.0)


def test_runs_from_before_schedules_resume_on_the_plateau_schedule(tmp_path):
    from rnnlab.config import TrainConfig
    from rnnlab.io import atomic_write_json, read_json
    from rnnlab.rundir import RunDir

    run = RunDir.create(tmp_path / "old", TrainConfig(), "0" * 64, "rnnlab train")
    doc = read_json(run.config_path)
    del doc["config"]["optim"]["schedule"], doc["config"]["optim"]["warmup"]  # as an older rnnlab wrote it
    atomic_write_json(run.config_path, doc)
    assert run.load_config().optim.schedule == "plateau"
    assert (
        RunDir.create(tmp_path / "new", TrainConfig(), "0" * 64, "rnnlab train").load_config().optim.schedule
        == "auto"
    )


@pytest.mark.parametrize(("schedule", "stops_at"), [("deadline", 20), ("plateau", 2)])
def test_under_the_deadline_stalls_count_toward_patience_only_in_the_budgets_second_half(
    tmp_path, corpus_file, capsys, schedule, stops_at
):
    # A learning rate too small to move: the residual model stays its n-gram, every validation stalls.
    flags = {"schedule": schedule, "lr": 1e-12, "patience": 1, "eval_every": 2, "max_steps": 40, "json": True}
    assert main(tiny_run_argv(corpus_file, tmp_path / "run", **flags)) == 0
    summary = last_json(capsys.readouterr().out)
    assert summary["stop_reason"] == "early stopping" and summary["steps"] == stops_at
