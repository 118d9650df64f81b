"""Gradient health: clipping against torch's, the monitor's readings, the non-finite guard, the verdict."""

import json
import math

import pytest
import torch
from torch.testing import assert_close

from rnnlab.diagnose.gradients import gradient_verdict, plot_dldh_heatmap
from rnnlab.errors import RnnlabError
from rnnlab.losses import cross_entropy
from rnnlab.model import LanguageModel
from rnnlab.train.clipping import clip_grad_norm, clip_grad_value, grads_finite, total_grad_norm
from rnnlab.train.guard import NonFiniteGuard
from rnnlab.train.monitor import GradientMonitor, parameter_group


def twin_params(grads):
    """Two parameter lists holding copies of ``grads`` (None: a parameter without a gradient)."""
    pairs = []
    for g in grads:
        shape = g.shape if g is not None else (3,)
        a, b = torch.zeros(shape, dtype=torch.float64), torch.zeros(shape, dtype=torch.float64)
        a.requires_grad_(), b.requires_grad_()
        if g is not None:
            a.grad, b.grad = g.clone(), g.clone()
        pairs.append((a, b))
    return [a for a, _ in pairs], [b for _, b in pairs]


def random_grads(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randn(4, 5, generator=g, dtype=torch.float64),
        None,
        3 * torch.randn(7, generator=g, dtype=torch.float64),
    ]


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    mine, theirs = twin_params(random_grads())
    got = clip_grad_norm(mine, max_norm, norm_type)
    want = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert_close(got, want)
    for a, b in zip(mine, theirs):
        assert (a.grad is None) == (b.grad is None)
        if a.grad is not None:
            assert_close(a.grad, b.grad)
    if max_norm < 1:
        assert total_grad_norm(mine, norm_type) <= max_norm * (1 + 1e-6)


def test_clip_single_tensor_generator_zero_and_empty():
    mine, theirs = twin_params(random_grads(1)[:1])
    assert_close(clip_grad_norm(mine[0], 0.1), torch.nn.utils.clip_grad_norm_(theirs[0], 0.1))
    assert_close(mine[0].grad, theirs[0].grad)
    zeros, _ = twin_params([torch.zeros(5, dtype=torch.float64)])
    assert float(clip_grad_norm(iter(zeros), 1.0)) == 0.0 and not zeros[0].grad.isnan().any()
    assert float(clip_grad_norm([torch.zeros(2, requires_grad=True)], 1.0)) == 0.0  # no grads at all


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_clip_non_finite_behaves_like_torch(bad):
    grads = random_grads(2)
    grads[0][1, 2] = bad
    mine, theirs = twin_params(grads)
    got = clip_grad_norm(mine, 1.0)
    want = torch.nn.utils.clip_grad_norm_(theirs, 1.0, error_if_nonfinite=False)
    assert not math.isfinite(float(got))
    assert_close(got, want, equal_nan=True)
    for a, b in zip(mine, theirs):
        if a.grad is not None:  # poisoned exactly as torch poisons them: never step on these
            assert_close(a.grad, b.grad, equal_nan=True)
    assert not grads_finite(mine)


def test_clip_grad_value_matches_torch():
    mine, theirs = twin_params(random_grads(3))
    before = clip_grad_value(mine, 0.7)
    torch.nn.utils.clip_grad_value_(theirs, 0.7)
    assert_close(before, max(g.abs().max() for g in random_grads(3) if g is not None))
    for a, b in zip(mine, theirs):
        if a.grad is not None:
            assert_close(a.grad, b.grad)
    assert clip_grad_value([torch.zeros(2, requires_grad=True)], 1.0) is None
    assert grads_finite(mine)


def test_parameter_groups_are_layers():
    assert parameter_group("rnn.weight_hh_l1") == "rnn.l1"
    assert parameter_group("rnn.bias_ih_l0_reverse") == "rnn.l0"
    assert parameter_group("embedding.weight") == "embedding"
    assert parameter_group("decoder.bias") == "decoder"


def small_rnn(seed=0, impl="torch"):
    torch.manual_seed(seed)
    model = LanguageModel(12, cell="rnn", impl=impl, hidden_size=16, embedding_dim=8, num_layers=2)
    with torch.no_grad():
        for name, p in model.rnn.named_parameters():
            if name.startswith("weight_hh"):
                p.mul_(0.2)  # contracting recurrence: the gradient fades going back in time
    return model


def monitored_step(model, monitor, step, X, Y, optimizer, max_norm=0.05):
    monitor.begin_step(step)
    out = model(X)
    loss = cross_entropy(out.logits, Y)
    optimizer.zero_grad(set_to_none=True)
    monitor.before_backward(loss)
    loss.backward()
    monitor.after_backward()
    norm = clip_grad_norm(model.parameters(), max_norm)
    monitor.after_clip(norm, max_norm)
    optimizer.step()
    monitor.after_step()
    return monitor.record()


