"""Parity of rnnlab.nn.batchnorm.BatchNorm with torch.nn.BatchNorm1d/2d in float64."""

import pytest
import torch
from torch.testing import assert_close

from rnnlab.nn.batchnorm import BatchNorm

C = 3
DTYPE = torch.float64
SHAPES = {2: (5, C), 4: (4, C, 3, 2)}
TWINS = {2: torch.nn.BatchNorm1d, 4: torch.nn.BatchNorm2d}


def _pair(num_dims: int, momentum: float | None = 0.1) -> tuple[BatchNorm, torch.nn.Module]:
    """Ours and torch's, with the same random affine parameters."""
    ours = BatchNorm(C, num_dims, momentum=momentum, dtype=DTYPE)
    theirs = TWINS[num_dims](C, momentum=momentum, dtype=DTYPE)
    with torch.no_grad():
        theirs.weight.uniform_(0.5, 1.5)
        theirs.bias.uniform_(-1, 1)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def _batch(num_dims: int) -> torch.Tensor:
    # Non-zero mean and non-unit scale, so the normalisation has something to do.
    return (torch.randn(SHAPES[num_dims], dtype=DTYPE) * 2 + 3).requires_grad_()


def _assert_forward_backward_match(ours, theirs, x: torch.Tensor) -> None:
    out_ours, out_theirs = ours(x), theirs(x)
    assert_close(out_ours, out_theirs)
    cotangent = torch.randn_like(out_theirs)
    grads_ours = torch.autograd.grad(out_ours, [x, ours.weight, ours.bias], cotangent)
    grads_theirs = torch.autograd.grad(out_theirs, [x, theirs.weight, theirs.bias], cotangent)
    for g_ours, g_theirs in zip(grads_ours, grads_theirs, strict=True):
        assert_close(g_ours, g_theirs)


@pytest.mark.parametrize("num_dims", [2, 4])
def test_state_dict_keys_shapes_and_init_match_torch(num_dims):
    ours, theirs = BatchNorm(C, num_dims), TWINS[num_dims](C)
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    keys = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert list(ours_sd) == list(theirs_sd) == keys
    for key in theirs_sd:
        assert_close(ours_sd[key], theirs_sd[key])  # also checks dtype: num_batches_tracked is int64


@pytest.mark.parametrize("num_dims", [2, 4])
@pytest.mark.parametrize("momentum", [0.1, 0.3, None])
def test_training_steps_match_torch_outputs_grads_and_running_stats(num_dims, momentum):
    torch.manual_seed(0)
    ours, theirs = _pair(num_dims, momentum)
    for _ in range(4):
        _assert_forward_backward_match(ours, theirs, _batch(num_dims))
    for key, value in theirs.state_dict().items():
        assert_close(ours.state_dict()[key], value)
    assert int(ours.num_batches_tracked) == 4


@pytest.mark.parametrize("num_dims", [2, 4])
def test_eval_uses_running_stats_like_torch(num_dims):
    torch.manual_seed(1)
    ours, theirs = _pair(num_dims)
    for _ in range(3):
        theirs(_batch(num_dims))  # running statistics away from their initial 0 and 1
    ours.load_state_dict(theirs.state_dict())
    ours.eval(), theirs.eval()
    before = {k: v.clone() for k, v in ours.state_dict().items()}
    _assert_forward_backward_match(ours, theirs, _batch(num_dims))
    for key, value in ours.state_dict().items():
        assert_close(value, before[key])  # eval never touches the running statistics


@pytest.mark.parametrize("num_dims", [2, 4])
def test_running_stats_follow_the_momentum_formula(num_dims):
    torch.manual_seed(2)
    bn = BatchNorm(C, num_dims, momentum=0.25, dtype=DTYPE)
    x = _batch(num_dims).detach()
    bn(x)
    dims = (0,) if num_dims == 2 else (0, 2, 3)
    assert_close(bn.running_mean, 0.75 * 0 + 0.25 * x.mean(dims))
    assert_close(bn.running_var, 0.75 * 1 + 0.25 * x.var(dims, unbiased=True))


@pytest.mark.parametrize("num_dims", [2, 4])
def test_load_state_dict_both_ways(num_dims):
    torch.manual_seed(3)
    ours = _pair(num_dims)[0]
    for _ in range(2):
        ours(_batch(num_dims))
    fresh_theirs = TWINS[num_dims](C, dtype=DTYPE)
    fresh_theirs.load_state_dict(ours.state_dict())
    fresh_ours = BatchNorm(C, num_dims, dtype=DTYPE)
    fresh_ours.load_state_dict(fresh_theirs.state_dict())
    for module in (ours, fresh_theirs, fresh_ours):
        module.eval()
    x = _batch(num_dims)
    assert_close(fresh_theirs(x), ours(x))
    assert_close(fresh_ours(x), ours(x))


def test_training_output_is_normalised_per_channel():
    torch.manual_seed(4)
    y = BatchNorm(C, 4, dtype=DTYPE)(_batch(4)).detach()
    assert_close(y.mean((0, 2, 3)), torch.zeros(C, dtype=DTYPE))
    assert_close(y.var((0, 2, 3), unbiased=False), torch.ones(C, dtype=DTYPE), atol=1e-4, rtol=0)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="num_dims"):
        BatchNorm(C, 3)
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        BatchNorm(C, 2)(torch.randn(4, C + 1))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        BatchNorm(C, 2)(torch.randn(1, C))
    BatchNorm(C, 2).eval()(torch.randn(1, C))  # one row is fine in eval
