"""Inspect a run: its best model over some text, every unit recorded, ranked against the text's features."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnlab.config import DataConfig
from rnnlab.data import Corpus, Vocab
from rnnlab.data.text import iter_text
from rnnlab.errors import RnnlabError
from rnnlab.inspect.activations import STATES, Recording, record
from rnnlab.inspect.correlate import FeatureScores, rank_units
from rnnlab.inspect.features import feature_matrix, parse_features
from rnnlab.rundir import RunDir

DEFAULT_CHARS = 20_000  # about 4 s for a 1x256 LSTM on one core, and a page of a few MB
PAGE_NAME = "inspect.html"  # default place: inside the run directory, beside report.html
VAL_SOURCE = "validation split"  # Inspection.source when no --text was given
SHOWN_SPECIAL = "\ufffd"  # how a special id (<unk>) shows in the text: one character per id


@dataclass(frozen=True)
class Inspection:
    """A run's model read over a text.

    Attributes:
        run: the run directory's path.
        source: where the text came from: :data:`VAL_SOURCE` or the ``--text`` file.
        text: the ``T`` characters read, one per id (a special id shows as U+FFFD).
        tokens: the vocabulary, id -> token, to spell the predictions.
        unknown: how many of the characters the vocabulary lacks (the model read ``<unk>`` there).
        model: cell, impl, num_layers, hidden_size and ngram from the run's config.
        recording: the states, gates and predictions at each character.
        scores: one :class:`FeatureScores` per feature, built-in ones first.
    """

    run: Path
    source: str
    text: str
    tokens: tuple[str, ...]
    unknown: int
    model: dict
    recording: Recording
    scores: tuple[FeatureScores, ...]


def check_out(path: str | Path) -> Path:
    """Refuse, before any work, an output path that cannot take the page (an existing page is
    regenerated: it is derived from the run)."""
    path = Path(path)
    if path.is_dir():
        raise RnnlabError(f"--out {path} is a directory; give a file name such as {path / PAGE_NAME}")
    if not path.parent.is_dir():
        raise RnnlabError(f"--out {path}: directory {path.parent} does not exist")
    return path


def check_chars(chars: int) -> int:
    """``chars`` itself, when it is a whole number of characters to read (>= 1)."""
    if isinstance(chars, bool) or not isinstance(chars, int) or chars < 1:
        raise RnnlabError(f"--chars must be an integer >= 1, got {chars!r}")
    return chars


def read_prefix(path: str | Path, chars: int) -> str:
    """The first ``chars`` characters of a UTF-8 file (read piece by piece: a big file is not read whole).

    Raises:
        RnnlabError: the file is missing, a directory, binary, not UTF-8, empty or blank.
    """
    pieces, length = [], 0
    try:
        for piece in iter_text(path):
            pieces.append(piece)
            length += len(piece)
            if length >= chars:
                break
    except RnnlabError as e:
        raise RnnlabError(f"--text: {e}") from e
    text = "".join(pieces)[:chars]
    if not text.strip():  # a blank start of a longer file: iter_text only checks the whole file
        raise RnnlabError(f"--text {path}: its first {chars:,} characters are all whitespace")
    return text


def text_and_ids(
    data: DataConfig, vocab: Vocab, text: str | Path | None, chars: int
) -> tuple[str, np.ndarray, str]:
    """``(the characters shown, their ids (T,), the source)``: ``text``'s file, or else the validation
    split of the corpus ``data`` describes (the run's)."""
    if text is not None:
        shown = read_prefix(text, chars)
        return shown, vocab.encode(shown, on_unknown="unk"), str(text)
    try:
        ids = Corpus.from_config(data, vocab=vocab).val[:chars]
    except RnnlabError as e:
        raise RnnlabError(f"{e} (the run's corpus gives the validation split; or give --text FILE)") from e
    if len(ids) == 0:
        raise RnnlabError("the run's validation split is empty; give --text FILE")
    specials = set(vocab.specials)
    shown = "".join(SHOWN_SPECIAL if t in specials else t for t in (vocab.itos[i] for i in ids.tolist()))
    return shown, ids, VAL_SOURCE


def inspect_run(
    run_path: str | Path,
    text: str | Path | None = None,
    chars: int = DEFAULT_CHARS,
    features: Sequence[str] = (),
) -> Inspection:
    """Run a run's best model over a text and rank its units against the text's features.

    Args:
        run_path: a run directory made by ``rnnlab train``.
        text: a UTF-8 file to read (None: the run's validation split).
        chars: read at most this many characters.
        features: extra ``NAME=REGEX`` features (1 on the characters of a match).

    Raises:
        RnnlabError: no such run, a word-level run, no saved model, an unreadable text, a bad
            ``--feature`` or ``chars`` < 1.
    """
    run = RunDir.open(run_path)
    check_chars(chars)
    extractors = parse_features(features)
    cfg, vocab = run.load_config(), run.load_vocab()
    if vocab.kind != "char":
        raise RnnlabError(f"rnnlab inspect reads character-level runs; {run.path} has --tokens {vocab.kind}")
    model, _ = run.load_model("cpu")
    shown, ids, source = text_and_ids(cfg.data, vocab, text, chars)
    recording = record(model, ids)
    ranked = {name: values for name, values in recording.signals.items() if name in STATES}
    scores = rank_units(ranked, list(extractors), feature_matrix(shown, extractors))
    keys = ("cell", "impl", "num_layers", "hidden_size", "ngram")
    unk = vocab.unk_id
    return Inspection(
        run=run.path,
        source=source,
        text=shown,
        tokens=tuple(vocab.itos),
        unknown=int(np.count_nonzero(np.asarray(ids) == unk)) if unk is not None else 0,
        model={key: getattr(cfg.model, key) for key in keys},
        recording=recording,
        scores=tuple(scores),
    )


def inspection_json(inspection: Inspection, page: Path | None = None) -> dict:
    """What ``rnnlab inspect --json`` prints: the run, the text read, and the best units per feature."""
    rec = inspection.recording
    features = [
        {
            "feature": s.feature,
            "units": [
                {"layer": u.layer, "unit": u.unit, "signal": u.signal, "corr": u.corr} for u in s.units
            ],
            "constant": s.constant,
            "mean": s.mean,
            "control": s.control,
        }
        for s in inspection.scores
    ]
    return {
        "run": str(inspection.run),
        "source": inspection.source,
        "chars": len(inspection.text),
        "unknown_chars": inspection.unknown,
        **{("layers" if k == "num_layers" else k): v for k, v in inspection.model.items()},
        "signals": list(rec.signals),
        "forward_diff": rec.forward_diff,
        "features": features,
        "page": None if page is None else str(page),
    }
