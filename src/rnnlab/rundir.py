"""The run directory: everything a run leaves behind, and the one place that knows its layout.

::

    runs/lyrics-20261128-101500/
        config.json          resolved config + the exact command line
        vocab.json           the train-split vocabulary (with unigram counts)
        model.safetensors    best-on-validation weights
        ngram.safetensors    the n-gram counts a residual model builds on (--ngram residual)
        checkpoint.json      last resumable state (JSON part) ...
        checkpoint-*.safetensors   ... and its tensors
        metrics.jsonl        every metric, one JSON object per line
"""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import torch

from rnnlab.config import TrainConfig
from rnnlab.data.vocab import Vocab
from rnnlab.errors import RnnlabError
from rnnlab.io import atomic_write_json, load_tensors, read_json, save_tensors, tensor_metadata
from rnnlab.model import LanguageModel
from rnnlab.nn.ngram import NGramFit, fit_arrays, fit_from_arrays

RUNS_ROOT = Path("runs")
MODEL_FORMAT = "rnnlab-model"
MODEL_VERSION = 1
NGRAM_FORMAT = "rnnlab-ngram"


def default_run_path(cfg: TrainConfig) -> Path:
    """``runs/<corpus name>-<date>-<time>``, with a numeric suffix if that exists already."""
    stem = Path(cfg.data.corpus[0]).stem if cfg.data.corpus else cfg.data.builtin
    base = RUNS_ROOT / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = Path(f"{base}-{n}")
    return path


def command_line(argv) -> str:
    """The command as a user would retype it."""
    return shlex.join(["rnnlab", *argv])


