"""minGRU / minLSTM (rnnlab.nn.minrnn) and their block stack against a plain loop of the paper's equations."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from rnnlab.nn import minscan
from rnnlab.nn.minblock import MinBlockStack
from rnnlab.nn.minrnn import MinGRU, MinLSTM

T, B, I, H = 7, 3, 4, 5
DTYPE = torch.float64
LAYERS = {"MinGRU": MinGRU, "MinLSTM": MinLSTM}
SCANS = ["fused", "log", "step"]


def g(x: torch.Tensor) -> torch.Tensor:
    """The paper's g, as written there."""
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def reference(layer, x: torch.Tensor, h0: torch.Tensor | None, g_of_h0: bool = False):
    """The slow, obvious path: Feng et al. 2024's equations, one step at a time, in linear space.

    ``g_of_h0`` starts from ``g(h0)`` instead of ``h0``: the bug of a public implementation, which
    takes ``log g(h_prev)`` where ``log h_prev`` belongs.
    """
    finals = []
    for k in range(layer.num_layers):
        weight, bias = getattr(layer, f"weight_ih_l{k}"), getattr(layer, f"bias_ih_l{k}", None)
        h = x.new_zeros(x.size(1), layer.hidden_size) if h0 is None else h0[k]
        h = g(h) if g_of_h0 else h
        outputs = []
        for x_t in x:
            pre = F.linear(x_t, weight, bias)
            if layer.mode == "MinGRU":
                z, h_tilde = torch.sigmoid(pre[:, :H]), g(pre[:, H:])
                h = (1 - z) * h + z * h_tilde
            else:
                f, i, h_tilde = (
                    torch.sigmoid(pre[:, :H]),
                    torch.sigmoid(pre[:, H : 2 * H]),
                    g(pre[:, 2 * H :]),
                )
                h = f / (f + i) * h + i / (f + i) * h_tilde
            outputs.append(h)
        x = torch.stack(outputs)
        finals.append(h)
    return x, torch.stack(finals)


def _outputs_and_grads(run, wrt: list[torch.Tensor], seed: int = 0):
    """``run()``'s outputs and the grads of a fixed random projection of them wrt ``wrt``."""
    outputs = [o for part in run() for o in ([part] if isinstance(part, torch.Tensor) else part)]
    generator = torch.Generator().manual_seed(seed)
    cotangents = [torch.randn(o.shape, dtype=o.dtype, generator=generator) for o in outputs]
    return outputs, torch.autograd.grad(outputs, wrt, cotangents, allow_unused=True)


@pytest.mark.parametrize("scan", SCANS)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("given_state", [False, True], ids=["no-h0", "h0"])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("mode", list(LAYERS))
def test_every_scan_matches_the_equations_forward_and_backward(mode, num_layers, given_state, bias, scan):
    torch.manual_seed(0)
    layer = LAYERS[mode](I, H, num_layers, bias=bias, dtype=DTYPE)
    layer.scan = scan
    x = torch.randn(T, B, I, dtype=DTYPE, requires_grad=True)
    h0 = torch.randn(num_layers, B, H, dtype=DTYPE, requires_grad=True) if given_state else None
    wrt = [x, *([h0] if given_state else []), *layer.parameters()]
    ours, grads = _outputs_and_grads(lambda: layer(x, h0), wrt)
    theirs, expected = _outputs_and_grads(lambda: reference(layer, x, h0), wrt)
    assert_close(ours, theirs)
    names = ["x", *(["h0"] if given_state else []), *(name for name, _ in layer.named_parameters())]
    for name, got, want in zip(names, grads, expected, strict=True):
        assert_close(got, want, msg=lambda m, name=name: f"grad of {name}: {m}")


