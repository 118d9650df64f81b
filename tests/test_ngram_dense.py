"""The batch n-gram distributions (DenseKneserNey) against the one-context reference
(KneserNeyLM.distribution) and, for leave-one-out, a slow recount from dictionaries; and the fast
counting against np.unique."""

from collections import Counter

import numpy as np
import pytest
import torch

from rnnlab.nn.ngram import DenseKneserNey, FoldKneserNey, KneserNeyLM, NGramCounts, discounts
from rnnlab.nn.ngram.counts import lookup, unique_sorted


def stream_context(ids: np.ndarray, positions: np.ndarray, length: int) -> np.ndarray:
    """``(N, length)`` the ``length`` ids before each position of ``ids`` (-1 before the start)."""
    offsets = np.arange(-length, 0)
    index = np.asarray(positions)[:, None] + offsets
    out = np.asarray(ids, dtype=np.int64)[np.maximum(index, 0)]
    out[index < 0] = -1
    return out


def _text(seed: int, n: int, v: int) -> np.ndarray:
    """A stream with repeats (so high orders are seen more than once) and ids 0..v-2 (v-1 never seen)."""
    rng = np.random.default_rng(seed)
    words = [rng.integers(0, v - 1, size=rng.integers(2, 6)) for _ in range(12)]
    out = np.concatenate([words[i] for i in rng.integers(0, len(words), size=n // 3)])
    noise = rng.random(out.size) < 0.05
    out[noise] = rng.integers(0, v - 1, size=noise.sum())
    return out[:n].astype(np.int64)


def _dense(counts: NGramCounts, order: int, rows: str) -> DenseKneserNey:
    """The model with its orders > 1 scattered row by row ("sparse"), all added as dense matrices
    ("dense"), or as its own rule picks ("auto")."""
    pick = {"auto": None, "sparse": (), "dense": tuple(range(1, order))}[rows]
    return DenseKneserNey(counts, order, pick)


ROWS = ["auto", "sparse", "dense"]


@pytest.mark.parametrize("order", [1, 2, 3, 5, 7])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("rows", ROWS)
def test_plain_matches_distribution_at_every_position(order, seed, rows):
    v = 9
    train = _text(seed, 600, v)
    other = _text(seed + 10, 150, v)  # contexts unseen in training too
    counts = NGramCounts(train, v, 7)
    lm, dense = KneserNeyLM(counts, order), _dense(counts, order, rows)
    for stream in (train, other):
        positions = np.arange(stream.size)
        context = stream_context(stream, positions, order - 1)
        got = dense.probs_flat(context, dtype=torch.float64).numpy()
        for i in positions:
            want = lm.distribution(stream[max(i - (order - 1), 0) : i])
            np.testing.assert_allclose(got[i], want, rtol=1e-9, atol=0)
        np.testing.assert_allclose(got.sum(1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("order", [1, 3, 7])
def test_next_log_probs_matches_distribution(order):
    v = 9
    train, other = _text(0, 600, v), _text(11, 100, v)
    counts = NGramCounts(train, v, 7)
    lm, dense = KneserNeyLM(counts, order), DenseKneserNey(counts, order)
    for stream in (train, other):
        for i in range(0, stream.size, 7):
            want = lm.distribution(stream[:i])
            got = dense.next_log_probs(stream[:i], dtype=torch.float64).exp().numpy()
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=0)


def test_batch_with_history_matches_the_stream():
    v, order, t = 11, 5, 16
    train = _text(3, 2000, v)
    dense = DenseKneserNey(NGramCounts(train, v, order), order)
    starts = np.array([0, 2, 100, 1500])
    ids = train[starts[:, None] + np.arange(t)]
    history = stream_context(train, starts, order - 2)
    got = dense.log_probs(torch.from_numpy(ids), torch.from_numpy(history), dtype=torch.float64)
    lm = KneserNeyLM(NGramCounts(train, v, order), order)
    for r, s in enumerate(starts):
        for j in range(t):
            i = s + j + 1  # the position the distribution predicts
            want = np.log(lm.distribution(train[max(i - (order - 1), 0) : i]))
            np.testing.assert_allclose(got[r, j].numpy(), want, rtol=1e-9)


def test_float32_is_close_to_float64():
    v, order = 9, 7
    train = _text(5, 800, v)
    dense = DenseKneserNey(NGramCounts(train, v, order), order)
    context = stream_context(train, np.arange(train.size), order - 1)
    p64 = dense.probs_flat(context, dtype=torch.float64)
    p32 = dense.probs_flat(context, dtype=torch.float32)
    torch.testing.assert_close(p32.double(), p64, rtol=1e-5, atol=0)


# --- leave-one-out against a slow reference built from dictionaries -----------------------------------


def _reference_loo(train: np.ndarray, v: int, order: int, i: int) -> np.ndarray:
    """P(. | the context of position i) from the counts of ``train`` without the events ending at i.

    Raw counts of every k-gram ending at ``i`` drop by one; continuation counts are recounted from the
    raw ones; discounts stay those of the full counts.
    """
    t = [int(x) for x in train]

    def raw_counts(skip):
        raw = {k: Counter() for k in range(1, order + 1)}
        for j in range(len(t)):
            if j == skip:
                continue
            for k in range(1, min(order, j + 1) + 1):
                raw[k][tuple(t[j - k + 1 : j + 1])] += 1
        return raw

    def model_counts(raw):
        out = {order: raw[order]}
        for k in range(1, order):
            cont = Counter()
            for gram in raw[k + 1]:
                if raw[k + 1][gram] > 0:
                    cont[gram[1:]] += 1
            out[k] = cont
        return out

    full = model_counts(raw_counts(None))
    d = {k: discounts(np.array([c for c in full[k].values() if c > 0])) for k in full}
    loo = model_counts(raw_counts(i))
    context = tuple(t[max(i - (order - 1), 0) : i])
    p = np.full(v, 1.0 / v)
    for k in range(1, order + 1):
        if k - 1 > len(context):
            break
        h = context[len(context) - (k - 1) :] if k > 1 else ()
        c = np.array([loo[k].get((*h, w), 0) for w in range(v)], dtype=float)
        total = c.sum()
        if total == 0:
            continue
        dk = d[k][np.minimum(c, 3).astype(int)]
        gamma = dk[c > 0].sum()
        p = (np.maximum(c - dk, 0) + gamma * p) / total
    return p


@pytest.mark.parametrize("order", [1, 2, 4, 6])
@pytest.mark.parametrize("rows", ROWS)
def test_leave_one_out_matches_recounting(order, rows):
    v = 7
    train = _text(7, 260, v)
    dense = _dense(NGramCounts(train, v, order), order, rows)
    positions = np.arange(train.size)
    context = stream_context(train, positions, order - 1)
    got = dense.probs_flat(context, targets=train, dtype=torch.float64).numpy()
    for i in positions:
        np.testing.assert_allclose(got[i], _reference_loo(train, v, order, i), rtol=1e-9, atol=0)


def test_leave_one_out_of_a_singleton_context_passes_the_lower_order_through():
    v, order = 5, 3
    train = np.array([0, 1, 2, 0, 1, 3, 4, 4, 4, 0, 1, 2], dtype=np.int64)  # "3 4" occurs once
    dense = DenseKneserNey(NGramCounts(train, v, order), order)
    i = 6  # predicts 4 after (1, 3): the only time that context is seen
    got = dense.probs_flat(stream_context(train, np.array([i]), 2), targets=train[[i]], dtype=torch.float64)
    np.testing.assert_allclose(got[0].numpy(), _reference_loo(train, v, order, i), rtol=1e-9)


# --- counting: the value-sort counter gives np.unique's arrays ----------------------------------------


def _reference_counts(t: np.ndarray, v: int, max_order: int) -> dict:
    """The counts as np.unique makes them (the code this counter replaced)."""
    n = t.size
    context_keys, keys, raw, continuation = [np.zeros(1, dtype=np.int64)], {}, {}, {}
    cids = [np.zeros(n, dtype=np.int64)]
    for k in range(1, max_order + 1):
        m = k - 1
        if m > 0:
            pairs = cids[m - 1][m:] * v + t[: max(n - m, 0)]
            u, inverse = np.unique(pairs, return_inverse=True)
            context_keys.append(u)
            cids.append(np.concatenate([np.full(m, -1, dtype=np.int64), inverse.reshape(-1)]))
        keys[k], first, raw[k] = np.unique(cids[m][m:] * v + t[m:], return_index=True, return_counts=True)
        if k > 1:
            pos = first + m
            index, _ = lookup(keys[k - 1], cids[m - 1][pos] * v + t[pos])
            continuation[k - 1] = np.bincount(index, minlength=keys[k - 1].size)
    return {"context_keys": context_keys, "keys": keys, "raw": raw, "continuation": continuation}


@pytest.mark.parametrize(
    ("n", "v", "order"), [(1, 3, 3), (2, 3, 5), (50, 4, 7), (3000, 9, 7), (3000, 300, 4)]
)
def test_counting_gives_np_uniques_arrays(n, v, order):
    t = _text(n, n, v) if n > 2 else np.arange(n) % v
    counts, want = NGramCounts(t, v, order), _reference_counts(t, v, order)
    assert len(counts.context_keys) == len(want["context_keys"])
    for got, expected in zip(counts.context_keys, want["context_keys"]):
        np.testing.assert_array_equal(got, expected)
    for name in ("keys", "raw", "continuation"):
        assert getattr(counts, name).keys() == want[name].keys()
        for k in want[name]:
            np.testing.assert_array_equal(getattr(counts, name)[k], want[name][k])
    stored = counts.arrays()  # what a run directory stores: counts as int32, keys as int64
    assert stored["raw.1"].dtype == np.int32 and stored["keys.1"].dtype == np.int64
    again = NGramCounts.from_arrays(stored)
    for name in ("keys", "raw", "continuation"):
        for k in getattr(counts, name):
            np.testing.assert_array_equal(getattr(again, name)[k], getattr(counts, name)[k])
            assert getattr(again, name)[k].dtype == np.int64
    assert (again.vocab_size, again.max_order, again.num_counted) == (v, order, n)


def test_unique_sorted_is_np_unique_also_where_it_falls_back_to_argsort():
    rng = np.random.default_rng(0)
    for x in (rng.integers(0, 50, 1000), rng.integers(0, 2**62, 1000), np.array([5])):
        got = unique_sorted(x.astype(np.int64))
        want = np.unique(x, return_inverse=True, return_index=True, return_counts=True)
        for a, b in zip(got, (want[0], want[2], want[1], want[3])):
            np.testing.assert_array_equal(a, np.asarray(b).reshape(-1))


def test_each_training_position_is_scored_by_the_model_counted_without_its_fold():
    v, order, t, k = 9, 4, 20, 3
    train = _text(5, 900, v)
    folds = FoldKneserNey(train, v, order, k)
    np.testing.assert_array_equal(folds.bounds, [0, 300, 600, 900])
    # rows inside fold 0, across the 0|1 cut, inside fold 2, and ending on the stream's last id
    starts = np.array([3, 290, 640, 900 - t - 1])
    ids = train[starts[:, None] + np.arange(t)]
    got = folds.log_probs(
        torch.from_numpy(ids), torch.from_numpy(starts), torch.float64
    )  # contexts: the stream's
    for r, s in enumerate(starts):
        for j in range(t):
            i = s + j + 1  # the position predicted: its fold picks the counts
            f = i // 300
            rest = np.concatenate([train[: 300 * f], train[300 * (f + 1) :]])
            lm = KneserNeyLM(NGramCounts(rest, v, order), order)
            want = np.log(lm.distribution(train[max(i - (order - 1), 0) : i]))
            np.testing.assert_allclose(got[r, j].numpy(), want, rtol=1e-9)
    np.testing.assert_allclose(got.exp().sum(-1).numpy(), 1.0, rtol=1e-12)
    each = folds.log_probs(torch.from_numpy(ids), torch.from_numpy(starts), torch.float64, by_order=True)
    np.testing.assert_allclose(each[:, :, -1].numpy(), got.numpy(), rtol=1e-12)  # the top order's
    # The context ids looked up once per position are those of a lookup of the batch's own contexts.
    pos = (starts[:, None] + np.arange(t)).reshape(-1)
    index = pos[:, None] + np.arange(2 - order, 1)
    context = np.where(index >= 0, train[np.maximum(index, 0)], -1)
    for cached, looked_up in zip(folds.cids, folds.model.context_ids(context, folds.fold_of(pos + 1))):
        np.testing.assert_array_equal(cached[pos], looked_up)


def test_cross_fitting_scores_repeated_text_as_held_out_text_while_leave_one_out_does_not():
    # Verses that recur: leave-one-out still counts a line's twin elsewhere in the text, so it is far
    # surer of the training text than of new verses; counts without the position's fold are not.
    rng = np.random.default_rng(0)
    v, order = 30, 5
    verses = [rng.integers(0, v, size=40) for _ in range(60)]
    song = lambda: np.concatenate([verses[i] for i in rng.choice(60, 6)] * 2)  # noqa: E731
    train, new = np.concatenate([song() for _ in range(40)]), np.concatenate([song() for _ in range(4)])
    dense = DenseKneserNey(NGramCounts(train, v, order), order)

    def nll(probs, ids):
        return -np.log(probs.numpy()[np.arange(ids.size - 1), ids[1:]]).mean()

    ctx = stream_context(train, np.arange(1, train.size), order - 1)
    loo = nll(dense.probs_flat(ctx, targets=train[1:], dtype=torch.float64), train)
    held = nll(
        dense.probs_flat(stream_context(new, np.arange(1, new.size), order - 1), dtype=torch.float64), new
    )
    folds = FoldKneserNey(train, v, order, 5)
    x = torch.from_numpy(train[:-1][None])
    fit = folds.log_probs(x, torch.zeros(1, dtype=torch.long), torch.float64)[0]
    crossed = -fit[torch.arange(train.size - 1), torch.from_numpy(train[1:])].mean().item()
    assert loo < 0.6 * held
    assert abs(crossed - held) < 0.5 * abs(loo - held)


def test_cross_fitting_refuses_fewer_than_two_folds():
    with pytest.raises(ValueError, match="at least 2 folds"):
        FoldKneserNey(np.arange(10) % 3, 3, 2, 1)


@pytest.mark.parametrize("order", [1, 3, 6])
@pytest.mark.parametrize("left_out", [False, True])
@pytest.mark.parametrize("rows", ["sparse", "dense"])
def test_every_orders_distribution_ends_in_the_full_one_and_each_sums_to_one(order, left_out, rows):
    v = 9
    train, other = _text(2, 700, v), _text(12, 120, v)
    dense = _dense(NGramCounts(train, v, 7), order, rows)
    for stream in (train, other):
        positions = np.arange(1, stream.size)
        context = stream_context(stream, positions, order - 1)
        targets = stream[positions] if left_out and stream is train else None
        each = dense.probs_by_order(context, targets, dtype=torch.float64)
        assert each.shape == (positions.size, order, v)
        np.testing.assert_allclose(
            each[:, -1].numpy(), dense.probs_flat(context, targets, torch.float64).numpy(), rtol=1e-12
        )
        np.testing.assert_allclose(each.sum(-1).numpy(), 1.0, rtol=1e-12)


@pytest.mark.parametrize("order", [2, 5])
@pytest.mark.parametrize("rows", ["sparse", "dense"])
def test_the_one_context_path_gives_every_orders_distribution_as_the_batch_path(order, rows):
    v = 9
    train, other = _text(4, 600, v), _text(14, 100, v)
    dense = _dense(NGramCounts(train, v, 7), order, rows)
    for stream in (train, other):
        positions = np.arange(0, stream.size, 5)
        batch = dense.probs_by_order(stream_context(stream, positions, order - 1), dtype=torch.float64)
        for row, i in enumerate(positions):
            one = dense.next_log_probs(stream[max(i - order + 1, 0) : i], torch.float64, by_order=True)
            np.testing.assert_allclose(one.exp().numpy(), batch[row].numpy(), rtol=1e-10)


def test_an_unseen_context_passes_the_order_below_through():
    v, order = 5, 3
    train = np.array([0, 1, 2, 0, 1, 3, 4, 4, 4, 0, 1, 2], dtype=np.int64)
    dense = DenseKneserNey(NGramCounts(train, v, order), order)
    each = dense.probs_by_order(np.array([[2, 2]]), dtype=torch.float64)[0]  # "2 2" never seen; "2" is
    torch.testing.assert_close(each[2], each[1])
    assert not torch.allclose(each[1], each[0])


def test_cross_fitted_orders_end_in_the_cross_fitted_distribution():
    v, order, t = 9, 4, 12
    train = _text(6, 800, v)
    folds = FoldKneserNey(train, v, order, 4)
    starts = torch.tensor([0, 190, 500])
    ids = torch.from_numpy(train)[starts[:, None] + torch.arange(t)]
    each = folds.log_probs(ids, starts, torch.float64, by_order=True)
    assert each.shape == (3, t, order, v)
    torch.testing.assert_close(each[:, :, -1], folds.log_probs(ids, starts, torch.float64))


def test_orders_with_long_rows_are_dense_and_orders_with_short_rows_are_not():
    # A random stream of 20,000 over 20 ids: its 400 two-id contexts are each followed by most ids
    # (rows ~ V long); its 8,000 three-id contexts by two or three.
    rng = np.random.default_rng(0)
    v = 20
    counts = NGramCounts(rng.integers(0, v, 20_000), v, 5)
    assert DenseKneserNey(counts, 5)._dense.keys() == {0, 1, 2}  # order 1, always; orders 2 and 3
    # A text of 400 ids where each context has one continuation: no order is worth a dense matrix.
    cycle = np.tile(np.arange(400), 5)
    assert DenseKneserNey(NGramCounts(cycle, 400, 3), 3)._dense.keys() == {0}
