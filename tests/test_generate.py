"""Sampling: prefix primed once, state carried, filters, seeds, unknown characters."""

import pytest
import torch

from rnnlab.data import Vocab
from rnnlab.errors import RnnlabError
from rnnlab.generate import SamplingConfig, generate_text, next_ids, sample_ids
from rnnlab.model import LanguageModel

TEXT = "分开 不分开 我不能再想 我不要再想\n" * 3


@pytest.fixture
def setup():
    torch.manual_seed(0)
    vocab = Vocab.build(TEXT)
    return LanguageModel(len(vocab), hidden_size=16, embedding_dim=8), vocab


def test_carried_state_equals_rerunning_the_whole_text(setup):
    """Each step feeds only the newest id: the logits must equal a full re-run of prefix + output."""
    model, vocab = setup
    prefix = torch.from_numpy(vocab.encode("分开").astype("int64"))
    out = torch.cat(list(sample_ids(model, prefix, 6, SamplingConfig(greedy=True))))
    full = torch.cat([prefix, out])
    logits = model(full[None, :-1]).logits[0, len(prefix) - 1 :]
    assert torch.equal(logits.argmax(-1), out)


def test_seeded_samples_repeat_and_batch(setup):
    model, vocab = setup
    a = list(generate_text(model, vocab, "分开", 30, seed=1))
    b = list(generate_text(model, vocab, "分开", 30, seed=1))
    c = list(generate_text(model, vocab, "分开", 30, seed=2))
    assert a == b and a != c
    many = list(generate_text(model, vocab, "分开", 10, num_samples=4, seed=1))
    assert len(many) == 10 and all(len(step) == 4 for step in many)


def test_empty_prefix_starts_from_training_characters(setup):
    model, vocab = setup
    text = "".join(s[0] for s in generate_text(model, vocab, "", 20, seed=0))
    assert len(text) == 20 and "<unk>" not in text


def test_filters():
    logits = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    g = torch.Generator().manual_seed(0)
    assert next_ids(logits, SamplingConfig(greedy=True), g).item() == 3
    assert next_ids(logits, SamplingConfig(temperature=0), g).item() == 3
    draws = {next_ids(logits, SamplingConfig(top_k=2), g).item() for _ in range(200)}
    assert draws == {2, 3}
    # softmax([0,1,2,3]) = [.03, .09, .24, .64]: top-p 0.5 keeps only id 3, top-p 0.8 keeps 2 and 3.
    assert {next_ids(logits, SamplingConfig(top_p=0.5), g).item() for _ in range(100)} == {3}
    assert {next_ids(logits, SamplingConfig(top_p=0.8), g).item() for _ in range(300)} == {2, 3}


def test_bad_requests_are_clear(setup):
    model, vocab = setup
    with pytest.raises(RnnlabError, match="not in the training vocabulary: 'xz'"):
        list(generate_text(model, vocab, "分x开z", 5))
    assert len(list(generate_text(model, vocab, "分x开", 5, on_unknown="skip"))) == 5
    with pytest.raises(RnnlabError, match="larger than the vocabulary"):
        list(generate_text(model, vocab, "分开", 5, SamplingConfig(top_k=1000)))
    with pytest.raises(RnnlabError, match="--temperature"):
        SamplingConfig(temperature=-1)
