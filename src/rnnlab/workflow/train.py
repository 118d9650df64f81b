"""`rnnlab train` as library calls: start a run from flag values, or resume one, and finish it.

::

    from rnnlab.workflow import start_run
    result = start_run(corpus=("lyrics.txt",), max_time=60, prefix=("分开",))
    print(result.sample, result.summary["best_val_ppl"], result.diagnosis.fit.verdict)

Values are the flags' names with underscores (``hidden_size=512``), exactly as ``--config`` TOML keys;
order of precedence, lowest first: the dataclass defaults, the preset (``auto``: by corpus size), the
values given.
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from rnnlab import config as C
from rnnlab.data import Corpus
from rnnlab.data.batches import fit_batch_shape
from rnnlab.device import resolve_precision
from rnnlab.diagnose.run import Diagnosis, diagnose
from rnnlab.errors import RnnlabError
from rnnlab.generate import SamplingConfig, generate_text
from rnnlab.model import LanguageModel
from rnnlab.nn.ngram import NGramFit
from rnnlab.presets import resolve_preset
from rnnlab.rundir import RunDir, command_line
from rnnlab.train import Trainer, load_checkpoint, read_metrics
from rnnlab.train.distributed import OneProcess, processes
from rnnlab.train.loop import INTERRUPTED, Samples
from rnnlab.train.optim import preload
from rnnlab.train.schedule import schedule_name
from rnnlab.train.scoring import check_trainable, cross_fit, fit_run_ngram
from rnnlab.train.tensorboard import require_tensorboard

# What a resumed run may change: when to stop, and where to compute.
RESUMABLE = ("epochs", "max_steps", "max_time", "patience", "device", "tensorboard")


@dataclass(frozen=True)
class TrainResult:
    """How a run ended.

    Attributes:
        run_dir: the run directory.
        summary: the one-line summary (what ``rnnlab train --json`` prints), JSON-able.
        interrupted: stopped by a signal; a checkpoint was saved (``resume_run`` continues it).
        diagnosis: the fit and gradient verdicts (None when interrupted, or not rank 0 under torchrun).
        sample: text from the best model after the first prefix (None when there is no diagnosis).
        is_main: this process wrote the run (always, but for ranks > 0 under torchrun).
    """

    run_dir: Path
    summary: dict
    interrupted: bool
    diagnosis: Diagnosis | None = None
    sample: str | None = None
    is_main: bool = True


def resolve_config(values: Mapping, train_tokens: int) -> C.TrainConfig:
    """Defaults, then the preset (``auto``: chosen by the size of the training split and the time
    budget), then ``values``."""
    max_time = C.TrainConfig.from_flat(values).run.max_time
    name, preset = resolve_preset(values.get("preset", "auto"), train_tokens, max_time)
    if values.get("encoder") == "onehot":  # the preset's embedding regularisers need an embedding
        preset = {k: v for k, v in preset.items() if k not in ("embedding_dropout", "input_dropout")}
    return C.TrainConfig.from_flat({**preset, **values, "preset": name})


def start_run(
    values: Mapping | None = None,
    *,
    argv: Sequence[str] | None = None,
    progress: bool = True,
    handle_signals: bool = True,
    **flags,
) -> TrainResult:
    """Train a new run, as ``rnnlab train`` does; under torchrun, this process's share of it.

    Args:
        values: flag values by field name (``{"corpus": ("a.txt",), "hidden_size": 512}``); ``flags``
            add to them.
        argv: the command line, recorded in config.json (default: this call, written as Python).
        progress: show a progress bar on stderr.
        handle_signals: Ctrl-C / SIGTERM finish the step, save a checkpoint and return (main thread only).

    Raises:
        RnnlabError: a bad value, an unreadable corpus, or an existing ``out`` directory; nothing is
            written then.
    """
    values = {**(values or {}), **flags}
    dist = processes()  # under torchrun: this process's rank; else one process, as ever
    cfg = C.TrainConfig.from_flat(values)  # validates every value before any work
    if cfg.run.tensorboard:
        require_tensorboard()
    RunDir.check_new(cfg.run.out)
    corpus = Corpus.from_config(cfg.data)
    cfg = resolve_config(values, len(corpus.train))
    cfg = _shrunk_to_fit(cfg, len(corpus.train), say=dist.is_main)
    check_trainable(cfg, corpus)
    device = dist.setup(cfg)
    cfg = _chosen(cfg, len(corpus.vocab), device)
    residual = cfg.model.ngram == "residual"
    imports = preload()  # the first optimizer's imports, while the n-gram is counted
    fit = fit_run_ngram(cfg, corpus) if residual or cfg.run.baseline else None
    torch.manual_seed(cfg.run.seed)
    ngram = fit.dense() if residual else None
    model = LanguageModel.from_config(cfg.model, len(corpus.vocab), ngram, residual and fit.counted_all)
    model = cross_fit(model, cfg, corpus).to(device)
    dist.seed(cfg.run.seed)
    command = _command(argv, values, dist)
    # Only now that every input is valid: a refused run leaves nothing on disk. Rank 0 writes.
    run_dir = dist.from_main(lambda: _create_run(cfg, corpus, command, fit if residual else None))
    samples = _samples(cfg, corpus)
    imports.join()
    trainer = Trainer(
        cfg, corpus, model, run_dir, device, progress=progress, dist=dist, samples=samples, ngram=fit,
        validate_first=residual,  # it starts as the n-gram: the model kept is never worse than that
    )  # fmt: skip
    return _fit(trainer, dist, handle_signals)


def resume_run(
    run_dir: str | Path,
    changes: Mapping | None = None,
    *,
    argv: Sequence[str] | None = None,
    progress: bool = True,
    handle_signals: bool = True,
    **flags,
) -> TrainResult:
    """Continue an interrupted run exactly where it stopped, as ``rnnlab train --resume`` does.

    Args:
        run_dir: the run directory.
        changes: new values among :data:`RESUMABLE` (a larger ``max_steps``, ``max_time``, ...);
            ``flags`` add to them.

    Raises:
        RnnlabError: a change outside :data:`RESUMABLE`, a run with no checkpoint, a changed corpus, or a
            run that already stopped for good (give a larger limit).
    """
    changes = {**(changes or {}), **flags}
    refused = sorted(set(changes) - set(RESUMABLE))
    if refused:
        what = ", ".join(C.flag_name(n) for n in refused)
        raise RnnlabError(
            f"--resume continues a run as it was configured; it cannot change {what} "
            f"(only {', '.join(C.flag_name(n) for n in RESUMABLE)})"
        )
    dist = processes()
    run = RunDir.open(run_dir)
    if not run.checkpoint_path.exists():
        raise RnnlabError(f"{run.path} has no checkpoint.json to resume from")
    cfg = C.TrainConfig.from_flat(changes, base=run.load_config())
    if cfg.run.tensorboard:
        require_tensorboard()
    corpus = Corpus.from_config(cfg.data, vocab=run.load_vocab())
    if corpus.fingerprint() != run.corpus_sha256():
        raise RnnlabError("the corpus changed since this run started; resume needs the same text")
    ckpt = load_checkpoint(run.path)
    device = dist.setup(cfg)
    model = cross_fit(run.build_model(cfg), cfg, corpus, ckpt["loop"]["epoch"]).to(device)
    trainer = Trainer(
        cfg, corpus, model, run, device, progress=progress, dist=dist, samples=_samples(cfg, corpus)
    )
    trainer.restore(ckpt)
    finished = trainer.state.stop_reason not in (None, INTERRUPTED)
    trainer.state.stop_reason = None
    reason = trainer.stop_condition()
    # A run killed after its last checkpoint but before its "end" record still owes its test score:
    # resuming it finishes that. One that ended needs a larger limit to go on.
    ended = any(r.get("event") == "end" for r in read_metrics(run.metrics_path))
    if finished and ended and reason is not None:
        raise RnnlabError(
            f"run {run.path} already stopped ({reason}); "
            "give a larger --max-steps, --epochs, --max-time or --patience to train on"
        )
    if dist.is_main:
        run.record_resume(cfg, _command(argv, {"resume": str(run_dir), **changes}, dist))
    return _fit(trainer, dist, handle_signals)


def _chosen(cfg: C.TrainConfig, vocab_size: int, device: torch.device) -> C.TrainConfig:
    """``cfg`` with what "auto" (and ``--ngram-tokens 0``) chose, recorded in config.json so that a
    resumed run keeps it."""
    return replace(
        cfg,
        optim=replace(cfg.optim, schedule=schedule_name(cfg.optim, cfg.run)),
        run=replace(cfg.run, precision=resolve_precision(cfg.run.precision, device)),
        model=replace(
            cfg.model,
            ngram_gate=C.ngram_gate(cfg.model, vocab_size),
            ngram_tokens=C.ngram_tokens(cfg.model, cfg.run.max_time),
        ),
    )


def _create_run(cfg: C.TrainConfig, corpus: Corpus, command: str, ngram: NGramFit | None) -> RunDir:
    run_dir = RunDir.create(cfg.run.out, cfg, corpus.fingerprint(), command)
    corpus.vocab.save(run_dir.vocab_path)
    if ngram is not None:
        run_dir.save_ngram(ngram)
    return run_dir


def _command(argv: Sequence[str] | None, values: Mapping, dist: OneProcess) -> str:
    """The command as a user would retype it (a Python call when there was no command line)."""
    if argv is None:
        return "python: rnnlab.workflow " + shlex.join(f"{k}={v!r}" for k, v in values.items())
    torchrun = f"torchrun --nproc_per_node {dist.world_size} -m " if dist.world_size > 1 else ""
    return torchrun + command_line(argv)


def _shrunk_to_fit(cfg: C.TrainConfig, num_ids: int, say: bool = True) -> C.TrainConfig:
    d = cfg.data
    if not d.shrink_to_fit:
        return cfg
    B, T = fit_batch_shape(num_ids, d.batch_size, d.num_steps, d.sampling)
    if (d.batch_size, d.num_steps) == (B, T):
        return cfg
    if say:  # under torchrun, rank 0 speaks for all
        print(f"rnnlab: corpus is short: using --batch-size {B} --num-steps {T}", file=sys.stderr)
    return replace(cfg, data=replace(d, batch_size=B, num_steps=T))


def _samples(cfg: C.TrainConfig, corpus: Corpus) -> Samples | None:
    """One seeded sample per ``--prefix`` (none given: one from an empty prefix) at each validation."""
    r = cfg.run
    if r.sample_length == 0:
        return None

    def samples(model: torch.nn.Module) -> list[tuple[str, str]]:
        return [
            (prefix, prefix + _sample(model, corpus, prefix, r.sample_length, r.seed))
            for prefix in r.prefix or ("",)
        ]

    return samples


def _sample(model: torch.nn.Module, corpus: Corpus, prefix: str, length: int, seed: int) -> str:
    steps = generate_text(model, corpus.vocab, prefix, length, SamplingConfig(), seed=seed, on_unknown="skip")
    return "".join(step[0] for step in steps)


@contextlib.contextmanager
def _stop_on_signals(trainer: Trainer, enabled: bool):
    """Ctrl-C or SIGTERM: finish the current step, save a resumable checkpoint, return. Twice: now."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if trainer.stop_request is not None:
            raise KeyboardInterrupt
        trainer.stop_request = INTERRUPTED

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _fit(trainer: Trainer, dist: OneProcess, handle_signals: bool) -> TrainResult:
    with _stop_on_signals(trainer, handle_signals):
        summary = trainer.fit()
    dist.leave()
    interrupted = summary["stop_reason"] == INTERRUPTED
    run_path = trainer.run.path
    summary["unit"] = trainer.corpus.vocab.kind
    if interrupted or not dist.is_main:
        return TrainResult(run_path, summary, interrupted, is_main=dist.is_main)
    diag = diagnose(read_metrics(trainer.run.metrics_path), cell=trainer.cfg.model.cell)
    summary["fit_verdict"] = diag.fit.verdict
    summary["gradient_verdict"] = diag.gradients.kind if diag.gradients else None
    r = trainer.cfg.run
    prefix = r.prefix[0] if r.prefix else ""
    sample = prefix + _sample(trainer.model, trainer.corpus, prefix, r.sample_length or 200, seed=0)
    return TrainResult(run_path, summary, interrupted, diag, sample)
