"""Parity of rnnlab.nn's from-scratch cells, layers and dropout with their torch.nn twins, in float64."""

import math
from functools import partial

import pytest
import torch
from torch.testing import assert_close

from rnnlab.nn import GRU, LSTM, RNN, Dropout, GRUCell, LSTMCell, RNNCell, dropout

T, B, I, H = 5, 3, 4, 6  # tiny on purpose: the full parity grid has 384 cases
DTYPE = torch.float64

MODES = ["rnn-tanh", "rnn-relu", "gru", "lstm"]
LAYERS = {
    "rnn-tanh": (partial(RNN, nonlinearity="tanh"), partial(torch.nn.RNN, nonlinearity="tanh")),
    "rnn-relu": (partial(RNN, nonlinearity="relu"), partial(torch.nn.RNN, nonlinearity="relu")),
    "gru": (GRU, torch.nn.GRU),
    "lstm": (LSTM, torch.nn.LSTM),
}
CELLS = {
    "rnn-tanh": (partial(RNNCell, nonlinearity="tanh"), partial(torch.nn.RNNCell, nonlinearity="tanh")),
    "rnn-relu": (partial(RNNCell, nonlinearity="relu"), partial(torch.nn.RNNCell, nonlinearity="relu")),
    "gru": (GRUCell, torch.nn.GRUCell),
    "lstm": (LSTMCell, torch.nn.LSTMCell),
}


def _flat(value) -> list[torch.Tensor]:
    """Flatten a tensor or a nest of tuples of tensors into a list, in order."""
    if isinstance(value, torch.Tensor):
        return [value]
    return [t for v in value for t in _flat(v)]


def _random_state(mode: str, shape: tuple[int, ...]):
    """A random initial state of `shape` that requires grad: a tensor, or (h, c) for the LSTM."""
    parts = [torch.randn(shape, dtype=DTYPE, requires_grad=True) for _ in range(2 if mode == "lstm" else 1)]
    return tuple(parts) if mode == "lstm" else parts[0]


def _assert_same_state_dict(ours: torch.nn.Module, theirs: torch.nn.Module) -> None:
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert list(ours_sd) == list(theirs_sd)
    assert [v.shape for v in ours_sd.values()] == [v.shape for v in theirs_sd.values()]


def _assert_forward_backward_match(ours, theirs, args: tuple, inputs: list[torch.Tensor]) -> None:
    """Same outputs, and the same grads of a random projection of them wrt inputs and every parameter."""
    out_ours, out_theirs = ours(*args), theirs(*args)
    assert_close(out_ours, out_theirs)
    names = [name for name, _ in theirs.named_parameters()]
    outputs_ours, outputs_theirs = _flat(out_ours), _flat(out_theirs)
    cotangents = [torch.randn_like(o) for o in outputs_theirs]
    grads_ours = torch.autograd.grad(
        outputs_ours, inputs + [ours.get_parameter(n) for n in names], cotangents
    )
    grads_theirs = torch.autograd.grad(
        outputs_theirs, inputs + [theirs.get_parameter(n) for n in names], cotangents
    )
    for what, g_ours, g_theirs in zip(
        [f"input{k}" for k in range(len(inputs))] + names, grads_ours, grads_theirs, strict=True
    ):
        assert_close(g_ours, g_theirs, msg=lambda m, what=what: f"grad of {what}: {m}")


# ---------------------------------------------------------------------------------------------- layers


@pytest.mark.parametrize("unbatched", [False, True], ids=["batched", "unbatched"])
@pytest.mark.parametrize("given_state", [False, True], ids=["no-h0", "h0"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["seq-first", "batch-first"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2, 3], ids=lambda n: f"L{n}")
@pytest.mark.parametrize("mode", MODES)
def test_layer_matches_torch(mode, num_layers, bidirectional, batch_first, bias, given_state, unbatched):
    torch.manual_seed(0)
    kwargs = dict(num_layers=num_layers, bias=bias, batch_first=batch_first, bidirectional=bidirectional)
    ours_cls, theirs_cls = LAYERS[mode]
    theirs = theirs_cls(I, H, dtype=DTYPE, **kwargs)
    ours = ours_cls(I, H, dtype=DTYPE, **kwargs)
    ours.load_state_dict(theirs.state_dict())
    _assert_same_state_dict(ours, theirs)

    if unbatched:
        x_shape, state_shape = (T, I), (ours.num_layers * (1 + bidirectional), H)
    else:
        x_shape = (B, T, I) if batch_first else (T, B, I)
        state_shape = (ours.num_layers * (1 + bidirectional), B, H)
    x = torch.randn(x_shape, dtype=DTYPE, requires_grad=True)
    state = _random_state(mode, state_shape) if given_state else None
    args = (x, state) if given_state else (x,)
    inputs = [x, *_flat(state)] if given_state else [x]
    _assert_forward_backward_match(ours, theirs, args, inputs)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 3], ids=lambda n: f"L{n}")
