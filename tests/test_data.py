"""Vocab, corpus reading and splitting, the two samplers and one-hot."""

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnlab.data import (
    UNK,
    Corpus,
    Vocab,
    builtin_corpus,
    consecutive_batch_count,
    consecutive_batches,
    one_hot,
    random_batch_count,
    random_batches,
    read_text,
    read_texts,
    split_text,
)
from rnnlab.errors import RnnlabError

LYRICS = Path(__file__).resolve().parents[2] / "shared" / "data" / "jaychou_lyrics.txt"


# --- Vocab -------------------------------------------------------------------------------------


def test_vocab_is_sorted_and_repeatable():
    a = Vocab.build("hello world")
    b = Vocab.build("world hello")
    assert a == b
    assert a.itos == [UNK, " ", "d", "e", "h", "l", "o", "r", "w"]


def test_vocab_round_trip_and_compact_dtype():
    text = "分开 不分开\n你好 ok"
    v = Vocab.build(text)
    ids = v.encode(text)
    assert ids.dtype == np.uint8
    assert v.decode(ids) == text
    big = Vocab.build("".join(chr(0x4E00 + i) for i in range(300)))
    assert big.encode("一").dtype == np.uint16


def test_vocab_min_freq_and_unknown_policies():
    v = Vocab.build("aaab", min_freq=2)
    assert "b" not in v and "a" in v
    assert v.decode(v.encode("abz")) == f"a{UNK}{UNK}"
    assert v.decode(v.encode("abz", on_unknown="skip")) == "a"
    with pytest.raises(RnnlabError, match="'bz'"):
        v.encode("abz", on_unknown="error")
    assert v.unknown_chars("abz") == ["b", "z"]
    no_unk = Vocab.build("ab", specials=())
    with pytest.raises(RnnlabError, match="no <unk>"):
        no_unk.encode("abc")


def test_vocab_json_round_trip(tmp_path):
    v = Vocab.build("分开不分开 emoji 🎵 e\u0301")
    v.save(tmp_path / "vocab.json")
    assert Vocab.load(tmp_path / "vocab.json") == v
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    with pytest.raises(RnnlabError, match="not an rnnlab vocabulary"):
        Vocab.load(tmp_path / "bad.json")
    (tmp_path / "torn.json").write_text('{"format": "rnnlab-vo')
    with pytest.raises(RnnlabError, match="not valid JSON"):
        Vocab.load(tmp_path / "torn.json")


def test_vocab_encodes_across_chunks(monkeypatch):
    import rnnlab.data.vocab as vocab_module

    monkeypatch.setattr(vocab_module, "_ENCODE_CHUNK", 7)
    text = "abc分开\n" * 10
    v = Vocab.build(text)
    assert v.decode(v.encode(text)) == text


# --- reading and splitting ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "is empty"),
        (b"  \n\t\n", "only whitespace"),
        (b"ok \xff\xfe bad", r"not valid utf-8 \(byte 0xff at offset 3\)"),
        (b"\x00\x01\x02binary", "looks binary"),
    ],
)
def test_read_text_refuses_bad_files(tmp_path, content, match):
    path = tmp_path / "corpus.txt"
    path.write_bytes(content)
    with pytest.raises(RnnlabError, match=match):
        read_text(path)


def test_read_text_missing_dir_and_fixes(tmp_path):
    with pytest.raises(RnnlabError, match="does not exist"):
        read_text(tmp_path / "nope.txt")
    with pytest.raises(RnnlabError, match="is a directory"):
        read_text(tmp_path)
    path = tmp_path / "a.txt"
    path.write_bytes("\ufeffline one\r\nline two\rthree \xff".encode("utf-8").replace(b"\xc3\xbf", b"\xff"))
    assert read_text(path, errors="replace") == "line one\nline two\nthree \ufffd"
    path.write_bytes("分开".encode("gb18030"))
    assert read_text(path, encoding="gb18030") == "分开"


def test_read_texts_joins_files_in_order(tmp_path):
    (tmp_path / "a.txt").write_text("one")
    (tmp_path / "b.txt").write_text("two\n")
    assert read_texts([tmp_path / "a.txt", tmp_path / "b.txt"]) == "one\ntwo\n"


def test_split_is_contiguous_and_validated():
    text = "".join(chr(65 + i % 26) for i in range(1000))
    train, val, test = split_text(text, (0.8, 0.1, 0.1))
    assert (len(train), len(val), len(test)) == (800, 100, 100)
    assert train + val + test == text
    for bad in [(0.5, 0.5), (0.9, 0.2, 0.1), (-0.1, 0.6, 0.5), (0.0, 0.5, 0.5)]:
        with pytest.raises(RnnlabError):
            split_text(text, bad)


def test_corpus_vocab_comes_from_train_only():
    text = "ab" * 450 + "abc" * 20 + "abd" * 10
    corpus = Corpus.from_text(text, split=(0.9, 0.05, 0.05))
    assert "c" not in corpus.vocab and "d" not in corpus.vocab
    assert corpus.oov_rate["train"] == 0
    assert corpus.oov_rate["test"] == pytest.approx(np.mean([ch in "cd" for ch in text[-len(corpus.test) :]]))
    assert corpus.oov_rate["val"] > 0


