"""Property tests: Vocab round trips on any Unicode, the samplers and the splitter on any sizes."""

import itertools

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnnlab.data import (
    UNK,
    Vocab,
    consecutive_batch_count,
    consecutive_batches,
    random_batch_count,
    random_batches,
    read_text,
    split_text,
)
from rnnlab.data.batches import fit_batch_shape
from rnnlab.errors import RnnlabError

# CJK, emoji, combining marks, \r\n, astral planes, controls: whatever a corpus may hold.
UNICODE = st.lists(
    st.one_of(
        st.characters(),
        st.sampled_from(["分", "开", "🎵", "👩‍👩‍👧", "é", "\r\n", "\r", "\n", "\t", "\ufeff", "\x00"]),
    ),
    max_size=120,
).map("".join)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(UNICODE)
def test_vocab_round_trip_any_unicode(text):
    vocab = Vocab.build(text)
    ids = vocab.encode(text, on_unknown="error")
    assert vocab.decode(ids) == text
    assert Vocab.from_dict(vocab.to_dict()) == vocab
    assert len(vocab) == len(set(text)) + 1


@FAST
@given(UNICODE, UNICODE)
def test_unknown_characters_become_unk_one_for_one(train, other):
    vocab = Vocab.build(train)
    decoded = vocab.decode(vocab.encode(other))
    expected = "".join(c if c in set(train) else UNK for c in other)
    assert decoded == expected
    assert len(vocab.encode(other, on_unknown="skip")) == sum(c in set(train) for c in other)


@FAST
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=200))
def test_read_text_normalises_newlines_only(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("p") / "t.txt"
    path.write_bytes(text.encode("utf-8"))
    expected = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if not expected.strip() or "\x00" in text:  # blank, or binary by its NUL byte: refused
        with pytest.raises(RnnlabError, match=r"is empty|only whitespace|looks binary"):
            read_text(path)
        return
    assert read_text(path) == expected


@FAST
@given(
    st.integers(1, 5000),
    st.floats(0.01, 0.98),
    st.floats(0.0, 1.0),
)
def test_split_is_a_partition(n, train_frac, val_share):
    text = "x" * n
    val_frac = (1 - train_frac) * val_share
    fractions = (train_frac, val_frac, 1 - train_frac - val_frac)
    if round(n * train_frac) == 0:
        with pytest.raises(RnnlabError, match="train split is empty"):
            split_text(text, fractions)
        return
    parts = split_text(text, fractions)
    assert "".join(parts) == text
    assert abs(len(parts[0]) - n * train_frac) <= 1 and abs(len(parts[1]) - n * val_frac) <= 1


@FAST
@given(st.integers(2, 3000), st.integers(1, 16), st.integers(1, 40), st.integers(0, 2**31))
def test_random_batches_properties(n, batch_size, num_steps, seed):
    ids = np.arange(n, dtype=np.uint32)
    count = random_batch_count(n, batch_size, num_steps)
    if count == 0:  # too short for one batch: refused, never an empty epoch
        with pytest.raises(RnnlabError, match="needs at least"):
            next(random_batches(ids, batch_size, num_steps))
        return
    batches = list(random_batches(ids, batch_size, num_steps, generator=torch.Generator().manual_seed(seed)))
    assert len(batches) == count
    starts = torch.cat([X[:, 0] for X, _ in batches])
    assert len(set(starts.tolist())) == len(starts)  # no window twice
    for X, Y in batches:
        assert X.shape == (batch_size, num_steps) and torch.equal(Y, X + 1)
        assert int(Y.max()) < n  # never reads past the stream


@FAST
@given(st.integers(2, 3000), st.integers(1, 16), st.integers(1, 40))
def test_consecutive_batches_properties(n, batch_size, num_steps):
    ids = np.arange(n, dtype=np.uint32)
    count = consecutive_batch_count(n, batch_size, num_steps)
    if count == 0:  # too short for one batch: refused, never an empty epoch
        with pytest.raises(RnnlabError, match="needs at least"):
            next(consecutive_batches(ids, batch_size, num_steps))
        return
    batches = list(consecutive_batches(ids, batch_size, num_steps))
    assert len(batches) == count
    for (X0, Y0), (X1, _) in itertools.pairwise(batches):
        assert torch.equal(Y0, X0 + 1) and torch.equal(X1[:, 0], X0[:, -1] + 1)
    assert int(batches[-1][1].max()) < n


@FAST
@given(
    st.integers(2, 3000), st.integers(1, 64), st.integers(1, 256), st.sampled_from(["random", "consecutive"])
)
def test_fit_batch_shape_always_fits(n, batch_size, num_steps, sampling):
    count = random_batch_count if sampling == "random" else consecutive_batch_count
    try:
        B, T = fit_batch_shape(n, batch_size, num_steps, sampling)
    except RnnlabError:  # documented: not even one window of one step fits
        assert count(n, 1, 1) == 0
        return
    assert count(n, B, T) >= 1 and batch_size >= B and num_steps >= T