@pytest.mark.parametrize("mode", MODES)
def test_torch_loads_our_state_dict(mode, num_layers, bidirectional, bias):
    torch.manual_seed(1)
    ours_cls, theirs_cls = LAYERS[mode]
    kwargs = dict(num_layers=num_layers, bias=bias, bidirectional=bidirectional, dtype=DTYPE)
    ours, theirs = ours_cls(I, H, **kwargs), theirs_cls(I, H, **kwargs)
    theirs.load_state_dict(ours.state_dict())
    _assert_same_state_dict(ours, theirs)
    x = torch.randn(T, B, I, dtype=DTYPE)
    assert_close(ours(x), theirs(x))


@pytest.mark.parametrize("kind", ["layer", "cell"])
@pytest.mark.parametrize("mode", MODES)
def test_init_draws_torchs_weights_from_the_same_seed(mode, kind):
    """U(-1/sqrt(H), 1/sqrt(H)) for every parameter, drawn in torch's order."""
    ours_cls, theirs_cls = (LAYERS if kind == "layer" else CELLS)[mode]
    kwargs = dict(num_layers=2, bidirectional=True) if kind == "layer" else {}
    torch.manual_seed(0)
    ours = ours_cls(I, 100, **kwargs)
    torch.manual_seed(0)
    theirs = theirs_cls(I, 100, **kwargs)
    for (name, ours_p), theirs_p in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        assert torch.equal(ours_p, theirs_p), name
        assert ours_p.abs().max() <= 1 / math.sqrt(100), name


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("mode", MODES)
def test_init_state_is_zeros_of_the_right_structure(mode, bidirectional):
    ours = LAYERS[mode][0](I, H, num_layers=2, bidirectional=bidirectional, dtype=DTYPE)
    state = ours.init_state(B)
    parts = _flat(state)
    assert isinstance(state, tuple) == (mode == "lstm")
    assert len(parts) == (2 if mode == "lstm" else 1)
    for part in parts:
        assert part.shape == (2 * (1 + bidirectional), B, H)
        assert part.dtype == DTYPE
        assert not part.any()
    x = torch.randn(T, B, I, dtype=DTYPE)
    assert_close(ours(x, state), ours(x))
    assert all(p.dtype == torch.float32 for p in _flat(ours.init_state(B, dtype=torch.float32)))


@pytest.mark.parametrize("mode", MODES)
def test_layer_dropout_is_identity_in_eval_and_random_in_train(mode):
    torch.manual_seed(0)
    ours_cls, theirs_cls = LAYERS[mode]
    kwargs = dict(num_layers=2, dropout=0.5, dtype=DTYPE)
    ours, theirs = ours_cls(I, H, **kwargs), theirs_cls(I, H, **kwargs)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(T, B, I, dtype=DTYPE)
    ours.eval(), theirs.eval()
    assert_close(ours(x), theirs(x))

    ours.train()
    (out_a, state_a), (out_b, _) = ours(x), ours(x)
    assert not torch.equal(out_a, out_b), "train-mode dropout between layers should change the output"
    # Dropout sits between layers only: layer 0's final state never sees a mask ...
    _, state_eval = theirs(x)
    assert_close(_flat(state_a)[0][0], _flat(state_eval)[0][0])
    # ... and the last layer's output is not masked (relu can give exact zeros on its own).
    if mode != "rnn-relu":
        assert (out_a != 0).all()


@pytest.mark.parametrize("mode", MODES)
def test_single_layer_dropout_warns_and_does_nothing(mode):
    with pytest.warns(UserWarning, match="num_layers"):
        ours = LAYERS[mode][0](I, H, dropout=0.5, dtype=DTYPE)
    x = torch.randn(T, B, I, dtype=DTYPE)
    assert_close(ours.train()(x), ours.eval()(x))


def _raise_type(fn) -> type[BaseException] | None:
    try:
        fn()
    except Exception as error:
        return type(error)
    return None


BAD_CALLS = {
    "input-size": lambda m: m(torch.randn(T, B, I + 1, dtype=DTYPE)),
    "4d-input": lambda m: m(torch.randn(T, B, 1, I, dtype=DTYPE)),
    "1d-input": lambda m: m(torch.randn(I, dtype=DTYPE)),
    "dtype": lambda m: m(torch.randn(T, B, I, dtype=torch.float32)),
    "empty-sequence": lambda m: m(torch.randn(0, B, I, dtype=DTYPE)),
    "hidden-size": lambda m: m(torch.randn(T, B, I, dtype=DTYPE), _state_like(m, (1, B, H + 1))),
    "hidden-batch": lambda m: m(torch.randn(T, B, I, dtype=DTYPE), _state_like(m, (1, B + 1, H))),
    "2d-hidden-batched": lambda m: m(torch.randn(T, B, I, dtype=DTYPE), _state_like(m, (1, H))),
    "3d-hidden-unbatched": lambda m: m(torch.randn(T, I, dtype=DTYPE), _state_like(m, (1, 1, H))),
}