@pytest.mark.skipif(not LYRICS.exists(), reason="needs ../shared/data")
def test_corpus_on_the_lyrics():
    corpus = Corpus.from_files([LYRICS])
    assert len(corpus.train) + len(corpus.val) + len(corpus.test) == len(read_text(LYRICS))
    assert 2000 < len(corpus.vocab) < 2582
    assert 0 < corpus.oov_rate["val"] < 0.1


def test_builtin_corpus():
    text = builtin_corpus("python-docs")
    assert len(text) > 300_000 and "assert" in text
    assert text == builtin_corpus()
    with pytest.raises(RnnlabError, match="unknown built-in corpus"):
        builtin_corpus("nope")


# --- samplers -------------------------------------------------------------------------------------


@pytest.fixture
def stream():
    return np.arange(1000, dtype=np.uint16)  # id == position: offsets are easy to read


def test_random_batches_shapes_offsets_no_reuse(stream):
    g = torch.Generator().manual_seed(0)
    batches = list(random_batches(stream, 4, 7, generator=g))
    assert len(batches) == random_batch_count(len(stream), 4, 7)
    starts = []
    for X, Y in batches:
        assert X.shape == Y.shape == (4, 7) and X.dtype == torch.int64
        assert torch.equal(Y, X + 1)  # Y is X shifted by one in the stream
        assert torch.equal(X[:, 1:] - X[:, :-1], torch.ones(4, 6, dtype=torch.int64))  # contiguous windows
        starts += X[:, 0].tolist()
    assert len(set(starts)) == len(starts)  # no window used twice in an epoch
    assert len({s % 7 for s in starts}) == 1  # one shift per epoch


def test_random_batches_cover_every_position_over_epochs(stream):
    g = torch.Generator().manual_seed(1)
    seen = np.zeros(len(stream), dtype=bool)
    shifts = set()
    for _ in range(60):
        for X, _ in random_batches(stream, 4, 7, generator=g):
            seen[X.flatten().numpy()] = True
            shifts.add(int(X[0, 0]) % 7)
    assert shifts == set(range(7))
    assert seen[:-8].all()


def test_random_batches_are_seeded_and_resumable(stream):
    a = list(random_batches(stream, 4, 7, generator=torch.Generator().manual_seed(3)))
    b = list(random_batches(stream, 4, 7, generator=torch.Generator().manual_seed(3)))
    c = list(random_batches(stream, 4, 7, generator=torch.Generator().manual_seed(3), start=5))
    assert all(torch.equal(x[0], y[0]) for x, y in zip(a, b))
    assert len(c) == len(a) - 5 and all(torch.equal(x[0], y[0]) for x, y in zip(a[5:], c))


def test_consecutive_batches_continue_rows(stream):
    batches = list(consecutive_batches(stream, 4, 7))
    assert len(batches) == consecutive_batch_count(len(stream), 4, 7) == (250 - 1) // 7
    for (X0, Y0), (X1, _) in itertools.pairwise(batches):
        assert torch.equal(Y0, X0 + 1)
        assert torch.equal(X1[:, 0], X0[:, -1] + 1)  # row i of batch k+1 continues row i of batch k
    assert batches[0][0][:, 0].tolist() == [0, 250, 500, 750]
    resumed = list(consecutive_batches(stream, 4, 7, start=3))
    assert torch.equal(resumed[0][0], batches[3][0])


@pytest.mark.parametrize("sampler", ["random", "consecutive"])
def test_samplers_say_where_each_row_starts_when_asked(stream, sampler):
    g = torch.Generator().manual_seed(2)
    if sampler == "random":
        placed = list(random_batches(stream, 4, 7, generator=g, with_starts=True))
        plain = list(random_batches(stream, 4, 7, generator=torch.Generator().manual_seed(2)))
    else:
        placed, plain = (
            list(consecutive_batches(stream, 4, 7, with_starts=True)),
            list(consecutive_batches(stream, 4, 7)),
        )
    for (X, Y, starts), (X0, Y0) in zip(placed, plain, strict=True):
        assert torch.equal(X, X0) and torch.equal(Y, Y0)  # the same draws
        assert starts.dtype == torch.int64 and torch.equal(starts, X[:, 0])  # id == position here


@pytest.mark.parametrize("sampler", ["random", "consecutive"])
def test_samplers_refuse_short_streams(sampler):
    ids = np.arange(20)
    with pytest.raises(RnnlabError, match="needs at least"):
        if sampler == "random":
            next(random_batches(ids, 4, 7))
        else:
            next(consecutive_batches(ids, 4, 7))


def test_one_hot_matches_torch():
    ids = torch.tensor([[0, 3, 2], [1, 1, 4]])
    assert torch.equal(one_hot(ids, 5), F.one_hot(ids, 5).float())
    with pytest.raises(ValueError):
        one_hot(ids, 4)