@pytest.mark.parametrize("impl", ["torch", "scratch"])
def test_monitor_records_dldh_and_groups(impl):
    model = small_rnn(impl=impl)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    monitor = GradientMonitor(model, every=2)
    X, Y = torch.randint(0, 12, (3, 20)), torch.randint(0, 12, (3, 20))
    assert monitored_step(model, monitor, 1, X, Y, optimizer) is None  # not a sampled step
    record = monitored_step(model, monitor, 2, X, Y, optimizer)
    json.dumps(record, allow_nan=False)  # flat and JSON-able as it is
    dldh = record["dldh"]
    assert len(dldh) == 20 and dldh[-1] > 1e3 * dldh[0] and dldh[-1] > dldh[10] > dldh[0]
    for group in ("embedding", "rnn.l0", "rnn.l1", "decoder"):
        assert record[f"grad_norm/{group}"] > 0 and 0 < record[f"update_ratio/{group}"] < 1
    assert record["norm_after"] == pytest.approx(0.05, rel=1e-4) and record["norm_before"] > 0.05
    assert record["clip_frac"] == 1.0 and record["clip_frac_total"] == 1.0


def test_monitor_probe_changes_nothing():
    X, Y = torch.randint(0, 12, (3, 10)), torch.randint(0, 12, (3, 10))
    grads = []
    for with_monitor in (False, True):
        model = small_rnn(seed=1)
        monitor = GradientMonitor(model, every=1) if with_monitor else None
        if monitor:
            monitor.begin_step(1)
        out = model(X)
        loss = cross_entropy(out.logits, Y)
        if monitor:
            monitor.before_backward(loss)
        loss.backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads):
        assert_close(a, b)


def test_guard_skips_then_rolls_back():
    guard = NonFiniteGuard(patience=3, lr_factor=0.5)
    assert guard.check(torch.tensor(1.0), torch.tensor(2.0)).action == "step"
    first = guard.check(torch.tensor(math.nan))
    assert first.action == "skip" and "loss" in first.reason
    assert guard.check(1.0, math.inf).action == "skip"
    rollback = guard.check(1.0, math.nan)
    assert rollback.action == "rollback" and rollback.lr_factor == 0.5
    assert (guard.skipped, guard.consecutive, guard.rollbacks) == (3, 0, 1)
    guard.check(math.inf)
    assert guard.check(0.5, 1.0).action == "step" and guard.consecutive == 0
    p = torch.zeros(2, requires_grad=True)
    p.grad = torch.tensor([1.0, math.inf])
    assert guard.check(0.5, parameters=[p]).reason == "non-finite gradient"
    restored = NonFiniteGuard()
    restored.load_state_dict(guard.state_dict())
    assert restored.state_dict() == guard.state_dict() == {"skipped": 5, "consecutive": 1, "rollbacks": 1}


def synthetic(dldh, norms, clip=0.0, extra=None):
    return [
        {
            "event": "grad",
            "step": 10 * (i + 1),
            "dldh": dldh,
            "norm_before": n,
            "clip_frac": clip,
            **(extra or {}),
        }
        for i, n in enumerate(norms)
    ] + [{"event": "train", "step": 5, "loss": 1.0}]


def test_verdicts_on_synthetic_records():
    decaying = [10.0 ** (t - 9) for t in range(10)]  # 1e-9 at t=0 ... 1 at t=9
    flat = [1.0] * 10
    vanishing = gradient_verdict(synthetic(decaying, [1.0] * 6))
    assert vanishing.kind == "vanishing" and vanishing.numbers["dldh_ratio"] == pytest.approx(1e-9)
    assert "--cell lstm" in vanishing.render_text() and "--num-steps" in vanishing.render_text()
    assert vanishing.numbers["reach"] == 4  # 1e-4, four steps back, is the first below 1e-3 of the last
    assert "--cell lstm" not in gradient_verdict(synthetic(decaying, [1.0] * 6), cell="lstm").render_text()
    layers = gradient_verdict(
        synthetic(flat, [1.0] * 6, extra={"grad_norm/rnn.l0": 1e-6, "grad_norm/rnn.l2": 1.0})
    )
    assert layers.kind == "vanishing" and "rnn" in layers.evidence[0]
    growing = gradient_verdict(synthetic(flat, [1.0, 2.0, 10.0, 1e2, 1e3, 1e4]))
    assert growing.kind == "exploding" and growing.numbers["norm_growth"] > 100
    spiking = gradient_verdict(synthetic(flat, [1.0, 1.0, 1.0, 1.0, 50.0, 1.0], clip=0.9))
    assert spiking.kind == "exploding" and "--clip-norm" in spiking.render_text()
    assert "spikes to 50x" in " ".join(spiking.evidence)
    # A clip threshold below a steady norm clips every step: a setting (the notes' 1e-2), not an explosion.
    clipped = gradient_verdict(synthetic(flat, [1.0] * 6, clip=0.9))
    assert clipped.kind == "healthy" and not clipped.remedies
    assert "no harm seen" in clipped.notes[0] and "--clip-norm" in clipped.notes[0]
    nonfinite = gradient_verdict(synthetic(flat, [1.0, "nan", "inf"]))
    assert nonfinite.kind == "exploding" and nonfinite.numbers["nonfinite_records"] == 2
    healthy = gradient_verdict(synthetic([0.5] * 10, [1.0, 1.2, 0.9, 1.1]))
    assert healthy.kind == "healthy" and not healthy.remedies
    with pytest.raises(RnnlabError, match="gradient monitor"):
        gradient_verdict([{"event": "train", "loss": 1.0}])