def _state_like(module: torch.nn.Module, shape: tuple[int, ...]):
    return _random_state("lstm" if "LSTM" in type(module).__name__ else "rnn", shape)


@pytest.mark.parametrize("call", list(BAD_CALLS))
@pytest.mark.parametrize("mode", MODES)
def test_layer_rejects_bad_calls_like_torch(mode, call):
    ours_cls, theirs_cls = LAYERS[mode]
    expected = _raise_type(lambda: BAD_CALLS[call](theirs_cls(I, H, dtype=DTYPE)))
    assert expected is not None, "torch accepts this call: the test case is wrong"
    with pytest.raises(expected):
        BAD_CALLS[call](ours_cls(I, H, dtype=DTYPE))


@pytest.mark.parametrize(
    "build",
    [
        lambda: LSTM(I, H, proj_size=2),
        lambda: RNN(I, H, nonlinearity="sigmoid"),
        lambda: GRU(I, H, dropout=1.5),
        lambda: GRU(I, H, dropout=-0.1),
        lambda: GRU(I, 0),
        lambda: GRU(0, H),
        lambda: GRU(I, H, num_layers=0),
        lambda: RNNCell(I, H, nonlinearity="sigmoid"),
    ],
    ids=["proj-size", "nonlinearity", "dropout>1", "dropout<0", "hidden=0", "input=0", "layers=0", "cell-nl"],
)
def test_constructor_rejects_bad_arguments(build):
    with pytest.raises(ValueError):
        build()


