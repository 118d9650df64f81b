"""Weight averaging (--ema): torch's EMA twin, the warm-up, the swap, checkpoints, and a run that keeps it."""

import math
from functools import partial

import pytest
import torch
from conftest import last_json, metrics_without_timing, tiny_run_argv
from safetensors.torch import load_file
from test_train import interrupt_at
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from rnnlab.cli import main
from rnnlab.config import OptimConfig
from rnnlab.errors import RnnlabError
from rnnlab.train import load_checkpoint
from rnnlab.train.average import WeightAverage

train_argv = partial(tiny_run_argv, hidden_size=24, num_steps=12, max_steps=30, json=True)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))


def _train(model: torch.nn.Module, steps: int, after_step) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=0.3)
    for _ in range(steps):
        opt.zero_grad()
        model(torch.randn(5, 3)).square().mean().backward()
        opt.step()
        after_step()


def test_the_average_equals_torchs_ema_where_the_warm_up_does_not_bind():
    # (1 + t) / (10 + t) >= 2/11 for every update t >= 1: a decay of 0.1 is used as given throughout.
    model = _model()
    ours = WeightAverage(model, decay=0.1)
    theirs = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.1), use_buffers=False)
    theirs.update_parameters(model)  # its first update copies: the weights before training, as ours

    def both():
        ours.update()
        theirs.update_parameters(model)

    _train(model, 12, both)
    for a, b in zip(ours.average, theirs.module.parameters()):
        torch.testing.assert_close(a, b)
    assert not torch.equal(ours.average[0], next(model.parameters()))


def test_the_decay_warms_up_so_the_average_leaves_the_random_start_behind():
    model = _model()
    start = [p.detach().clone() for p in model.parameters()]
    average = WeightAverage(model, decay=0.999)
    _train(model, 1, average.update)
    d = 2 / 11  # (1 + t) / (10 + t) at t = 1, below 0.999
    for a, s, p in zip(average.average, start, model.parameters()):
        torch.testing.assert_close(a, d * s + (1 - d) * p.detach())


def test_swapped_in_holds_the_average_inside_and_the_weights_after_even_on_error():
    model = _model()
    average = WeightAverage(model, decay=0.5)
    _train(model, 3, average.update)
    own = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(KeyError), average.swapped_in():
        for p, a in zip(model.parameters(), average.average):
            assert torch.equal(p, a)
        raise KeyError("inside")
    for p, w in zip(model.parameters(), own):
        assert torch.equal(p, w)


def test_state_round_trips_and_a_checkpoint_without_one_starts_from_the_weights():
    model = _model()
    average = WeightAverage(model, decay=0.9)
    _train(model, 4, average.update)
    restored = WeightAverage(model, decay=0.9)
    restored.load_state_dict(average.state_dict())
    assert restored.updates == 4
    for a, b in zip(restored.average, average.average):
        assert torch.equal(a, b)
    restored.load_state_dict(None)
    assert restored.updates == 0
    for a, p in zip(restored.average, model.parameters()):
        assert torch.equal(a, p)
    with pytest.raises(ValueError, match="averaged tensors"):
        restored.load_state_dict({"average": average.average[:1], "updates": 1})


def test_ema_must_be_a_decay_below_one():
    assert OptimConfig(ema=0.99).ema == 0.99
    for bad in (1.0, -0.1):
        with pytest.raises(RnnlabError, match="--ema"):
            OptimConfig(ema=bad)


def test_a_run_keeps_the_average_as_its_best_model_and_resumes_exactly(
    tmp_path, corpus_file, monkeypatch, capsys
):
    flags = ["--ema", "0.9", "--eval-every", "10", "--dropout", "0.2"]
    assert main(train_argv(corpus_file, tmp_path / "whole", *flags)) == 0
    summary = last_json(capsys.readouterr().out)
    assert summary["best_step"] == 30 and math.isfinite(summary["best_val_loss"])
    ckpt = load_checkpoint(tmp_path / "whole")
    kept = load_file(tmp_path / "whole" / "model.safetensors")
    names = [n for n, p in ckpt["model"].items() if n in kept and p.is_floating_point()]
    averaged = ckpt["average"]["average"]
    assert ckpt["average"]["updates"] == 30
    # The best model saved is the average, not the weights the optimiser holds (those train on).
    assert any(not torch.equal(kept[n], ckpt["model"][n]) for n in names)
    for a in averaged:
        assert any(kept[n].shape == a.shape and torch.equal(kept[n], a) for n in names)
    with monkeypatch.context() as m:
        interrupt_at(m, 17)
        assert main(train_argv(corpus_file, tmp_path / "cut", *flags)) == 130
    assert main(["train", "--resume", str(tmp_path / "cut"), "--quiet"]) == 0
    assert metrics_without_timing(tmp_path / "cut") == metrics_without_timing(tmp_path / "whole")
