"""Presets: picked by the corpus's size and the time budget, old names still accepted."""

import pytest

from rnnlab.presets import LONG_SECONDS, PRESETS, SMALL_CORPUS_TOKENS, resolve_preset
from rnnlab.workflow import resolve_config


@pytest.mark.parametrize(
    ("tokens", "max_time", "expected"),
    [
        (SMALL_CORPUS_TOKENS - 1, 600.0, "small-corpus"),
        (SMALL_CORPUS_TOKENS, 60.0, "default"),
        (SMALL_CORPUS_TOKENS, LONG_SECONDS - 1, "default"),
        (SMALL_CORPUS_TOKENS, LONG_SECONDS, "long"),
        (5_000_000, 60.0, "default"),
        (5_000_000, None, "long"),  # no time limit: steps or epochs decide, minutes at least
    ],
)
def test_auto_picks_by_corpus_size_and_budget(tokens, max_time, expected):
    assert resolve_preset("auto", tokens, max_time)[0] == expected


def test_an_old_name_is_an_alias_and_flags_win_over_the_preset():
    assert resolve_preset("shakespeare", 10)[0] == "long"
    cfg = resolve_config({"preset": "shakespeare", "hidden_size": 64}, train_tokens=10)
    assert cfg.run.preset == "long" and cfg.model.hidden_size == 64
    assert cfg.model.dropout == PRESETS["long"]["dropout"]


def test_one_hot_input_on_a_small_corpus_drops_the_presets_embedding_regularisers():
    cfg = resolve_config({"encoder": "onehot"}, train_tokens=1000)
    assert cfg.run.preset == "small-corpus" and cfg.model.embedding_dropout == 0.0
    assert cfg.model.weight_drop == PRESETS["small-corpus"]["weight_drop"]  # the rest of it stays
