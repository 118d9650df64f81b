"""Adaptive evaluation: cache, dynamic evaluation and mixing never peek ahead, and they help on repeats."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnlab.model import LanguageModel, LMOutput
from rnnlab.train.adaptive import AdaptiveConfig, stream_probs
from rnnlab.train.evaluate import evaluate_loss

V = 12


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return LanguageModel(V, hidden_size=16, embedding_dim=8).eval()


def repeated_stream(seed=0, length=150):
    rng = np.random.default_rng(seed)
    piece = rng.integers(V, size=length)
    return np.concatenate([piece, piece])  # the second half repeats the first exactly


def test_plain_stream_scoring_equals_evaluate_loss(model):
    ids = repeated_stream()
    probs = stream_probs(model, ids, AdaptiveConfig(num_steps=7))
    loss, count = evaluate_loss(model, ids)
    assert count == len(ids) - 1
    assert probs.mix(0.0, None, 0.0) == pytest.approx(loss, rel=1e-5)


@pytest.mark.parametrize(
    "cfg", [AdaptiveConfig(num_steps=8, cache_size=100), AdaptiveConfig(num_steps=8, dynamic_lr=0.5)]
)
def test_scores_never_depend_on_characters_not_yet_scored(model, cfg):
    ids = repeated_stream()
    changed = ids.copy()
    changed[200:] = (changed[200:] + 1) % V
    a, b = stream_probs(model, ids, cfg), stream_probs(model, changed, cfg)
    # position t scores ids[t+1] from ids[:t+1]: everything before 199 is unaffected
    np.testing.assert_allclose(a.model[:199], b.model[:199], rtol=1e-6)
    assert not np.allclose(a.model[199:], b.model[199:])  # ...while the changed characters do show
    if cfg.cache_size:  # the cache's scores too (a missing cache fails here rather than skip the check)
        np.testing.assert_allclose(a.cache[:199], b.cache[:199], rtol=1e-6)


class BigramStateModel(torch.nn.Module):
    """A stand-in whose hidden state is the one-hot of the last two characters: the cache's keys are
    then exact contexts, so what it recalls is easy to predict."""

    def __init__(self):
        super().__init__()
        self.bias = torch.nn.Parameter(torch.zeros(V))

    def forward(self, ids, state=None):
        prev = ids[:, :1] if state is None else state
        shifted = torch.cat([prev, ids[:, :-1]], 1)
        hidden = 3.0 * torch.cat([F.one_hot(ids, V), F.one_hot(shifted, V)], -1).float()  # (B, T, 2V)
        logits = self.bias.expand(*ids.shape, V)
        return LMOutput(logits, ids[:, -1:], hidden)


def test_cache_recalls_what_followed_the_same_context():
    ids = repeated_stream()
    probs = stream_probs(
        BigramStateModel(), ids, AdaptiveConfig(num_steps=10, cache_size=300, cache_theta=1.0)
    )
    assert probs.cache[:140].mean() < 0.3 < 0.5 < probs.cache[160:].mean()  # the first copy is recalled
    assert probs.mix(0.5, None, 0.0) < probs.mix(0.0, None, 0.0)


def test_dynamic_evaluation_exploits_repeats(model):
    ids = repeated_stream()
    plain = stream_probs(model, ids, AdaptiveConfig(num_steps=10))
    dynamic = stream_probs(model, ids, AdaptiveConfig(num_steps=10, dynamic_lr=1.0, dynamic_decay=0.0))
    second_half = slice(160, None)
    assert -np.log(dynamic.model[second_half]).mean() < -np.log(plain.model[second_half]).mean()


def test_dynamic_evaluation_leaves_the_model_untouched(model):
    before = [p.detach().clone() for p in model.parameters()]
    stream_probs(model, repeated_stream(), AdaptiveConfig(num_steps=10, dynamic_lr=1.0))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
