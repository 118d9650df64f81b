"""`rnnlab evaluate` as a library call: a run's best model scored on one of its splits or on other text."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rnnlab.data import Corpus, read_texts
from rnnlab.device import resolve_device
from rnnlab.losses import loss_readings
from rnnlab.rundir import RunDir
from rnnlab.train.evaluate import evaluate_parts


def evaluate_run(
    run_dir: str | Path,
    data: Sequence[str | Path] | None = None,
    split: str = "test",
    encoding: str = "utf-8",
    device: str = "cpu",
) -> dict:
    """Score the run's best model; tokens outside its vocabulary count as ``<unk>`` and are reported.

    Args:
        run_dir: a run directory made by ``rnnlab train``.
        data: text files to score (None: the run's own ``split``).
        split: ``train``, ``val`` or ``test``.
        encoding: of the ``data`` files.
        device: ``cpu``, ``cuda`` or ``auto``.

    Returns:
        ``{run_dir, data, chars, oov_rate, model_step, unit, loss, ppl, bpc}`` (``chars`` counts tokens
        of ``unit``; ``bpc`` is None for word runs); a residual model's also ``network_loss`` and
        ``ngram_loss``: the network's logits alone and the n-gram alone, on the same tokens.
    """
    run = RunDir.open(run_dir)
    vocab = run.load_vocab()
    model, info = run.load_model(resolve_device(device))
    if data:
        ids = vocab.encode(read_texts(data, encoding=encoding), on_unknown="unk")
        source, oov = ", ".join(str(d) for d in data), vocab.oov_rate(ids)
    else:
        corpus = Corpus.from_config(run.load_config().data, vocab=vocab)
        ids, source, oov = corpus.split(split), f"{split} split", corpus.oov_rate[split]
    parts = evaluate_parts(model, ids)
    result = {
        "run_dir": str(run.path),
        "data": source,
        "chars": parts["count"],
        "oov_rate": oov,
        "model_step": info.get("step"),
        "unit": vocab.kind,  # what "chars", loss and ppl count: characters, or words
        **loss_readings(parts["loss"], vocab.kind),
    }
    if "network" in parts:
        result["network_loss"], result["ngram_loss"] = parts["network"], parts["ngram"]
    return result