def test_verdict_reads_a_real_monitored_run(tmp_path):
    model = small_rnn()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    monitor = GradientMonitor(model, every=1)
    X, Y = torch.randint(0, 12, (3, 30)), torch.randint(0, 12, (3, 30))
    records = [monitored_step(model, monitor, step, X, Y, optimizer, max_norm=10.0) for step in range(1, 5)]
    assert gradient_verdict(records).kind == "vanishing"
    path = plot_dldh_heatmap(records, tmp_path / "dldh.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(RnnlabError):
        plot_dldh_heatmap([{"event": "grad", "step": 1}], tmp_path / "none.png")


def test_remedies_name_flags_of_rnnlab_train():
    import re

    from rnnlab.cli import build_parser
    from rnnlab.diagnose import gradients as verdicts

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    known = {opt for action in train._actions for opt in action.option_strings}
    remedies = [v for v in vars(verdicts).values() if isinstance(v, verdicts.Remedy)]
    assert len(remedies) >= 8
    for remedy in remedies:
        for flag in re.findall(r"--[a-z0-9-]+", remedy.flags):
            assert flag in known, f"{remedy.action}: {flag} is not a flag of rnnlab train"


def test_a_fading_gradient_is_named_only_where_it_hurts():
    decaying = [10.0 ** (t - 9) for t in range(10)]  # reach 4: fades 1000-fold within 4 of 10 steps
    learning = gradient_verdict(synthetic(decaying, [1.0] * 6), cell="lstm", learning=True)
    assert learning.kind == "healthy" and not learning.remedies
    assert "no harm seen" in learning.notes[0] and "1.00e-09" in learning.notes[0]
    assert "note: " in learning.render_text()
    assert gradient_verdict(synthetic(decaying, [1.0] * 6), learning=False).kind == "vanishing"
    steep = [10.0 ** (3 * (t - 9)) for t in range(10)]  # dies within 2 steps: it starves any model
    assert gradient_verdict(synthetic(steep, [1.0] * 6), learning=True).kind == "vanishing"
    layers = synthetic([1.0] * 10, [1.0] * 6, extra={"grad_norm/rnn.l0": 1e-6, "grad_norm/rnn.l2": 1.0})
    assert gradient_verdict(layers, learning=True).kind == "vanishing"  # a first layer that learns nothing


def test_diagnose_calls_a_learning_model_healthy_and_a_stuck_one_vanishing():
    from rnnlab.diagnose.run import diagnose

    decaying = [10.0 ** (t - 9) for t in range(10)]
    grads = [r for r in synthetic(decaying, [1.0] * 6) if r["event"] == "grad"]

    def curves(val):
        return [{"event": "val", "step": 10 * i, "loss": v} for i, v in enumerate(val, 1)] + [
            {"event": "train", "step": 10 * i, "loss": v + 0.1} for i, v in enumerate(val, 1)
        ]

    falling = diagnose(grads + curves([3.0, 2.5, 2.2, 2.0, 1.9]), cell="lstm")
    assert falling.fit.verdict == "still improving" and falling.gradients.kind == "healthy"
    stuck = diagnose(grads + curves([3.0, 3.0, 3.0, 3.0, 3.0]) + [{"event": "baseline", "val_loss": 2.0}])
    assert stuck.fit.verdict == "under-fitting" and stuck.gradients.kind == "vanishing"


def test_a_short_reach_is_no_problem_for_a_model_well_ahead_of_counting():
    from rnnlab.diagnose.run import diagnose

    steep = [10.0 ** (3 * (t - 9)) for t in range(10)]  # dies within 2 steps
    grads = [r for r in synthetic(steep, [1.0] * 6) if r["event"] == "grad"]

    def run(best_val, baseline):
        val = [3.0, 2.0, 1.5, 1.2, best_val]
        curves = [{"event": "val", "step": 10 * i, "loss": v} for i, v in enumerate(val, 1)]
        curves += [{"event": "train", "step": 10 * i, "loss": v - 0.01} for i, v in enumerate(val, 1)]
        return diagnose(grads + curves + [{"event": "baseline", "val_loss": baseline}], cell="lstm")

    ahead = run(0.003, 0.46)  # the generated corpus: predictable from the last two characters
    assert ahead.gradients.kind == "healthy" and not ahead.gradients.remedies
    note = ahead.gradients.notes[0]
    assert "no harm seen" in note and "0.003" in note and "0.46" in note
    level = run(1.19, 1.227)  # barely ahead: a gradient that dies in 2 steps may be what holds it back
    assert level.gradients.kind == "vanishing"
    assert gradient_verdict(grads, learning=True, ahead=(1.19, 1.227)).kind == "vanishing"
    assert gradient_verdict(grads, learning=True, ahead=(0.003, 0.46)).kind == "healthy"
    assert gradient_verdict(grads, learning=False, ahead=(0.003, 0.46)).kind == "vanishing"
