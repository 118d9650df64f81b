"""The runs a playground serves: each one's model and vocabulary, loaded once and shared read-only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from rnnlab.data.vocab import Vocab
from rnnlab.model import LanguageModel
from rnnlab.rundir import RunDir
from rnnlab.serve.request import DEFAULT_UNITS, BadRequest, GenerateRequest


@dataclass(frozen=True)
class ServedRun:
    """One run directory's best model (eval mode, no gradients) and its vocabulary.

    Requests share the model: generation only reads it (under ``torch.no_grad``, each request with its
    own state and its own ``torch.Generator``), so concurrent requests cannot disturb each other.
    """

    name: str
    path: Path
    model: LanguageModel
    vocab: Vocab
    cell: str

    @property
    def hidden_size(self) -> int:
        return self.model.decoder.in_features

    def describe(self, index: int) -> dict:
        """What ``GET /api/runs`` says about the run."""
        return {
            "index": index,
            "name": self.name,
            "path": str(self.path),
            "cell": self.cell,
            "hidden_size": self.hidden_size,
            "vocab_size": len(self.vocab),
            "unit": self.vocab.unit,
            "residual": self.model.ngram is not None,
        }


def load_runs(paths: Sequence[str | Path]) -> list[ServedRun]:
    """Open every run directory and load its best model on the CPU.

    Names are the directories' names; where two are alike, their paths as given.

    Raises:
        RnnlabError: a path that is no run directory, or a run without a saved model.
    """
    runs = []
    names = [Path(p).resolve().name for p in paths]
    for path, name in zip(paths, names):
        run_dir = RunDir.open(path)
        model, _ = run_dir.load_model("cpu")
        model.requires_grad_(False)  # before it is shared: nothing may build a graph on it
        cell = run_dir.load_config().model.cell
        shown = str(path) if names.count(name) > 1 else name
        runs.append(ServedRun(shown, Path(path), model, run_dir.load_vocab(), cell))
    return runs


def pick_run(runs: Sequence[ServedRun], req: GenerateRequest) -> ServedRun:
    """The run ``req.run`` names (an index or a name), after the checks that depend on the run.

    Raises:
        BadRequest: no such run; prefix characters outside its vocabulary; ``top_k`` larger than the
            vocabulary; ``units`` beyond the hidden size.
    """
    if isinstance(req.run, int):
        if not 0 <= req.run < len(runs):
            raise BadRequest(f'"run" {req.run} is out of range: {len(runs)} run(s) served, from index 0')
        run = runs[req.run]
    else:
        named = [r for r in runs if r.name == req.run]
        if not named:
            raise BadRequest(f'"run" {req.run!r} is not served; served: {", ".join(r.name for r in runs)}')
        run = named[0]
    unknown = run.vocab.unknown_chars(req.prefix)
    if unknown:
        joined = (" " if run.vocab.kind == "word" else "").join(unknown)[:40]
        raise BadRequest(f"prefix {run.vocab.unit}s not in run {run.name!r}'s vocabulary: {joined!r}")
    if req.top_k is not None and req.top_k > len(run.vocab):
        raise BadRequest(f'"top_k" {req.top_k} is larger than the vocabulary ({len(run.vocab)} tokens)')
    bad_units = [u for u in req.units or () if u >= run.hidden_size]
    if bad_units:
        raise BadRequest(f'"units" {bad_units} are beyond run {run.name!r}\'s {run.hidden_size} units')
    return run


def units_of(run: ServedRun, req: GenerateRequest) -> list[int]:
    """The hidden units whose activations are reported: those asked for, else the first few."""
    if req.units is not None:
        return list(req.units)
    return list(range(min(DEFAULT_UNITS, run.hidden_size)))


def prefix_ids(run: ServedRun, prefix: str) -> torch.Tensor:
    """``(P,)`` int64 ids of a prefix that :func:`pick_run` has checked."""
    return torch.from_numpy(run.vocab.encode(prefix, on_unknown="error").astype("int64"))
