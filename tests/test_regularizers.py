"""AWD-LSTM regularisers: locked and embedding dropout, WeightDrop on both layer impls, AR/TAR by hand."""

from functools import partial

import pytest
import torch
from torch.testing import assert_close

import rnnlab.nn as scratch
from rnnlab.model import LanguageModel
from rnnlab.nn.dropout import dropout
from rnnlab.nn.regularizers import (
    LockedDropout,
    WeightDrop,
    ar_tar_penalty,
    embedding_dropout,
    plain_state_dict,
    wrapped_state_dict,
)
from rnnlab.nn.state import state_tensors, zero_state

DTYPE = torch.float64
T, B, I, H = 4, 3, 5, 6
P = 0.4
LAYERS = {
    "torch-lstm": torch.nn.LSTM,
    "torch-gru": torch.nn.GRU,
    "torch-rnn": partial(torch.nn.RNN, nonlinearity="tanh"),
    "scratch-lstm": scratch.LSTM,
    "scratch-gru": scratch.GRU,
    "scratch-rnn": partial(scratch.RNN, nonlinearity="tanh"),
}


# --- LockedDropout -----------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_first", [False, True])
def test_locked_dropout_mask_is_constant_over_time(batch_first):
    torch.manual_seed(0)
    x = torch.ones(8, 20, 30, dtype=DTYPE)
    y = LockedDropout(P, batch_first=batch_first)(x)
    time_dim = 1 if batch_first else 0
    first = y.select(time_dim, 0).unsqueeze(time_dim)
    assert torch.equal(y, first.expand_as(y))  # every step has the first step's mask
    values = set(y.unique().tolist())
    assert values == {0.0, 1 / (1 - P)}


def test_locked_dropout_keeps_the_expectation_and_is_identity_in_eval():
    torch.manual_seed(1)
    layer = LockedDropout(P)
    x = torch.randn(3, 400, 500, dtype=DTYPE)
    y = layer(x)
    assert_close((y / x).mean().item(), 1.0, atol=0.01, rtol=0)  # mean of the mask: 200k draws
    assert_close((y == 0).double().mean().item(), P, atol=0.01, rtol=0)
    layer.eval()
    assert layer(x) is x
    assert LockedDropout(0.0)(x) is x


# --- embedding dropout -------------------------------------------------------------------------------


def test_embedding_dropout_drops_whole_rows_and_scales_the_rest():
    torch.manual_seed(2)
    weight = torch.randn(1000, 7, dtype=DTYPE, requires_grad=True)
    dropped = embedding_dropout(weight, P, training=True)
    zero_rows = (dropped == 0).all(dim=1)
    assert_close(dropped[~zero_rows], weight[~zero_rows] / (1 - P))
    assert ((dropped == 0).any(dim=1) == zero_rows).all()  # a row is all zero or not zero at all
    assert_close(zero_rows.double().mean().item(), P, atol=0.05, rtol=0)
    dropped.sum().backward()
    assert_close(weight.grad[zero_rows], torch.zeros_like(weight.grad[zero_rows]))
    assert embedding_dropout(weight, P, training=False) is weight


# --- WeightDrop --------------------------------------------------------------------------------------


def _pair(kind: str) -> tuple[WeightDrop, torch.nn.Module]:
    """A WeightDrop-wrapped layer and a plain copy of it with the same weights."""
    torch.manual_seed(3)
    plain = LAYERS[kind](I, H, dtype=DTYPE)
    wrapped_layer = LAYERS[kind](I, H, dtype=DTYPE)
    wrapped_layer.load_state_dict(plain.state_dict())
    return WeightDrop(wrapped_layer, p=P), plain


def _run(layer, x: torch.Tensor) -> torch.Tensor:
    output, _ = layer(x)
    return output


@pytest.mark.parametrize("kind", list(LAYERS))
def test_weight_drop_uses_dropped_weights_in_train_and_raw_in_eval(kind):
    wrapped, plain = _pair(kind)
    raw = wrapped.module.weight_hh_l0_raw
    x = torch.randn(T, B, I, dtype=DTYPE)

    torch.manual_seed(10)
    out = _run(wrapped, x)  # the mask is the first random draw of the forward
    torch.manual_seed(10)
    expected_weight = dropout(raw.detach(), P)
    with torch.no_grad():
        plain.weight_hh_l0.copy_(expected_weight)
    # torch.nn's kernel reads _flat_weights: this proves the dropped matrix reached it.
    assert_close(out, _run(plain, x))
    with torch.no_grad():
        plain.weight_hh_l0.copy_(raw)
    assert not torch.allclose(out, _run(plain, x))

    wrapped.eval()
    assert_close(_run(wrapped, x), _run(plain, x))  # eval: the raw weights, no mask