@pytest.mark.parametrize("chunk_bytes", [1, 2 * B * 3 * H * 8], ids=["1-step-blocks", "2-step-blocks"])
@pytest.mark.parametrize("mode", list(LAYERS))
def test_fused_scan_blocks_change_nothing(mode, chunk_bytes, monkeypatch):
    """The fused scan works in blocks of steps; block edges (here 1 and 2 steps, T odd) are invisible."""
    monkeypatch.setattr(minscan, "CHUNK_BYTES", chunk_bytes)
    torch.manual_seed(1)
    layer = LAYERS[mode](I, H, 2, dtype=DTYPE)
    x = torch.randn(T, B, I, dtype=DTYPE, requires_grad=True)
    h0 = torch.randn(2, B, H, dtype=DTYPE, requires_grad=True)
    wrt = [x, h0, *layer.parameters()]
    ours, grads = _outputs_and_grads(lambda: layer(x, h0), wrt)
    theirs, expected = _outputs_and_grads(lambda: reference(layer, x, h0), wrt)
    assert_close(ours, theirs)
    assert_close(grads, expected)


def _windows(module, x: torch.Tensor, sizes: list[int], state=None):
    """Run ``module`` over consecutive windows of ``x`` of ``sizes`` steps, carrying the state."""
    outputs = []
    for window in x.split(sizes):
        out, state = module(window, state)
        outputs.append(out)
    return torch.cat(outputs), state


