"""The layers' fast path (hand-written BPTT, rnnlab.nn.fused) against their reference path, in float64."""

from functools import partial

import pytest
import torch
from torch.testing import assert_close

from rnnlab.nn import GRU, LSTM, RNN, RNNBase, fused

T, B, I, H = 4, 3, 5, 6
DTYPE = torch.float64
LAYERS = {
    "rnn-tanh": partial(RNN, nonlinearity="tanh"),
    "rnn-relu": partial(RNN, nonlinearity="relu"),
    "gru": GRU,
    "lstm": LSTM,
}
TORCH_MODES = {"rnn-tanh": "RNN_TANH", "rnn-relu": "RNN_RELU", "gru": "GRU", "lstm": "LSTM"}


def _flat(value) -> list[torch.Tensor]:
    return [value] if isinstance(value, torch.Tensor) else [t for v in value for t in _flat(v)]


def _state(mode: str, shape: tuple[int, ...], dtype=DTYPE):
    parts = [torch.randn(shape, dtype=dtype, requires_grad=True) for _ in range(2 if mode == "lstm" else 1)]
    return tuple(parts) if mode == "lstm" else parts[0]


def _run(layer: RNNBase, fast: bool, args: tuple, inputs: list[torch.Tensor], cotangent_seed: int = 0):
    """Outputs and the grads of a fixed random projection of them wrt ``inputs`` and every parameter."""
    layer.fast = fast
    outputs = _flat(layer(*args))
    generator = torch.Generator().manual_seed(cotangent_seed)
    cotangents = [torch.randn(o.shape, dtype=o.dtype, generator=generator) for o in outputs]
    wrt = inputs + list(layer.parameters())
    return outputs, torch.autograd.grad(outputs, wrt, cotangents, allow_unused=True)


def _assert_paths_agree(layer: RNNBase, args: tuple, inputs: list[torch.Tensor]) -> None:
    outs_fast, grads_fast = _run(layer, True, args, inputs)
    outs_ref, grads_ref = _run(layer, False, args, inputs)
    assert_close(outs_fast, outs_ref)
    names = [f"input{k}" for k in range(len(inputs))] + [name for name, _ in layer.named_parameters()]
    for name, g_fast, g_ref in zip(names, grads_fast, grads_ref, strict=True):
        assert_close(g_fast, g_ref, msg=lambda m, name=name: f"grad of {name}: {m}")


