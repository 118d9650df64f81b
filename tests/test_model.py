"""LanguageModel: one output type for every cell, one-hot as a gather, the bidirectional leak."""

import pytest
import torch
import torch.nn.functional as F

from rnnlab.data import one_hot
from rnnlab.errors import RnnlabError
from rnnlab.losses import cross_entropy
from rnnlab.model import LanguageModel, LMOutput
from rnnlab.nn import LSTM
from rnnlab.nn.state import detach_state, select_rows, state_tensors, zero_state

V = 11


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("impl", ["torch", "scratch"])
def test_forward_shapes_and_state_protocol(cell, impl):
    torch.manual_seed(0)
    model = LanguageModel(V, cell=cell, impl=impl, hidden_size=8, num_layers=2, embedding_dim=6)
    ids = torch.randint(V, (3, 5))
    out = model(ids)
    assert isinstance(out, LMOutput)
    assert out.logits.shape == (3, 5, V) and out.outputs.shape == (3, 5, 8)
    # Feeding the text in two halves with the state carried equals one pass over all of it.
    first = model(ids[:, :2])
    second = model(ids[:, 2:], detach_state(first.state))
    torch.testing.assert_close(torch.cat([first.logits, second.logits], 1), out.logits)
    for s, z in zip(state_tensors(out.state), state_tensors(model.init_state(3))):
        assert s.shape == z.shape == (2, 3, 8)
    row = model(ids[1:2], select_rows(model.init_state(3), [1]))
    torch.testing.assert_close(row.logits, out.logits[1:2])


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_torch_and_scratch_models_are_interchangeable(cell):
    torch.manual_seed(0)
    a = LanguageModel(V, cell=cell, impl="torch", hidden_size=8, num_layers=2).double()
    b = LanguageModel(V, cell=cell, impl="scratch", hidden_size=8, num_layers=2).double()
    b.load_state_dict(a.state_dict())
    ids = torch.randint(V, (4, 6))
    torch.testing.assert_close(a(ids).logits, b(ids).logits)


def test_onehot_gather_equals_onehot_matmul():
    """The scratch one-hot encoder gathers columns of W_ih: the same as one_hot(x) @ W_ih^T."""
    torch.manual_seed(0)
    model = LanguageModel(V, cell="lstm", impl="scratch", hidden_size=8, encoder="onehot").double()
    ids = torch.randint(V, (3, 7))
    gathered = model(ids)
    x = one_hot(ids.t(), V, dtype=torch.float64)  # (T, B, V): the notes' input
    output, _ = model.rnn(x)
    torch.testing.assert_close(gathered.outputs, output.transpose(0, 1))
    # ... and the torch impl (which materialises the one-hot matrix) agrees with the gather.
    ref = LanguageModel(V, cell="lstm", impl="torch", hidden_size=8, encoder="onehot").double()
    ref.load_state_dict(model.state_dict())
    torch.testing.assert_close(ref(ids).logits, gathered.logits)
    W = model.rnn.weight_ih_l0
    torch.testing.assert_close(W.t()[ids], one_hot(ids, V, dtype=torch.float64) @ W.t())


def test_weight_tying():
    model = LanguageModel(V, hidden_size=8, embedding_dim=8, tie_weights=True)
    assert model.decoder.weight is model.embedding.weight
    with pytest.raises(RnnlabError, match="--tie-weights"):
        LanguageModel(V, hidden_size=8, embedding_dim=6, tie_weights=True)


def test_bidirectional_is_refused_with_the_reason():
    with pytest.raises(RnnlabError, match="reads the very character it must predict"):
        LanguageModel(V, bidirectional=True)


def _fit_next_char(bidirectional: bool, steps: int = 150) -> float:
    """Train on fresh random text every step (nothing to memorise); return the last step's loss."""
    torch.manual_seed(0)
    rnn = LSTM(V, 16, bidirectional=bidirectional)
    head = torch.nn.Linear(16 * (2 if bidirectional else 1), V)
    opt = torch.optim.Adam([*rnn.parameters(), *head.parameters()], lr=0.03)
    for _ in range(steps):
        ids = torch.randint(V, (16, 21))
        x, y = ids[:, :-1], ids[:, 1:]
        out, _ = rnn(F.one_hot(x.t(), V).float())
        loss = cross_entropy(head(out).transpose(0, 1), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()


def test_bidirectional_layer_leaks_the_answer():
    """On random, incompressible text no causal model can beat ln V; a bidirectional one 'does',
    because its backward half has read x[t+1], the very target at t."""
    uni, bi = _fit_next_char(False), _fit_next_char(True)
    assert bi < 0.3 and uni > 2.2  # ln(11) = 2.40


def test_zero_state_shapes():
    rnn = torch.nn.LSTM(4, 6, num_layers=3)
    h, c = zero_state(rnn, 5)
    assert h.shape == c.shape == (3, 5, 6)
    assert zero_state(torch.nn.GRU(4, 6, bidirectional=True), 2).shape == (2, 2, 6)
