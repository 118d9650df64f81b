"""Beam search: width 1 is greedy, width 2 beats greedy where it should, bans hold, every cell's state."""

import math

import pytest
import torch
from conftest import tiny_run_argv

from rnnlab.cli import main
from rnnlab.data import Corpus
from rnnlab.errors import RnnlabError
from rnnlab.generate import SamplingConfig, generate_text
from rnnlab.generate.beam import Beam, beam_search, beam_text, length_penalty
from rnnlab.model import LanguageModel, LMOutput
from rnnlab.nn import fit_ngram
from rnnlab.rundir import RunDir


class Markov(torch.nn.Module):
    """A hand-made model: the next id's probabilities depend on the last id only (``table[last]``).

    The state is the last id, kept as a ``(1, B, 1)`` tensor so :func:`select_rows` moves it.
    """

    def __init__(self, probs: list[list[float]]):
        super().__init__()
        self.table = torch.nn.Parameter(torch.tensor(probs, dtype=torch.float64).log())

    def forward(self, ids: torch.Tensor, state=None) -> LMOutput:
        logits = self.table[ids]  # (B, T, V)
        return LMOutput(logits, ids[:, -1:].t()[..., None].double(), logits)


# ids: 0 a special, 1 "a", 2 "b", 3 "c", 4 the start. From the start "a" is likelier than "b", but
# everything after "a" is a toss-up while "b" is almost surely followed by "c": P(ac) = 0.6 * 0.25 = 0.15
# against P(bc) = 0.4 * 0.9 = 0.36. Greedy takes "a"; a beam of 2 keeps "b" alive and finds "bc".
TRAP = [
    [0.2, 0.2, 0.2, 0.2, 0.2],
    [0.0, 0.25, 0.25, 0.25, 0.25],
    [0.0, 0.05, 0.0, 0.9, 0.05],
    [0.0, 0.4, 0.3, 0.3, 0.0],
    [0.0, 0.6, 0.4, 0.0, 0.0],
]
START = torch.tensor([4])


def test_greedy_is_not_optimal_and_a_beam_of_two_finds_the_better_sequence():
    model = Markov(TRAP)
    greedy = beam_search(model, START, 2, 1, banned=[0])
    best = beam_search(model, START, 2, 2, banned=[0])
    assert greedy.ids[0] == 1 and greedy.log_prob == pytest.approx(math.log(0.6 * 0.25))
    assert best.ids == [2, 3] and best.log_prob == pytest.approx(math.log(0.36))
    assert beam_search(model, START, 2, 2, banned=[0]) == best  # deterministic


def test_banned_ids_never_appear_even_when_they_are_the_likeliest():
    probs = [[0.9, 0.04, 0.03, 0.02, 0.01]] * 5  # id 0 takes 90% everywhere
    for width in (1, 3, 5):
        beam = beam_search(Markov(probs), START, 6, width, banned=[0])
        assert len(beam.ids) == 6 and 0 not in beam.ids
        assert beam.ids == [1] * 6  # renormalised without id 0, "a" is still the best
    assert beam_search(Markov(probs), START, 3, 2).ids == [0, 0, 0]  # nothing banned: id 0 wins


def test_length_normalisation_decides_between_an_early_stop_and_a_longer_text():
    # From the start: stop id 3 with 0.3, "a" with 0.6; after "a", "a" again with 0.72. The stop gives
    # log 0.3 = -1.20 in one id; "aaaa" gives log(0.6 * 0.72^3) = -1.50 in four, which is -1.00 per lp.
    probs = [[0.25] * 4 + [0.0], [0.0, 0.72, 0.14, 0.14, 0.0], [0.0, 0.5, 0.5, 0.0, 0.0]]
    probs += [[0.0, 0.5, 0.5, 0.0, 0.0], [0.0, 0.6, 0.1, 0.3, 0.0]]
    model = Markov(probs)
    short = beam_search(model, START, 4, 2, banned=[0], stop=[3], alpha=0.0)
    long = beam_search(model, START, 4, 2, banned=[0], stop=[3], alpha=1.0)
    assert short.ids == [3] and short.score == pytest.approx(math.log(0.3))
    assert long.ids == [1, 1, 1, 1] and long.score == pytest.approx(math.log(0.6 * 0.72**3) / 1.5)
    assert length_penalty(1) == 1.0 and length_penalty(4, 1.0) == 1.5


