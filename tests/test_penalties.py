"""L1 / L2 / elastic-net penalties: hand-computed values and gradients, which weights count, weight decay."""

import pytest
import torch
from torch.testing import assert_close

from rnnlab.losses import elastic_net_penalty, l1_penalty, l2_penalty, penalized_weights
from rnnlab.model import LanguageModel
from rnnlab.nn.batchnorm import BatchNorm

DTYPE = torch.float64


def _weights() -> list[torch.Tensor]:
    a = torch.tensor([[1.0, -2.0], [0.5, 0.0]], dtype=DTYPE, requires_grad=True)
    b = torch.tensor([[-3.0]], dtype=DTYPE, requires_grad=True)
    return [a, b]


def test_l1_value_and_gradient_by_hand():
    a, b = _weights()
    penalty = l1_penalty([a, b])
    assert_close(penalty, torch.tensor(1 + 2 + 0.5 + 0 + 3, dtype=DTYPE))
    penalty.backward()
    assert_close(a.grad, torch.tensor([[1.0, -1.0], [1.0, 0.0]], dtype=DTYPE))  # sign, 0 at 0
    assert_close(b.grad, torch.tensor([[-1.0]], dtype=DTYPE))


def test_l2_value_and_gradient_by_hand():
    a, b = _weights()
    penalty = l2_penalty([a, b])
    assert_close(penalty, torch.tensor(1 + 4 + 0.25 + 0 + 9, dtype=DTYPE))  # no ½
    penalty.backward()
    assert_close(a.grad, 2 * a.detach())
    assert_close(b.grad, 2 * b.detach())


@pytest.mark.parametrize("l1_ratio", [0.0, 0.3, 1.0])
def test_elastic_net_mixes_l1_and_l2(l1_ratio):
    a, b = _weights()
    penalty = elastic_net_penalty([a, b], l1_ratio)
    assert_close(penalty, torch.tensor(l1_ratio * 6.5 + (1 - l1_ratio) * 14.25, dtype=DTYPE))
    penalty.backward()
    assert_close(a.grad, l1_ratio * a.detach().sign() + (1 - l1_ratio) * 2 * a.detach())


def test_penalties_accept_generators_and_empty_input():
    a, b = _weights()
    assert_close(l2_penalty(p for p in (a, b)), torch.tensor(14.25, dtype=DTYPE))
    assert float(l1_penalty([])) == 0.0 and float(l2_penalty([])) == 0.0
    with pytest.raises(ValueError, match="l1_ratio"):
        elastic_net_penalty([a], 1.5)


def test_penalized_weights_are_the_matrices_once():
    model = LanguageModel(7, hidden_size=4, embedding_dim=4, tie_weights=True, num_layers=2)
    names = {id(p): n for n, p in model.named_parameters()}
    chosen = [names[id(p)] for p in penalized_weights(model)]
    # The tied embedding/decoder matrix once; no biases.
    assert chosen == [
        "embedding.weight",
        "rnn.weight_ih_l0",
        "rnn.weight_hh_l0",
        "rnn.weight_ih_l1",
        "rnn.weight_hh_l1",
    ]
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), BatchNorm(2, 2), torch.nn.LayerNorm(2))
    assert [p.shape for p in penalized_weights(net)] == [torch.Size([2, 3])]  # norm scales are 1-D
    net[0].weight.requires_grad_(False)
    assert penalized_weights(net) == []


def _one_step(optimizer_cls, weight_decay: float, l2: float, **kwargs) -> torch.Tensor:
    """One optimiser step on a fixed quadratic from fixed weights, with decay and/or L2 in the loss."""
    w = torch.nn.Parameter(torch.tensor([[1.0, -2.0], [3.0, 0.5]], dtype=DTYPE))
    opt = optimizer_cls([w], lr=0.1, weight_decay=weight_decay, **kwargs)
    target = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=DTYPE)
    # Columns on very different scales, so Adam's per-weight normalisation matters.
    loss = ((w - target) ** 2 * torch.tensor([1.0, 100.0], dtype=DTYPE)).sum()
    (loss + l2 * l2_penalty([w])).backward()
    opt.step()
    return w.detach()


@pytest.mark.parametrize("optimizer_cls", [torch.optim.SGD, torch.optim.Adam])
def test_lambda_times_l2_is_coupled_weight_decay_two_lambda(optimizer_cls):
    lam = 0.05
    assert_close(_one_step(optimizer_cls, 0.0, lam), _one_step(optimizer_cls, 2 * lam, 0.0))


def test_adamw_decay_is_decoupled_and_differs_from_l2():
    lam = 0.05
    decoupled = _one_step(torch.optim.AdamW, 2 * lam, 0.0)
    coupled = _one_step(torch.optim.Adam, 0.0, lam)
    assert not torch.allclose(decoupled, coupled)
    # AdamW = the undecayed Adam step, then every weight shrunk by the same factor (1 - lr * decay) first.
    plain = _one_step(torch.optim.Adam, 0.0, 0.0)
    start = torch.tensor([[1.0, -2.0], [3.0, 0.5]], dtype=DTYPE)
    assert_close(decoupled, plain - 0.1 * 2 * lam * start)