@pytest.mark.parametrize("scan", ["fused", "log"])
@pytest.mark.parametrize("mode", list(LAYERS))
def test_whole_equals_chunks_equals_steps(mode, scan):
    torch.manual_seed(2)
    layer = LAYERS[mode](I, H, 2, dtype=DTYPE)
    layer.scan = scan
    x = torch.randn(11, B, I, dtype=DTYPE)
    h0 = torch.rand(2, B, H, dtype=DTYPE)  # h0 > 0, so log h0 is defined and the trap is open
    whole = layer(x, h0)
    assert_close(_windows(layer, x, [4, 2, 5], h0), whole, rtol=1e-12, atol=1e-12)
    assert_close(_windows(layer, x, [1] * 11, h0), whole, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("scan", SCANS)
@pytest.mark.parametrize("mode", list(LAYERS))
def test_a_carried_state_continues_as_h_not_as_g_of_h(mode, scan):
    """Continuing from h_prev must read h_prev (log h_prev in log space), never g(h_prev): the bug of a
    public implementation. That bug's result differs here by far more than the tolerance."""
    torch.manual_seed(3)
    layer = LAYERS[mode](I, H, dtype=DTYPE)
    layer.scan = scan
    x, h0 = torch.randn(T, B, I, dtype=DTYPE), torch.rand(1, B, H, dtype=DTYPE) + 0.1
    out, h_n = layer(x, h0)
    assert_close((out, h_n), reference(layer, x, h0))
    buggy, _ = reference(layer, x, h0, g_of_h0=True)
    assert (out - buggy).abs().max() > 1e-3


@pytest.mark.parametrize("scan", SCANS)
def test_a_negative_state_is_continued_exactly(scan):
    """No path takes log h: a caller's negative h0 (which the layer itself never makes from h0 >= 0)."""
    torch.manual_seed(4)
    layer = MinGRU(I, H, 2, dtype=DTYPE)
    layer.scan = scan
    x, h0 = torch.randn(T, B, I, dtype=DTYPE), -torch.rand(2, B, H, dtype=DTYPE) - 1
    assert_close(layer(x, h0), reference(layer, x, h0))


def test_h_stays_positive_from_a_non_negative_start():
    torch.manual_seed(5)
    out, h_n = MinLSTM(I, H, 3)(torch.randn(50, B, I) * 10)
    assert (out > 0).all() and (h_n > 0).all()


@pytest.mark.parametrize("mode", list(LAYERS))
def test_block_stack_whole_equals_chunks_equals_steps(mode):
    torch.manual_seed(6)
    stack = MinBlockStack(I, H, 2, cell=mode, conv=True, dtype=DTYPE)
    x = torch.randn(11, B, I, dtype=DTYPE)
    whole = stack(x)
    assert isinstance(whole[1], tuple) and whole[1][1].shape == (2, B, 3 * H)
    assert_close(_windows(stack, x, [4, 2, 5]), whole, rtol=1e-12, atol=1e-12)
    assert_close(_windows(stack, x, [1] * 11), whole, rtol=1e-12, atol=1e-12)
    # The carried conv inputs matter: dropping them (zeros, as at a stream's start) changes the output.
    first, (h, _) = stack(x[:4])
    cut, _ = stack(x[4:], (h, torch.zeros(2, B, 3 * H, dtype=DTYPE)))
    assert not torch.allclose(torch.cat([first, cut]), whole[0])


@pytest.mark.parametrize("mode", list(LAYERS))
def test_gradcheck(mode):
    torch.manual_seed(7)
    gates_width = (2 if mode == "MinGRU" else 3) * 3
    gates = torch.randn(5, 2, gates_width, dtype=DTYPE, requires_grad=True)
    h0 = torch.randn(2, 3, dtype=DTYPE, requires_grad=True)
    for rows in (1, 2, 5):
        assert torch.autograd.gradcheck(
            lambda a, b, rows=rows: minscan.FusedScan.apply(mode, rows, a, b), (gates, h0)
        )
    assert torch.autograd.gradcheck(lambda a, b: minscan.log_scan(mode, a, b, rows=2), (gates, h0))
    stack = MinBlockStack(2, 3, 2, cell=mode, dtype=DTYPE)
    x = torch.randn(4, 2, 2, dtype=DTYPE, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: stack(x)[0], (x,))


@pytest.mark.parametrize("mode", list(LAYERS))
def test_shapes_names_init_and_attributes(mode):
    layer = LAYERS[mode](I, H, num_layers=2)
    gates = 2 if mode == "MinGRU" else 3
    shapes = {name: tuple(p.shape) for name, p in layer.named_parameters()}
    assert shapes == {
        "weight_ih_l0": (gates * H, I),
        "bias_ih_l0": (gates * H,),
        "weight_ih_l1": (gates * H, H),
        "bias_ih_l1": (gates * H,),
    }
    assert all(p.abs().max() <= 1 / math.sqrt(H) for p in layer.parameters())
    assert (layer.mode, layer.input_size, layer.hidden_size, layer.num_layers) == (mode, I, H, 2)
    assert (layer.bias, layer.batch_first, layer.bidirectional) == (True, False, False)
    assert_close(layer.init_state(B), torch.zeros(2, B, H))
    assert layer.init_state(B, dtype=DTYPE).dtype == DTYPE
    out, h_n = layer(torch.randn(T, B, I))
    assert out.shape == (T, B, H) and h_n.shape == (2, B, H) and out.dtype == torch.float32
    assert_close(h_n[-1], out[-1])
    assert [name for name, _ in LAYERS[mode](I, H, bias=False).named_parameters()] == ["weight_ih_l0"]


@pytest.mark.parametrize("scan", SCANS)
def test_float32_agrees_with_float64(scan):
    torch.manual_seed(8)
    layer = MinLSTM(I, H, 2, dtype=DTYPE)
    x = torch.randn(40, B, I, dtype=DTYPE)
    expected, _ = layer(x)
    layer.float().scan = scan
    out, _ = layer(x.float())
    assert out.dtype == torch.float32
    assert_close(out, expected.float(), rtol=1e-5, atol=1e-5)


def test_ids_read_as_one_hot_vectors_and_no_grad_changes_nothing():
    torch.manual_seed(9)
    layer = MinGRU(I, H, 2, dtype=DTYPE)
    ids = torch.randint(I, (T, B))
    expected = layer(F.one_hot(ids, I).to(DTYPE))
    assert_close(layer(ids), expected)
    with torch.no_grad():
        assert_close(layer(ids), expected)


def test_autocast_runs_the_scan_in_float32():
    layer = MinGRU(I, H)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, h_n = layer(torch.randn(T, B, I))
    assert out.dtype == h_n.dtype == torch.float32 and torch.isfinite(out).all()


def test_bad_arguments_are_refused():
    layer = MinGRU(I, H, 2)
    with pytest.raises(ValueError, match="expected input"):
        layer(torch.randn(T, B, I + 1))
    with pytest.raises(ValueError, match="expected hx"):
        layer(torch.randn(T, B, I), torch.zeros(1, B, H))
    with pytest.raises(ValueError, match="one-hot ids"):
        layer(torch.full((T, B), I))
    layer.scan = "parallel"
    with pytest.raises(ValueError, match="scan must be one of"):
        layer(torch.randn(T, B, I))
    with pytest.raises(ValueError, match="num_layers"):
        MinLSTM(I, H, 0)
    with pytest.raises(ValueError, match="cell must be one of"):
        MinBlockStack(I, H, cell="GRU")
    with pytest.raises(ValueError, match="expected a state"):
        MinBlockStack(I, H)(torch.randn(T, B, I), torch.zeros(1, B, H))


@pytest.mark.parametrize(
    ("conv", "mlp", "norm"), [(True, True, True), (False, False, False), (True, False, True)]
)
def test_block_parts_switch_off(conv, mlp, norm):
    stack = MinBlockStack(I, H, 2, conv=conv, mlp=mlp, norm=norm)
    names = {name.split(".")[2] for name, _ in stack.named_parameters() if name.startswith("blocks.0.")}
    parts = {"conv": conv, "norm": norm, "mlp": mlp, "mlp_norm": mlp and norm}
    assert names == {"cell"} | {part for part, on in parts.items() if on}
    state = stack.init_state(B)
    assert isinstance(state, tuple) == conv
    out, new_state = stack(torch.randn(T, B, I), state)
    assert out.shape == (T, B, H) and type(new_state) is type(state)


SENTENCE = "the cat sat on the mat. the rat sat on the hat. "
MODELS = {
    "MinGRU": lambda: MinGRU(16, 32, 2),
    "MinLSTM": lambda: MinLSTM(16, 32, 2),
    "block-stack": lambda: MinBlockStack(16, 32, 2, cell="MinLSTM"),
}


def _bigram_entropy(ids: list[int]) -> float:
    """The loss (nats) of the best model that sees only the previous character."""
    pairs: dict[int, dict[int, int]] = {}
    for a, b in itertools.pairwise(ids):
        pairs.setdefault(a, {}).setdefault(b, 0)
        pairs[a][b] += 1
    total = len(ids) - 1
    return -sum(n * math.log(n / sum(row.values())) for row in pairs.values() for n in row.values()) / total


@pytest.mark.parametrize("model", list(MODELS))
def test_a_two_layer_model_learns_a_sentence_by_heart(model):
    """Whether "mat" or "hat" follows "sat on the " is decided 14 characters back ("cat" / "rat"). A model
    that sees only the last character stays at the bigram loss (0.71 nats), one that sees the last 7
    (the block stack's two convolutions without their cells) at 2 ln 2 / 47 = 0.029: both far above 0.01.
    """
    torch.manual_seed(10)
    chars = sorted(set(SENTENCE))
    ids = torch.tensor([chars.index(c) for c in SENTENCE])
    embed, rnn, head = torch.nn.Embedding(len(chars), 16), MODELS[model](), torch.nn.Linear(32, len(chars))
    params = [*embed.parameters(), *rnn.parameters(), *head.parameters()]
    optimizer = torch.optim.Adam(params, lr=2e-2)
    x, y = ids[:-1, None], ids[1:]  # (T, 1) inputs, (T,) next ids
    for _ in range(150):
        optimizer.zero_grad()
        out, _ = rnn(embed(x))
        loss = F.cross_entropy(head(out[:, 0]), y)
        loss.backward()
        optimizer.step()
    assert _bigram_entropy(ids.tolist()) > 0.7
    assert loss.item() < 0.01
