"""The Kneser-Ney n-gram baseline: normalisation, a slow reference, order 1 by hand, order selection."""

import math
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from rnnlab.data import Corpus
from rnnlab.nn.ngram import KneserNeyLM, NGramCounts, discounts, select_order

LYRICS = Path("/work/shared/data/jaychou_lyrics.txt")


def _structured(n: int, vocab_size: int, seed: int) -> np.ndarray:
    """Words from a small lexicon, separated by id 0, with some noise: n-gram structure to find."""
    rng = np.random.default_rng(seed)
    words = [rng.integers(1, vocab_size - 2, size=rng.integers(2, 6)) for _ in range(12)]
    out: list[int] = []
    while len(out) < n:
        out.extend([*words[rng.integers(len(words))].tolist(), 0])
        if rng.random() < 0.1:
            out.append(int(rng.integers(1, vocab_size - 2)))  # noise
    return np.array(out[:n])  # ids vocab_size-2 and vocab_size-1 never occur in training


# --- a slow, obvious reference: dicts of tuples, the module docstring's equations line by line -----------


class ReferenceKN:
    def __init__(self, train: list[int], vocab_size: int, order: int):
        self.v, self.n = vocab_size, order
        grams = {
            k: Counter(tuple(train[i - k + 1 : i + 1]) for i in range(k - 1, len(train)))
            for k in range(1, order + 1)
        }
        self.counts = {order: grams[order]}
        for k in range(1, order):
            left = Counter(g[1:] for g in grams[k + 1])  # distinct (k+1)-gram types per suffix
            self.counts[k] = Counter({g: left[g] for g in grams[k] if left[g] > 0})
        self.d = {k: discounts(np.array(list(c.values()))) for k, c in self.counts.items()}
        self.total, self.gamma = defaultdict(float), defaultdict(float)
        for k, c in self.counts.items():
            for g, count in c.items():
                self.total[k, g[:-1]] += count
                self.gamma[k, g[:-1]] += self.d[k][min(count, 3)]

    def prob(self, context: tuple[int, ...], w: int) -> float:
        p = 1 / self.v
        for k in range(1, len(context) + 2):
            h = context[len(context) - (k - 1) :] if k > 1 else ()
            total = self.total[k, h]
            if total > 0:
                c = self.counts[k].get((*h, w), 0)
                p = (max(c - self.d[k][min(c, 3)], 0) + self.gamma[k, h] * p) / total
        return p

    def log_prob(self, ids: list[int]) -> list[float]:
        return [math.log(self.prob(tuple(ids[max(0, i - self.n + 1) : i]), ids[i])) for i in range(len(ids))]


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_matches_the_slow_reference(order):
    v = 12
    train, val = _structured(600, v, seed=0), _structured(150, v, seed=1)
    val[::17] = v - 1  # an id never seen in training, and contexts never seen
    fast = KneserNeyLM.fit(train, v, order).log_prob(val)
    slow = ReferenceKN(train.tolist(), v, order).log_prob(val.tolist())
    np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_every_distribution_sums_to_one_and_covers_the_vocabulary(order):
    v = 20
    lm = KneserNeyLM.fit(_structured(2000, v, seed=2), v, order)
    rng = np.random.default_rng(3)
    train = _structured(2000, v, seed=2)
    contexts = [rng.integers(0, v, size=rng.integers(0, 8)) for _ in range(15)]  # mostly unseen
    contexts += [train[i : i + order - 1] for i in rng.integers(0, 1900, size=15)]  # seen ones
    for context in contexts:
        p = lm.distribution(context)
        assert p.shape == (v,)
        assert abs(p.sum() - 1) < 1e-9
        assert (p > 0).all()  # ids never seen in training (v-2, v-1) included


def test_log_prob_scores_each_position_with_its_preceding_ids():
    v, order = 15, 3
    lm = KneserNeyLM.fit(_structured(1000, v, seed=4), v, order)
    stream = _structured(30, v, seed=5)
    expected = [math.log(lm.distribution(stream[max(0, i - 2) : i])[stream[i]]) for i in range(30)]
    np.testing.assert_allclose(lm.log_prob(stream), expected, rtol=1e-12)
    assert lm.evaluate(stream) == pytest.approx(-np.mean(expected))