class RunDir:
    """Paths and loaders of one run directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    config_path = property(lambda self: self.path / "config.json")
    vocab_path = property(lambda self: self.path / "vocab.json")
    model_path = property(lambda self: self.path / "model.safetensors")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    checkpoint_path = property(lambda self: self.path / "checkpoint.json")
    ngram_path = property(lambda self: self.path / "ngram.safetensors")

    @classmethod
    def create(cls, out: str | Path | None, cfg: TrainConfig, corpus_sha256: str, command: str) -> RunDir:
        """Make a new run directory; an existing run is never overwritten."""
        path = Path(out) if out else default_run_path(cfg)
        cls.check_new(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RnnlabError(f"cannot create run directory {path}: {e.strerror or e}") from e
        run = cls(path)
        doc = {"command": command, "corpus_sha256": corpus_sha256, "config": cfg.to_dict()}
        atomic_write_json(run.config_path, doc)
        return run

    def record_resume(self, cfg: TrainConfig, command: str) -> None:
        """Note a resume (its command line and the possibly extended stop conditions) in config.json."""
        doc = self._config_doc()
        doc["resumed"] = [*doc.get("resumed", []), command]
        doc["config"] = cfg.to_dict()
        atomic_write_json(self.config_path, doc)

    def corpus_sha256(self) -> str | None:
        return self._config_doc().get("corpus_sha256")

    @staticmethod
    def check_new(path: str | Path | None) -> None:
        """Refuse a run directory that is a file or already holds something (checked before any work)."""
        if path is None:
            return
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise RnnlabError(f"--out {path} is a file; give a directory for the run")
        if path.is_dir() and any(path.iterdir()):
            hint = "continue it with --resume" if (path / "config.json").exists() else "pick another --out"
            raise RnnlabError(f"--out {path} already exists and is not empty; {hint}")

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run directory (it must hold at least config.json and vocab.json)."""
        path = Path(path)
        if not path.is_dir():
            raise RnnlabError(f"run directory {path} does not exist")
        run = cls(path)
        for needed in (run.config_path, run.vocab_path):
            if not needed.is_file():
                raise RnnlabError(f"{path} is not an rnnlab run directory (no {needed.name})")
        return run

    def _config_doc(self) -> dict:
        doc = read_json(self.config_path)
        if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict):
            raise RnnlabError(f"{self.config_path} has no 'config' object; was it edited?")
        return doc

    def load_config(self) -> TrainConfig:
        config = self._config_doc()["config"]
        # Runs from before these options: lowered the rate on plateaus, had no n-gram inside, then
        # trained it leave-one-out with one weight on it, then cross-fitted the first pass only.
        olds = (
            ("optim", "schedule", "plateau"),
            ("model", "ngram", "off"),
            ("model", "ngram_folds", 0),
            ("model", "ngram_gate", "one"),
            ("model", "ngram_fold_passes", 1),
        )
        for section, key, old in olds:
            if isinstance(config.get(section), dict):
                config[section].setdefault(key, old)
        return TrainConfig.from_dict(config)

    def save_ngram(self, fit: NGramFit) -> None:
        """Store the n-gram a residual model builds on (its counts and order; written once)."""
        tensors = {name: torch.from_numpy(array) for name, array in fit_arrays(fit).items()}
        save_tensors(self.ngram_path, tensors, {"format": NGRAM_FORMAT, "version": str(MODEL_VERSION)})

    def load_ngram(self) -> NGramFit:
        """The n-gram :meth:`save_ngram` stored."""
        if not self.ngram_path.is_file():
            raise RnnlabError(f"{self.path} has no ngram.safetensors, which its --ngram residual model needs")
        if tensor_metadata(self.ngram_path).get("format") != NGRAM_FORMAT:
            raise RnnlabError(f"{self.ngram_path} is not an rnnlab n-gram file")
        try:
            return fit_from_arrays({k: t.numpy() for k, t in load_tensors(self.ngram_path).items()})
        except (KeyError, ValueError) as e:
            raise RnnlabError(f"{self.ngram_path} is incomplete ({e}); was it edited?") from e

    def build_model(self, cfg: TrainConfig) -> LanguageModel:
        """An untrained model of the run's config (with its n-gram when it is a residual model)."""
        vocab_size = len(self.load_vocab())
        if cfg.model.ngram == "off":
            return LanguageModel.from_config(cfg.model, vocab_size)
        fit = self.load_ngram()
        return LanguageModel.from_config(cfg.model, vocab_size, fit.dense(), leave_one_out=fit.counted_all)

    def load_vocab(self) -> Vocab:
        return Vocab.load(self.vocab_path)

    def load_model(self, device: str | torch.device = "cpu") -> tuple[LanguageModel, dict]:
        """The best-on-validation model, in eval mode, and the info stored with it."""
        if not self.model_path.is_file():
            raise RnnlabError(f"{self.path} has no model.safetensors yet: the run saved no model")
        model = self.build_model(self.load_config())
        info = load_model_weights(self.model_path, model)
        return model.to(device).eval(), info


# --- model weights ------------------------------------------------------------------------------------


def save_model(path: str | Path, model: torch.nn.Module, info: dict) -> None:
    """Write the model's weights, with ``info`` (step, val loss, ...) as JSON in the metadata."""
    meta = {"format": MODEL_FORMAT, "version": str(MODEL_VERSION), "info": json.dumps(info)}
    save_tensors(path, model.state_dict(), meta)


def load_model_weights(path: str | Path, model: torch.nn.Module) -> dict:
    """Load weights into ``model``, checking names and shapes; returns the stored info."""
    tensors = load_tensors(path)
    meta = tensor_metadata(path)
    if meta.get("format") != MODEL_FORMAT:
        raise RnnlabError(f"{path} is not an rnnlab model file")
    load_state_dict_checked(model, tensors, path)
    return json.loads(meta.get("info", "{}"))


def load_state_dict_checked(module: torch.nn.Module, tensors: dict[str, torch.Tensor], path) -> None:
    """``load_state_dict`` that reports any missing, extra or mis-shaped tensor in one clear line."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    wrong = [k for k in expected if k in tensors and tensors[k].shape != expected[k].shape]
    if missing or extra or wrong:
        detail = "; ".join(
            f"{what}: {', '.join(keys[:4])}"
            for what, keys in (("missing", missing), ("unexpected", extra), ("wrong shape", wrong))
            if keys
        )
        raise RnnlabError(f"{path} does not fit this model's config ({detail})")
    with torch.no_grad():
        for key, value in expected.items():
            value.copy_(tensors[key])