@pytest.mark.parametrize("kind", list(LAYERS))
def test_weight_drop_gradients_reach_the_raw_weight_through_the_mask(kind):
    wrapped, plain = _pair(kind)
    raw = wrapped.module.weight_hh_l0_raw
    x = torch.randn(T, B, I, dtype=DTYPE)
    torch.manual_seed(11)
    _run(wrapped, x).sum().backward()
    torch.manual_seed(11)
    scaled_mask = dropout(torch.ones_like(raw), P)
    with torch.no_grad():
        plain.weight_hh_l0.copy_(raw * scaled_mask)
    _run(plain, x).sum().backward()
    assert_close(raw.grad, plain.weight_hh_l0.grad * scaled_mask)  # chain rule through W ⊙ m
    assert (raw.grad[scaled_mask == 0] == 0).all() and raw.grad.abs().sum() > 0


@pytest.mark.parametrize("kind", ["torch-lstm", "scratch-gru"])
def test_weight_drop_names_state_dict_and_attribute_fallthrough(kind):
    torch.manual_seed(4)
    layer = LAYERS[kind](I, H, num_layers=2, dtype=DTYPE)
    plain_keys = list(layer.state_dict())
    wrapped = WeightDrop(layer, p=P)  # default: every weight_hh_l*
    assert wrapped.weights == ("weight_hh_l0", "weight_hh_l1")
    keys = list(wrapped.state_dict())
    assert "module.weight_hh_l0_raw" in keys and "module.weight_hh_l1_raw" in keys
    assert not any(key.endswith(("weight_hh_l0", "weight_hh_l1")) for key in keys)
    assert len(list(wrapped.parameters())) == len(plain_keys)  # nothing registered twice
    assert list(plain_state_dict(wrapped)) == plain_keys

    fresh = LAYERS[kind](I, H, num_layers=2, dtype=DTYPE)
    fresh.load_state_dict(plain_state_dict(wrapped))  # the unwrapped layer loads it
    other = WeightDrop(LAYERS[kind](I, H, num_layers=2, dtype=DTYPE), p=P)
    other.load_state_dict(wrapped_state_dict(other, fresh.state_dict()))
    x = torch.randn(T, B, I, dtype=DTYPE)
    other.eval(), wrapped.eval()
    assert_close(_run(other, x), _run(wrapped, x))
    assert_close(_run(other, x), _run(fresh, x))

    # Between calls the layer holds its raw weights; attribute reads fall through to it.
    assert wrapped.module.weight_hh_l0 is wrapped.module.weight_hh_l0_raw
    assert wrapped.hidden_size == H and wrapped.num_layers == 2
    assert state_tensors(zero_state(wrapped, B))[0].shape == (2, B, H)


def test_weight_drop_refuses_unknown_weights():
    with pytest.raises(ValueError, match="no parameter"):
        WeightDrop(torch.nn.LSTM(I, H), ["weight_hh_l7"])
    with pytest.raises(ValueError, match="dropout probability"):
        WeightDrop(torch.nn.LSTM(I, H), p=1.5)


@pytest.mark.parametrize("impl", ["torch", "scratch"])
def test_weight_drop_inside_a_language_model(impl):
    torch.manual_seed(5)
    model = LanguageModel(9, impl=impl, hidden_size=H, embedding_dim=4).double()
    plain = LanguageModel(9, impl=impl, hidden_size=H, embedding_dim=4).double()
    plain.load_state_dict(model.state_dict())
    model.rnn = WeightDrop(model.rnn, p=P)
    ids = torch.randint(9, (2, 5))
    model(ids).logits.sum().backward()  # trains: the raw weight gets a gradient
    assert model.rnn.module.weight_hh_l0_raw.grad is not None
    model.eval(), plain.eval()
    assert_close(model(ids, model.init_state(2)).logits, plain(ids).logits)
    plain.load_state_dict(plain_state_dict(model))


# --- AR / TAR ----------------------------------------------------------------------------------------


def test_ar_tar_by_hand():
    # B=1, T=3, H=2
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 0.0], [3.0, 1.0]]], dtype=DTYPE, requires_grad=True)
    ar, tar = ar_tar_penalty(hidden, alpha=2.0, beta=0.5)
    assert_close(ar, torch.tensor(2.0 * (1 + 4 + 9 + 0 + 9 + 1) / 6, dtype=DTYPE))
    # differences: (2, -2), (0, 1) -> squares 4, 4, 0, 1 over 4 elements
    assert_close(tar, torch.tensor(0.5 * 9 / 4, dtype=DTYPE))
    dropped = hidden * torch.tensor([[[2.0, 0.0]]], dtype=DTYPE)  # AR reads the dropped outputs
    ar, tar_again = ar_tar_penalty(hidden, alpha=2.0, beta=0.5, dropped_hidden=dropped)
    assert_close(ar, torch.tensor(2.0 * (4 + 36 + 36) / 6, dtype=DTYPE))
    assert_close(tar_again, tar)  # TAR always on the raw hidden
    (ar + tar).backward()
    assert hidden.grad is not None


def test_tar_is_zero_for_one_step():
    ar, tar = ar_tar_penalty(torch.ones(2, 1, 3), alpha=1.0, beta=1.0)
    assert float(ar) == 1.0 and float(tar) == 0.0
