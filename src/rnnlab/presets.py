"""Named recipes: bundles of flag values for a kind of corpus, picked by name or by corpus size.

Order of precedence, lowest first: dataclass defaults, the preset, the --config TOML file, the flags.
``auto`` picks ``small-corpus`` below :data:`SMALL_CORPUS_CHARS` training characters, else ``default``.
Presets never change how the corpus is read or split (those keys are refused), so the corpus can be
loaded first and the preset chosen from its size.
"""

from __future__ import annotations

from rnnlab.errors import RnnlabError

SMALL_CORPUS_CHARS = 200_000  # below this, over-fitting comes within minutes: regularise by default

PRESETS: dict[str, dict] = {
    # The dataclass defaults: readable text from the built-in corpus in about a minute.
    "default": {},
    # Song lyrics, poems, a few hundred kB: large vocabularies (CJK), little text, whole lines that
    # repeat. Measured on jaychou_lyrics.txt: results/lyrics_fit.md.
    "small-corpus": {},
    # The char-rnn benchmark on a CPU: results/speed.md.
    "shakespeare": {},
}
DATA_KEYS = ("corpus", "builtin", "split", "min_freq", "encoding", "errors")


def preset_names() -> tuple[str, ...]:
    return ("auto", *PRESETS)


def resolve_preset(name: str, train_chars: int) -> tuple[str, dict]:
    """The preset's name (``auto`` resolved by corpus size) and its flag values."""
    if name == "auto":
        name = "small-corpus" if train_chars < SMALL_CORPUS_CHARS else "default"
    if name not in PRESETS:
        raise RnnlabError(f"--preset must be one of {', '.join(preset_names())}; got {name!r}")
    values = PRESETS[name]
    bad = sorted(set(values) & set(DATA_KEYS))
    if bad:  # a programming error, kept loud
        raise AssertionError(f"preset {name} sets data keys {bad}")
    return name, dict(values)