@pytest.mark.parametrize("given_state", [False, True], ids=["no-h0", "h0"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize(("num_layers", "bidirectional"), [(1, False), (2, True)], ids=["L1-uni", "L2-bi"])
@pytest.mark.parametrize("mode", list(LAYERS))
def test_fast_path_matches_reference(mode, num_layers, bidirectional, bias, given_state):
    torch.manual_seed(0)
    layer = LAYERS[mode](I, H, num_layers=num_layers, bias=bias, bidirectional=bidirectional, dtype=DTYPE)
    x = torch.randn(T, B, I, dtype=DTYPE, requires_grad=True)
    state = _state(mode, (num_layers * (1 + bidirectional), B, H)) if given_state else None
    args = (x, state) if given_state else (x,)
    _assert_paths_agree(layer, args, [x, *_flat(state)] if given_state else [x])


@pytest.mark.parametrize("mode", list(LAYERS))
def test_fast_path_matches_reference_on_ids_batch_first_and_unbatched(mode):
    torch.manual_seed(1)
    layer = LAYERS[mode](I, H, num_layers=2, batch_first=True, bidirectional=True, dtype=DTYPE)
    _assert_paths_agree(layer, (torch.randint(I, (B, T)),), [])
    x = torch.randn(T, I, dtype=DTYPE, requires_grad=True)
    state = _state(mode, (4, H))
    _assert_paths_agree(layer, (x, state), [x, *_flat(state)])


@pytest.mark.parametrize("chunk_bytes", [1, 3 * 6 * B * H * 8], ids=["1-step-chunks", "3-step-chunks"])
@pytest.mark.parametrize("mode", list(LAYERS))
def test_fast_path_matches_reference_when_steps_run_in_chunks(mode, chunk_bytes, monkeypatch):
    """Activations become factors chunk by chunk (CHUNK_BYTES); chunk edges must not change anything."""
    monkeypatch.setattr(fused, "CHUNK_BYTES", chunk_bytes)
    torch.manual_seed(2)
    layer = LAYERS[mode](I, H, bidirectional=True, dtype=DTYPE)
    x = torch.randn(T, B, I, dtype=DTYPE, requires_grad=True)
    state = _state(mode, (2, B, H))
    _assert_paths_agree(layer, (x, state), [x, *_flat(state)])


@pytest.mark.parametrize("mode", list(LAYERS))
def test_fast_path_without_grad_and_with_retained_graph(mode):
    """No grad: same outputs (no factors kept). retain_graph: a second backward gives the same grads."""
    torch.manual_seed(3)
    layer = LAYERS[mode](I, H, num_layers=2, bidirectional=True, dtype=DTYPE)
    x = torch.randn(T, B, I, dtype=DTYPE)
    with torch.no_grad():
        out_no_grad, _ = layer(x)
    out, _ = layer(x)
    assert_close(out_no_grad, out)
    first = torch.autograd.grad(out.sum(), list(layer.parameters()), retain_graph=True)
    second = torch.autograd.grad(out.sum(), list(layer.parameters()))
    assert_close(first, second)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("mode", list(LAYERS))
def test_fused_scan_gradcheck(mode, reverse, bias):
    torch.manual_seed(0)
    kernel = fused.KERNELS[TORCH_MODES[mode]]
    gates, hidden = kernel.gates * 2, 2
    gi = torch.randn(3, 2, gates, dtype=DTYPE, requires_grad=True)
    weight_hh = torch.randn(gates, hidden, dtype=DTYPE, requires_grad=True)
    bias_hh = torch.randn(gates, dtype=DTYPE, requires_grad=True) if bias else None
    state = _flat(_state(mode, (2, hidden)))
    if mode == "rnn-relu":  # keep pre-activations away from relu's kink, where finite differences fail
        gi = (gi.detach() + 3).requires_grad_()

    def scan(gi, weight_hh, bias_hh, *state):
        return fused.FusedScan.apply(TORCH_MODES[mode], reverse, gi, weight_hh, bias_hh, *state)

    assert torch.autograd.gradcheck(scan, (gi, weight_hh, bias_hh, *state))


def _count_calls(monkeypatch) -> dict[str, int]:
    calls = {"fast": 0, "reference": 0}
    fast_apply, reference = fused.FusedScan.apply, RNNBase._reference_scan

    def counting_apply(*args):
        calls["fast"] += 1
        return fast_apply(*args)

    def counting_reference(*args, **kwargs):
        calls["reference"] += 1
        return reference(*args, **kwargs)

    monkeypatch.setattr(fused.FusedScan, "apply", counting_apply)
    monkeypatch.setattr(RNNBase, "_reference_scan", counting_reference)
    return calls


@pytest.mark.parametrize("mode", list(LAYERS))
def test_fast_path_is_the_default_and_the_switch_selects_reference(mode, monkeypatch):
    calls = _count_calls(monkeypatch)
    layer = LAYERS[mode](I, H, num_layers=2, bidirectional=True)
    assert layer.fast
    layer(torch.randn(T, B, I))
    assert calls == {"fast": 4, "reference": 0}  # one call per (layer, direction)
    layer.fast = False
    layer(torch.randn(T, B, I))
    assert calls == {"fast": 4, "reference": 4}


def test_unsupported_dtype_falls_back_to_reference(monkeypatch):
    calls = _count_calls(monkeypatch)
    layer = LSTM(I, H, dtype=torch.float16)
    out, _ = layer(torch.randn(T, B, I, dtype=torch.float16))
    assert calls == {"fast": 0, "reference": 1}
    assert out.dtype == torch.float16


@pytest.mark.parametrize("mode", ["gru", "lstm"])
def test_bf16_autocast_runs_fast_path_close_to_float32(mode, monkeypatch):
    """Under CPU autocast the recurrence runs in bfloat16; results stay near float32's, grads reach params."""
    torch.manual_seed(0)
    calls = _count_calls(monkeypatch)
    layer = LAYERS[mode](I, H, num_layers=2, bidirectional=True)
    x = torch.randn(T, B, I)
    out32, state32 = layer(x)
    grads32 = torch.autograd.grad(out32.sum(), list(layer.parameters()))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out16, state16 = layer(x)
    grads16 = torch.autograd.grad(out16.float().sum(), list(layer.parameters()))
    assert calls["fast"] == 8 and calls["reference"] == 0
    layer.fast = False
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out_ref, _ = layer(x)
    assert out16.dtype == out_ref.dtype == torch.float32  # as the reference path and torch.nn return
    assert_close(out16, out32, atol=3e-2, rtol=3e-2)
    assert_close(_flat(state16), _flat(state32), atol=3e-2, rtol=3e-2)
    for g16, g32 in zip(grads16, grads32, strict=True):
        assert g16.dtype == torch.float32
        assert_close(g16, g32, atol=0.1, rtol=0.05)