def test_order_one_is_the_discounted_unigram_interpolated_with_uniform():
    v = 6
    train = np.array([1, 1, 1, 1, 2, 2, 2, 3, 3, 4])  # counts 4, 3, 2, 1; ids 0 and 5 unseen
    n1, n2, n3, n4 = 1, 1, 1, 1
    y = n1 / (n1 + 2 * n2)
    d = [0, 1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3]
    gamma = d[1] + d[2] + d[3] + d[3]  # one word each with count 1, 2, 3 and 3+ (4)
    counts = [0, 4, 3, 2, 1, 0]
    expected = [(max(c - d[min(c, 3)], 0) + gamma / v) / 10 for c in counts]
    np.testing.assert_allclose(KneserNeyLM.fit(train, v, 1).distribution([]), expected, rtol=1e-12)


def test_discounts_fall_back_when_an_estimate_is_out_of_range():
    # n1, n2, n3, n4 = 2, 1, 2, 1 -> Y = 0.5, D1 = 0.5, D2 = 2 - 3 * 0.5 * 2 = -1 (-> Y), D3+ = 2
    np.testing.assert_allclose(discounts(np.array([1, 1, 2, 3, 3, 4])), [0, 0.5, 0.5, 2.0])
    assert discounts(np.array([5, 7, 9]))[1:].tolist() == [0.5, 0.5, 0.5]  # no n1: nothing to estimate from


def test_higher_orders_beat_the_unigram_on_structured_text():
    v = 30
    stream = _structured(6000, v, seed=6)
    selection = select_order(stream[:5000], stream[5000:], v, orders=[1, 3])
    unigram, trigram = selection.scores
    assert trigram.val_loss < unigram.val_loss - 0.3
    assert selection.order == 3 and selection.best is trigram
    assert trigram.test_loss is None and "chosen" in selection.render_text()


def test_select_order_scores_test_and_refuses_bad_input():
    v = 10
    train, val, test = _structured(800, v, 7), _structured(200, v, 8), _structured(200, v, 9)
    selection = select_order(train, val, v, orders=range(1, 5), test=test)
    assert [s.order for s in selection.scores] == [1, 2, 3, 4]
    counts = NGramCounts(train, v, 4)
    for score in selection.scores:
        lm = KneserNeyLM(counts, score.order)
        assert score.val_loss == pytest.approx(lm.evaluate(val))
        assert score.test_ppl == pytest.approx(math.exp(lm.evaluate(test)))
    assert selection.best.val_loss == min(s.val_loss for s in selection.scores)
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        select_order(train, np.array([10]), v)
    with pytest.raises(ValueError, match="non-empty"):
        select_order(train, val[:0], v)


@pytest.mark.skipif(not LYRICS.exists(), reason=f"{LYRICS} is not here")
def test_lyrics_baseline_is_in_the_reported_range():
    corpus = Corpus.from_files([LYRICS])  # 90/5/5, train-only vocabulary with <unk>
    selection = select_order(corpus.train, corpus.val, len(corpus.vocab), orders=range(1, 8))
    bigram = selection.scores[1]
    # The issue reports an interpolated bigram at val ppl ≈ 236 and a trigram at ≈ 225 on a similar split.
    assert 200 < bigram.val_ppl < 260
    assert selection.scores[2].val_ppl < bigram.val_ppl
    # Longer contexts keep helping here (measured: order 7 at ≈ 174); the chosen order is no worse.
    assert 150 < selection.best.val_ppl <= bigram.val_ppl


def test_training_text_shorter_than_the_order_still_gives_distributions():
    for train in ([], [1], [1, 2, 1]):
        lm = KneserNeyLM.fit(train, 5, 4)
        for context in ([], [1], [1, 2, 1]):
            p = lm.distribution(context)
            assert abs(p.sum() - 1) < 1e-12 and (p > 0).all()
    assert KneserNeyLM.fit([], 5, 3).evaluate([1, 2]) == pytest.approx(math.log(5))  # uniform
