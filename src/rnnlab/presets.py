"""Named recipes: bundles of flag values for a size of corpus and of budget, picked by name or by both.

Order of precedence, lowest first: dataclass defaults, the preset, the --config TOML file, the flags.
``auto`` picks ``small-corpus`` below :data:`SMALL_CORPUS_TOKENS` training tokens (characters, or words
with ``--tokens word``), else ``long`` when the run has at least :data:`LONG_SECONDS` of training time
(or no time limit), else ``default``.
Presets never change how the corpus is read or split (those keys are refused), so the corpus can be
loaded first and the preset chosen from its size.
"""

from __future__ import annotations

from rnnlab.errors import RnnlabError

SMALL_CORPUS_TOKENS = 200_000  # below this, over-fitting comes within minutes: regularise by default
# Minutes of training: a wider network pays off, and so many passes over a corpus of some 100 kB to a
# few MB that it needs dropout (the built-in corpus, 418k tokens, 600 s without: the residual network
# was best after 2.3 epochs, then over-fitted).
LONG_SECONDS = 300.0
ALIASES = {"shakespeare": "long"}  # older names, still accepted

PRESETS: dict[str, dict] = {
    # The dataclass defaults: readable text from the built-in corpus in about a minute.
    "default": {},
    # Song lyrics, poems, a few hundred kB: large vocabularies (CJK), little text, whole lines that
    # repeat. Measured on jaychou_lyrics.txt: results/lyrics_fit.md.
    "small-corpus": {
        # Much stronger than AWD-LSTM's defaults. On the lyrics, dropout/weight drop/embedding dropout/
        # decay of .5/.3/.1/.1 stalled at val ppl 286 by step 250 while the train loss kept falling
        # (over-fitting); .6/.5/.2/.3 reached 267, then the same; these reach 262 and the gap stays put.
        "dropout": 0.7,  # between layers and before the decoder
        "variational": True,  # ...with one mask per sequence (Gal & Ghahramani 2016)
        "weight_drop": 0.6,  # DropConnect on W_hh (Merity et al. 2018)
        "embedding_dropout": 0.3,
        "optimizer": "adamw",
        "weight_decay": 1.0,  # decoupled (Loshchilov & Hutter 2019)
        "lr": 3e-3,
        "eval_every": 50,  # a small validation split is cheap to score; early stopping reacts sooner
        "adaptive_eval": True,  # repeated lines: cache + dynamic evaluation + n-gram mixing at the end
    },
    # Minutes on a ~1 MB corpus or more (tiny Shakespeare, the char-rnn benchmark): a deeper LSTM than
    # the default, a little dropout. After 600 s two layers of 320 (about the FLOPs of one of 512) beat
    # one of 512 on tiny Shakespeare 90/10 and tie on built-in: 1.397 and 1.3945 against 1.409 (2x256
    # 1.395, 2x384 1.407, 1x640 1.418, one run each); built-in 1.134 and 1.144 against 1.140 and 1.149
    # (2x256 1.155, 1x768 1.137, 1x1024 1.146). Within a minute the default's one layer is better
    # (2x160 after 60 s: 1.445 against 1.440, 1.157 against 1.131).
    "long": {
        "num_layers": 2,
        "hidden_size": 320,
        "embedding_dim": 128,
        # 0.1 for the network alone (results/shakespeare.md); a residual network trained for many
        # epochs over-fits sooner (it only has to learn what the counts miss): 0.2, as nanoGPT's
        # Shakespeare-char recipe.
        "dropout": 0.2,
        "lr": 3e-3,
        "eval_every": 500,
        # Cross-fitted n-grams in the first pass only: over six passes and more the network learns the
        # text, and against counts that never saw it it learns to trust itself too much (600 s, folds
        # in every pass: tiny Shakespeare 0.03 worse, built-in 0.009).
        "ngram_fold_passes": 1,
    },
}
DATA_KEYS = ("corpus", "builtin", "split", "min_freq", "encoding", "errors")


def preset_names() -> tuple[str, ...]:
    return ("auto", *PRESETS, *ALIASES)


def resolve_preset(name: str, train_tokens: int, max_time: float | None = None) -> tuple[str, dict]:
    """The preset's name (``auto`` resolved by the training split's size and the run's ``max_time``;
    an alias resolved to its name) and its flag values."""
    if name == "auto":
        long = max_time is None or max_time >= LONG_SECONDS
        name = "small-corpus" if train_tokens < SMALL_CORPUS_TOKENS else "long" if long else "default"
    name = ALIASES.get(name, name)
    if name not in PRESETS:
        raise RnnlabError(f"--preset must be one of {', '.join(preset_names())}; got {name!r}")
    values = PRESETS[name]
    bad = sorted(set(values) & set(DATA_KEYS))
    if bad:  # a programming error, kept loud
        raise AssertionError(f"preset {name} sets data keys {bad}")
    return name, dict(values)