def test_no_torch_recurrent_kernel_or_dropout_is_called(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("a torch recurrent kernel or dropout was called")

    names = ["lstm", "gru", "rnn_tanh", "rnn_relu", "lstm_cell", "gru_cell", "rnn_tanh_cell", "rnn_relu_cell"]
    for name in names:
        monkeypatch.setattr(torch, name, forbidden)
        monkeypatch.setattr(torch._VF, name, forbidden, raising=False)
    for name in ["dropout", "bernoulli", "native_dropout"]:
        monkeypatch.setattr(torch, name, forbidden)
    monkeypatch.setattr(torch.nn.functional, "dropout", forbidden)
    x = torch.randn(T, B, I)
    for mode in MODES:
        LAYERS[mode][0](I, H, num_layers=2, dropout=0.5, bidirectional=True).train()(x)
        CELLS[mode][0](I, H)(x[0])


# ---------------------------------------------------------------------------------------------- cells


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("given_state", [False, True], ids=["no-hx", "hx"])
@pytest.mark.parametrize("unbatched", [False, True], ids=["batched", "unbatched"])
@pytest.mark.parametrize("mode", MODES)
def test_cell_matches_torch(mode, unbatched, given_state, bias):
    torch.manual_seed(0)
    ours_cls, theirs_cls = CELLS[mode]
    theirs = theirs_cls(I, H, bias=bias, dtype=DTYPE)
    ours = ours_cls(I, H, bias=bias, dtype=DTYPE)
    ours.load_state_dict(theirs.state_dict())
    _assert_same_state_dict(ours, theirs)
    x = torch.randn((I,) if unbatched else (B, I), dtype=DTYPE, requires_grad=True)
    state = _random_state(mode, (H,) if unbatched else (B, H)) if given_state else None
    args = (x, state) if given_state else (x,)
    inputs = [x, *_flat(state)] if given_state else [x]
    _assert_forward_backward_match(ours, theirs, args, inputs)

    # And the other way round: torch runs our weights.
    fresh = ours_cls(I, H, bias=bias, dtype=DTYPE)
    theirs.load_state_dict(fresh.state_dict())
    assert_close(fresh(*args), theirs(*args))


@pytest.mark.parametrize("mode", MODES)
def test_cell_gradcheck(mode):
    torch.manual_seed(0)
    cell = CELLS[mode][0](3, 2, dtype=DTYPE)
    names = [name for name, _ in cell.named_parameters()]
    x = torch.randn(2, 3, dtype=DTYPE, requires_grad=True)
    state = _flat(_random_state(mode, (2, 2)))
    params = [p.detach().clone().requires_grad_() for p in cell.parameters()]

    def run(x, *rest):
        state, params = rest[: len(rest) - len(names)], rest[len(rest) - len(names) :]
        hx = tuple(state) if mode == "lstm" else state[0]
        return torch.func.functional_call(cell, dict(zip(names, params, strict=True)), (x, hx))

    assert torch.autograd.gradcheck(run, (x, *state, *params))


CELL_BAD_CALLS = {
    "input-size": lambda m: m(torch.randn(B, I + 1, dtype=DTYPE)),
    "3d-input": lambda m: m(torch.randn(1, B, I, dtype=DTYPE)),
    "hidden-size": lambda m: m(torch.randn(B, I, dtype=DTYPE), _state_like(m, (B, H + 1))),
    "hidden-batch": lambda m: m(torch.randn(B, I, dtype=DTYPE), _state_like(m, (B + 1, H))),
    "3d-hidden": lambda m: m(torch.randn(B, I, dtype=DTYPE), _state_like(m, (1, B, H))),
}


@pytest.mark.parametrize("call", list(CELL_BAD_CALLS))
@pytest.mark.parametrize("mode", MODES)
def test_cell_rejects_bad_calls_like_torch(mode, call):
    ours_cls, theirs_cls = CELLS[mode]
    expected = _raise_type(lambda: CELL_BAD_CALLS[call](theirs_cls(I, H, dtype=DTYPE)))
    assert expected is not None, "torch accepts this call: the test case is wrong"
    with pytest.raises(expected):
        CELL_BAD_CALLS[call](ours_cls(I, H, dtype=DTYPE))


# ---------------------------------------------------------------------------------------------- dropout

N = 200_000  # large enough that 5 binomial standard deviations are a tight tolerance


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_keeps_expectation_and_zeroes_fraction_p(p):
    generator = torch.Generator().manual_seed(0)
    out = dropout(torch.ones(N, dtype=DTYPE), p, generator=generator)
    zeroed = (out == 0).double().mean().item()
    assert abs(zeroed - p) < 5 * math.sqrt(p * (1 - p) / N)
    # Each element is Bernoulli(1-p) / (1-p): mean 1, variance p / (1-p).
    assert abs(out.mean().item() - 1) < 5 * math.sqrt(p / (1 - p) / N)


@pytest.mark.parametrize("p", [0.2, 0.7])
def test_dropout_scales_kept_values_by_exactly_one_over_keep(p):
    x = torch.randn(1000, dtype=DTYPE, requires_grad=True)
    out = dropout(x, p, generator=torch.Generator().manual_seed(0))
    kept = out != 0
    assert 0 < kept.sum() < x.numel()
    assert torch.equal(out[kept], x[kept] * (1 / (1 - p)))
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert torch.equal(grad, kept.to(DTYPE) * (1 / (1 - p)))


def test_dropout_edge_probabilities_and_eval():
    x = torch.randn(100, dtype=DTYPE)
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))
    assert torch.equal(dropout(x, 0.0), x)
    assert torch.equal(dropout(x, 0.9, training=False), x)
    module = Dropout(0.5)
    assert torch.equal(module.eval()(x), x)
    assert (module.train()(x) == 0).any()


def test_dropout_is_reproducible_with_a_generator():
    x = torch.randn(100, dtype=DTYPE)
    a = dropout(x, 0.5, generator=torch.Generator().manual_seed(3))
    b = dropout(x, 0.5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


@pytest.mark.parametrize("p", [-0.1, 1.1, float("nan")])
def test_dropout_rejects_probabilities_outside_unit_interval(p):
    with pytest.raises(ValueError, match="between 0 and 1"):
        dropout(torch.ones(3), p)
    with pytest.raises(ValueError, match="between 0 and 1"):
        Dropout(p)


@pytest.mark.parametrize("batch_first", [False, True], ids=["seq-first", "batch-first"])
@pytest.mark.parametrize("mode", MODES)
def test_integer_ids_equal_their_one_hot_vectors(mode, batch_first):
    """Integer input is read as one-hot: a gather of weight_ih_l0's columns, same values and grads."""
    torch.manual_seed(0)
    layer = LAYERS[mode][0](I, H, num_layers=2, batch_first=batch_first).double()
    ids = torch.randint(I, (T, B))
    one_hot = torch.nn.functional.one_hot(ids, I).double()
    out_ids, _ = layer(ids)
    grads_ids = torch.autograd.grad(out_ids.sum(), list(layer.parameters()))
    out_vec, _ = layer(one_hot)
    grads_vec = torch.autograd.grad(out_vec.sum(), list(layer.parameters()))
    assert_close(out_ids, out_vec)
    for a, b in zip(grads_ids, grads_vec):
        assert_close(a, b)
    with pytest.raises(IndexError):
        layer(torch.full((T, B), I))
