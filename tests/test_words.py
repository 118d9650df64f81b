"""--tokens word: the tokeniser's rules, its inverse, the word vocabulary, and the CLI end to end."""

import json
import math

import pytest
from conftest import last_json, metric_records, tiny_run_argv
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.cli import main
from rnnlab.data import Corpus, Vocab, WordVocab, detokenize, tokenize_words
from rnnlab.errors import RnnlabError
from rnnlab.generate import SamplingConfig, generate_text
from rnnlab.model import LanguageModel

PROSE = (
    'The cat sat on the mat. "Is it well-known?" she asked (twice).\n'
    "It's 3.14, not 1,000; don’t panic...\n"
    "我不能再想，爱情来的太快\n\n"
)


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("Hello, world!", ["Hello", ",", "world", "!"]),
        ("a\tb  c\n\nd", ["a", "b", "c", "\n", "\n", "d"]),  # newlines kept, other spaces dropped
        ("(x).", ["(", "x", ")", "."]),
        ("don't it’s well-known __init__ x2", ["don't", "it’s", "well-known", "__init__", "x2"]),
        ("'quoted' - a", ["'", "quoted", "'", "-", "a"]),  # apostrophes inside words only
        ("pi 3.14 or 1,000, 7.", ["pi", "3.14", "or", "1,000", ",", "7", "."]),
        ("我不能abc中。", ["我", "不", "能", "abc", "中", "。"]),  # each ideograph its own token
        ("カタカナ 한국어", ["カタカナ", "한국어"]),  # kana and Hangul runs stay words
        ("a+b=c ✓", ["a", "+", "b", "=", "c", "✓"]),
    ],
)
def test_tokenisation_rules(text, tokens):
    assert tokenize_words(text) == tokens


def test_detokenisation_joins_with_single_spaces_where_text_has_them():
    assert detokenize(tokenize_words(PROSE)) == PROSE
    assert detokenize(["a", "(", "b", ")", "\n", "c", ",", "d"]) == "a (b)\nc, d"
    assert detokenize(tokenize_words("我 不能 abc 中")) == "我不能abc中"  # no spaces around CJK


TEXT_CHARS = st.sampled_from(list("ab Z9_'’-.,;:!?()[]\"`%\n\t 中文。「」カ한✓"))


@settings(max_examples=200, deadline=None)
@given(st.text(TEXT_CHARS, max_size=60))
def test_retokenising_the_joined_text_gives_the_same_tokens(text):
    tokens = tokenize_words(text)
    assert tokenize_words(detokenize(tokens)) == tokens


def test_word_vocab_counts_ids_unk_and_round_trip(tmp_path):
    vocab = WordVocab.build("b a b c b a\n", min_freq=2)
    assert vocab.itos == ["<unk>", "b", "a"] and vocab.counts == [2, 3, 2]  # by count; c and \n: <unk>
    ids = vocab.encode("a b zz")
    assert ids.tolist() == [2, 1, vocab.unk_id] and vocab.decode(ids) == "a b <unk>"
    assert vocab.encode("a zz b", on_unknown="skip").tolist() == [2, 1]
    with pytest.raises(RnnlabError, match="zz"):
        vocab.encode("a zz", on_unknown="error")
    vocab.save(tmp_path / "v.json")
    assert json.loads((tmp_path / "v.json").read_text())["tokenizer"] == "word"
    loaded = Vocab.load(tmp_path / "v.json")
    assert isinstance(loaded, WordVocab) and loaded == vocab
    chars = Vocab.build("ab")
    assert type(Vocab.from_dict(chars.to_dict())) is Vocab and Vocab.from_dict(chars.to_dict()) != vocab
    full = WordVocab.build(PROSE)
    assert tokenize_words(full.decode(full.encode(PROSE))) == tokenize_words(PROSE)


def test_corpus_splits_the_token_stream_and_refuses_a_mismatched_vocab():
    text = "one two three four five six seven eight nine ten " * 4 + "eleven twelve"
    corpus = Corpus.from_text(text, split=(0.8, 0.1, 0.1), tokens="word")
    assert isinstance(corpus.vocab, WordVocab)
    assert sum(len(corpus.split(s)) for s in ("train", "val", "test")) == len(tokenize_words(text))
    assert corpus.oov_rate["test"] > 0  # eleven, twelve: only in test, so <unk>
    assert "words" in corpus.summary()
    with pytest.raises(RnnlabError, match="--tokens char"):
        Corpus.from_text(text, vocab=corpus.vocab, tokens="char")


def test_generated_words_stream_joined_like_detokenize():
    vocab = WordVocab.build(PROSE)
    model = LanguageModel(len(vocab), hidden_size=8, embedding_dim=4)
    steps = list(generate_text(model, vocab, "The cat", 30, SamplingConfig(), num_samples=2, seed=0))
    for row in range(2):
        text = "The cat" + "".join(step[row] for step in steps)
        assert len(tokenize_words(text)) == 2 + 30
        assert detokenize(tokenize_words(text)) == text  # the stream joins as detokenize does
    after_space = "".join(s[0] for s in generate_text(model, vocab, "The ", 3, SamplingConfig(), seed=0))
    assert not after_space.startswith(" ")


def test_word_run_train_generate_evaluate_resume_baseline(tmp_path, capsys):
    corpus, run = tmp_path / "c.txt", tmp_path / "run"
    corpus.write_text(PROSE * 20, encoding="utf-8")
    assert main(tiny_run_argv(corpus, run, tokens="word", max_steps=5)) == 0
    human = capsys.readouterr().out.strip().splitlines()[-1]
    assert "per word" in human and "bpc" not in human and "words/s" in human
    assert json.loads((run / "config.json").read_text())["config"]["data"]["tokens"] == "word"
    (start,) = metric_records(run, "start")
    words = len(tokenize_words(PROSE * 20))
    assert start["unit"] == "word" and sum(start["chars"].values()) == words

    assert main(["generate", str(run), "--prefix", "The cat", "--length", "12", "--seed", "3"]) == 0
    out = capsys.readouterr().out.rstrip("\n")
    assert out.startswith("The cat") and len(tokenize_words(out)) == 2 + 12

    assert main(["evaluate", str(run), "--json"]) == 0
    result = last_json(capsys.readouterr().out)
    assert result["unit"] == "word" and result["bpc"] is None
    assert result["chars"] == start["chars"]["test"] - 1  # every test word but the first is scored
    assert math.isclose(result["ppl"], math.exp(result["loss"]), rel_tol=1e-6)

    assert main(["train", "--resume", str(run), "--max-steps", "10", "--json"]) == 0
    summary = last_json(capsys.readouterr().out)
    assert summary["steps"] == 10 and summary["unit"] == "word" and summary["best_val_bpc"] is None
    assert summary["best_val_ppl"] == pytest.approx(math.exp(summary["best_val_loss"]))

    assert main(["baseline", str(corpus), "--tokens", "word", "--max-order", "3", "--json"]) == 0
    baseline = last_json(capsys.readouterr().out)
    assert baseline["vocab_size"] == start["vocab_size"]  # the same token ids as the run's


def test_word_flag_is_checked(capsys):
    assert main(["train", "--tokens", "bpe"]) == 2
    err = capsys.readouterr().err
    assert "--tokens: invalid choice: 'bpe'" in err and "word" in err and len(err.strip().splitlines()) == 1