def test_an_empty_prefix_starts_from_the_start_probabilities():
    model = Markov(TRAP)
    start = torch.tensor([0.0, 0.6, 0.4, 0.0, 0.0])
    empty = torch.zeros(0, dtype=torch.long)
    assert beam_search(model, empty, 2, 2, banned=[0], start_probs=start).ids == [2, 3]
    assert beam_search(model, START, 0, 3) == Beam([], 0.0, 0.0)


@pytest.fixture(scope="module")
def corpus(corpus_file):
    return Corpus.from_files([corpus_file])


def _model(corpus, cell: str, residual: bool) -> LanguageModel:
    dense = fit_ngram(corpus.train, corpus.val, len(corpus.vocab), max_order=3, order=3).dense()
    torch.manual_seed(0)
    return LanguageModel(
        len(corpus.vocab), cell=cell, hidden_size=16, embedding_dim=8, ngram=dense if residual else None
    )


@pytest.mark.parametrize(
    ("cell", "residual"), [("lstm", False), ("gru", False), ("rnn", False), ("lstm", True)]
)
def test_every_cell_width_one_is_greedy_and_the_score_is_the_models(corpus, cell, residual):
    model, vocab = _model(corpus, cell, residual), corpus.vocab
    greedy = "".join(s[0] for s in generate_text(model, vocab, "the ", 30, SamplingConfig(greedy=True)))
    assert beam_text(model, vocab, "the ", 30, 1) == greedy
    prefix = torch.from_numpy(vocab.encode("the ").astype("int64"))
    beam = beam_search(model, prefix, 12, 4, banned=vocab.special_ids)
    assert not set(beam.ids) & set(vocab.special_ids) and len(beam.ids) == 12
    # Rescored in one forward over prefix + continuation: the state was carried right across the
    # beam's row selections (LSTM's (h, c), the residual model's n-gram history).
    full = torch.cat([prefix, torch.tensor(beam.ids)])
    with torch.no_grad():
        logits = model(full[None, :-1]).logits[0, len(prefix) - 1 :].double()
    logits[:, vocab.special_ids] = -torch.inf
    log_prob = torch.log_softmax(logits, -1).gather(1, torch.tensor(beam.ids)[:, None]).sum()
    assert beam.log_prob == pytest.approx(float(log_prob), abs=1e-4)
    assert beam_search(model, prefix, 12, 4, banned=vocab.special_ids) == beam
    assert model.training  # restored after the search, which ran in eval mode


def test_empty_prefix_and_unknown_characters(corpus):
    model, vocab = _model(corpus, "gru", False), corpus.vocab
    text = beam_text(model, vocab, "", 15, 3)
    assert len(text) == 15 and "<unk>" not in text and text == beam_text(model, vocab, "", 15, 3)
    with pytest.raises(RnnlabError, match="not in the vocabulary"):
        beam_text(model, vocab, "the Ω", 5, 2)
    assert len(beam_text(model, vocab, "the Ω", 5, 2, on_unknown="skip")) == 5


def test_cli_generate_beam_prints_the_beam_text(tmp_path, corpus_file, capsys):
    run = tmp_path / "run"
    assert main(tiny_run_argv(corpus_file, run, max_steps=5)) == 0
    capsys.readouterr()
    assert main(["generate", str(run), "--prefix", "the ", "--length", "25", "--beam", "3"]) == 0
    printed = capsys.readouterr().out
    model, _ = RunDir(run).load_model()
    assert printed == "the " + beam_text(model, RunDir(run).load_vocab(), "the ", 25, 3) + "\n"
    assert main(["generate", str(run), "--beam", "0"]) == 2
