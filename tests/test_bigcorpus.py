"""Big corpora: reading in pieces, streaming the corpus and memory-mapping its ids change nothing.

Tiny piece sizes (monkeypatched) put every piece boundary somewhere awkward: inside lines, beside
``\\r\\n``, before 4-byte characters. Each path is checked against the whole-text path, id for id.
"""

import tempfile
from collections import Counter

import numpy as np
import pytest

import rnnlab.data.corpus as corpus_module
import rnnlab.data.text as text_module
from rnnlab.bench.encoding import write_mixed_corpus
from rnnlab.data import SPLITS, Corpus, consecutive_batches, read_text, read_texts
from rnnlab.errors import RnnlabError

AWKWARD = "\ufeff分开 a🎵b\r\n不分开\r我e\u0301\n\n  x🎵" * 40  # BOM, CRLF, lone CR, astral, no final \n


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "mixed.txt"
    write_mixed_corpus(path, 2_000_000)
    return path


@pytest.fixture
def streamed(monkeypatch):
    """Force the streamed path with odd-sized pieces; whole-file reading would be an error."""
    monkeypatch.setattr(text_module, "CHUNK_BYTES", 4099)
    monkeypatch.setattr(corpus_module, "STREAM_BYTES", 0)

    def whole(*args, **kwargs):
        raise AssertionError("the streamed path read the text whole")

    monkeypatch.setattr(corpus_module, "read_texts", whole)


def assert_same(a: Corpus, b: Corpus) -> None:
    assert a.vocab == b.vocab and a.vocab.counts == b.vocab.counts
    for name in SPLITS:
        assert a.split(name).dtype == b.split(name).dtype
        np.testing.assert_array_equal(a.split(name), b.split(name))
    assert a.oov_rate == b.oov_rate
    assert a.fingerprint() == b.fingerprint()


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 64])
def test_read_text_in_tiny_pieces_equals_whole(tmp_path, monkeypatch, chunk):
    path = tmp_path / "a.txt"
    path.write_bytes(AWKWARD.encode("utf-8"))
    no_newline = tmp_path / "b.txt"  # one long line: pieces end before a character instead
    no_newline.write_bytes(AWKWARD.replace("\n", "").encode("utf-8"))
    whole = [read_text(path), read_text(no_newline), read_texts([no_newline, path, no_newline])]
    monkeypatch.setattr(text_module, "CHUNK_BYTES", chunk)
    assert [read_text(path), read_text(no_newline), read_texts([no_newline, path, no_newline])] == whole
    assert "\r" not in whole[0] and not whole[0].startswith("\ufeff")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("分开\n".encode() * 50 + b"ok \xff", r"byte 0xff at offset 353\)"),
        (b"abc\n" * 25 + b"\x00 binary", r"looks binary \(NUL byte at offset 100\)"),
        (b"\xef\xbb\xbf", "is empty"),
        (b"  \n\t\r\n" * 30, "only whitespace"),
    ],
)
def test_errors_in_pieces_are_those_of_the_whole_file(tmp_path, monkeypatch, content, match):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    monkeypatch.setattr(text_module, "CHUNK_BYTES", 5)
    with pytest.raises(RnnlabError, match=match):
        read_text(path)


def test_streamed_corpus_equals_whole(mixed, streamed):
    whole = Corpus.from_text(read_text(mixed))
    corpus = Corpus.from_files([mixed], mmap=False)
    assert_same(whole, corpus)
    assert corpus.vocab.dtype == np.uint16 and not isinstance(corpus.train, np.memmap)
    counts = Counter(read_text(mixed)[: len(corpus.train)])  # the vocabulary counts the train part only
    assert dict(zip(corpus.vocab.itos[1:], corpus.vocab.counts[1:])) == counts


def test_streamed_corpus_with_options(mixed, tmp_path, streamed):
    short = tmp_path / "short.txt"
    short.write_text(AWKWARD, encoding="utf-8")
    whole_text = read_texts([mixed, short])
    whole = Corpus.from_text(whole_text, split=(0.8, 0.15, 0.05), min_freq=3)
    corpus = Corpus.from_files([mixed, short], split=(0.8, 0.15, 0.05), min_freq=3)
    assert_same(whole, corpus)
    given = Corpus.from_files([short], vocab=whole.vocab)  # an existing vocabulary: no counting pass
    assert_same(Corpus.from_text(read_text(short), vocab=whole.vocab), given)


def test_memory_mapped_ids_are_the_same_and_leave_no_file(mixed, tmp_path, monkeypatch):
    whole = Corpus.from_files([mixed], mmap=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    mapped = Corpus.from_files([mixed], mmap=True)
    assert_same(whole, mapped)
    assert isinstance(mapped.train, np.memmap) and not mapped.train.flags.writeable
    assert list(tmp_path.glob("rnnlab-ids-*")) == []  # unlinked at once: the map keeps the data
    X, Y = next(consecutive_batches(mapped.train, 4, 16))
    assert X.shape == (4, 16) and bool((Y[:, :-1] == X[:, 1:]).all())


def test_memory_mapped_ids_need_utf8(mixed):
    with pytest.raises(RnnlabError, match="need a UTF-8 corpus"):
        Corpus.from_files([mixed], encoding="gb18030", mmap=True)
