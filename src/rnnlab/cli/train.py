"""`rnnlab train`: flags and TOML onto TrainConfig, then the Trainer; ends with a sample and a summary."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from dataclasses import replace

import torch

from rnnlab import config as C
from rnnlab.cli.common import add_config_flags, given, print_result
from rnnlab.data import Corpus
from rnnlab.data.batches import fit_batch_shape
from rnnlab.diagnose.run import diagnose
from rnnlab.errors import RnnlabError
from rnnlab.generate import SamplingConfig, generate_text
from rnnlab.model import LanguageModel
from rnnlab.presets import preset_names, resolve_preset
from rnnlab.rundir import RunDir, command_line
from rnnlab.train import Trainer, load_checkpoint, read_metrics
from rnnlab.train.distributed import OneProcess, processes
from rnnlab.train.loop import INTERRUPTED, check_trainable
from rnnlab.train.tensorboard import require_tensorboard

HELP = {
    "builtin": "built-in corpus used when no CORPUS file is given",
    "split": "train,val,test fractions of the text, contiguous",
    "min_freq": "characters (words) seen fewer times in train become <unk>",
    "tokens": "char, or word: words, punctuation marks and newlines (ppl is then per word)",
    "encoding": "encoding of the corpus files",
    "errors": "undecodable bytes: strict (refuse), replace (U+FFFD) or ignore",
    "sampling": "consecutive (state carried across batches) or random windows (fresh state each)",
    "batch_size": "sequences per batch",
    "num_steps": "time steps per window (truncated backpropagation through time)",
    "shrink_to_fit": "shrink --num-steps, then --batch-size, when the corpus is too short for one batch",
    "cell": "recurrent cell",
    "impl": "torch: torch.nn layers; scratch: rnnlab.nn layers written from the gate equations",
    "hidden_size": "units per recurrent layer",
    "num_layers": "stacked recurrent layers",
    "dropout": "dropout between layers and before the decoder",
    "encoder": "embedding, or onehot (the notes' input)",
    "embedding_dim": "embedding width",
    "tie_weights": "share embedding and decoder weights (needs --embedding-dim = --hidden-size)",
    "bidirectional": "refused with an explanation: a bidirectional LM sees the future",
    "embedding_dropout": "drop whole characters' embeddings (Gal & Ghahramani 2016)",
    "input_dropout": "dropout on the embeddings fed to the recurrent stack",
    "weight_drop": "DropConnect on hidden-to-hidden weights (AWD-LSTM, Merity et al. 2018)",
    "variational": "share input/output dropout masks over time (locked dropout)",
    "l1": "L1 penalty coefficient on weight matrices",
    "l2": "L2 penalty coefficient on weight matrices (in the loss: coupled with Adam)",
    "elastic_net": "elastic net C,RATIO: C*(RATIO*L1 + (1-RATIO)*L2)",
    "ar": "activation regularisation alpha (AWD-LSTM)",
    "tar": "temporal activation regularisation beta (AWD-LSTM)",
    "baseline": "score the Kneser-Ney n-gram baseline on the same split first",
    "adaptive_eval": "finally score val/test with a neural cache, dynamic evaluation and n-gram mixing",
    "monitor_every": "gradient readings every N steps (0: off)",
    "tensorboard": "also log scalars, weight histograms and samples to RUN_DIR/tensorboard",
    "preset": "a named recipe; auto picks small-corpus below 200k training characters, else default",
    "optimizer": "optimiser",
    "lr": "learning rate",
    "weight_decay": "weight decay on weight matrices (coupled for adam, decoupled for adamw)",
    "momentum": "SGD momentum",
    "clip_norm": "clip the global gradient norm to this ('none' turns it off)",
    "clip_value": "clip each gradient element to [-v, v]",
    "lr_factor": "multiply the learning rate by this when validation stalls (1: constant)",
    "lr_patience": "validations without improvement before the learning rate drops",
    "epochs": "passes over the training split",
    "max_steps": "stop after this many optimiser steps",
    "max_time": "stop after this many seconds of training ('none': no limit)",
    "seed": "random seed: the same seed gives the same run, bit for bit on the CPU",
    "eval_every": "validate, sample and checkpoint every N steps (and at each epoch end)",
    "patience": "early stopping: validations without improvement before stopping",
    "prefix": "prefix for the samples shown at each validation (repeatable)",
    "sample_length": "characters per sample",
    "device": "auto, cpu, cuda or cuda:N",
    "precision": "fp32, or bf16 autocast",
    "out": "run directory (default: runs/<corpus>-<date>-<time>); never overwritten",
}
CHOICES = {
    "sampling": C.SAMPLINGS,
    "tokens": C.TOKENS,
    "cell": C.CELLS,
    "impl": C.IMPLS,
    "encoder": C.ENCODERS,
    "optimizer": C.OPTIMIZERS,
    "precision": C.PRECISIONS,
    "preset": preset_names(),
}
ALL_FIELDS = tuple(f for f in C.FIELD_SECTION if f != "corpus")  # corpus is the positional argument
# What a resumed run may change: when to stop, and where to compute.
RESUMABLE = ("epochs", "max_steps", "max_time", "patience", "device", "tensorboard")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a language model on text files (or the built-in corpus)",
        description="Train a recurrent language model. Flags override a --config TOML file, which "
        "overrides the defaults. Progress goes to stderr; stdout gets a final sample and a summary line.",
    )
    p.add_argument(
        "corpus", nargs="*", metavar="CORPUS", help="UTF-8 text files (default: the built-in corpus)"
    )
    p.add_argument("--config", metavar="FILE.toml", help="TOML file with the same keys as the flags")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run exactly where it stopped")
    add_config_flags(
        p, C.DataConfig, "data", HELP, CHOICES, skip=("corpus",), metavars={"split": "TRAIN,VAL,TEST"}
    )
    add_config_flags(p, C.ModelConfig, "model", HELP, CHOICES)
    add_config_flags(p, C.OptimConfig, "optimisation", HELP, CHOICES)
    add_config_flags(
        p, C.RegConfig, "regularisation penalties", HELP, CHOICES, metavars={"elastic_net": "C,RATIO"}
    )
    add_config_flags(p, C.RunConfig, "run", HELP, CHOICES)
    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="make the summary line a JSON object")
    out.add_argument("--quiet", action="store_true", help="no progress bar")
    out.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def user_values(args: argparse.Namespace) -> dict:
    """What the user asked for: the TOML file's keys, overridden by the flags given."""
    flat = C.load_toml(args.config) if args.config else {}
    flat = {k.replace("-", "_"): v for k, v in flat.items()}
    flat.update(given(args, ALL_FIELDS))
    if args.corpus:
        flat["corpus"] = tuple(args.corpus)
    return flat


def resolve_config(flat: dict, train_chars: int) -> C.TrainConfig:
    """Defaults, then the preset (``auto``: chosen by the size of the training split), then ``flat``."""
    name, values = resolve_preset(flat.get("preset", "auto"), train_chars)
    return C.TrainConfig.from_flat({**values, **flat, "preset": name})


def run(args: argparse.Namespace) -> int:
    dist = processes()  # under torchrun: this process's rank; else one process, as ever
    if args.resume:
        trainer = _resumed_trainer(args, dist)
    else:
        flat = user_values(args)
        cfg = C.TrainConfig.from_flat(flat)  # validates every value before any work
        if cfg.run.tensorboard:
            require_tensorboard()
        RunDir.check_new(cfg.run.out)
        corpus = Corpus.from_config(cfg.data)
        cfg = resolve_config(flat, len(corpus.train))
        cfg = _shrunk_to_fit(cfg, len(corpus.train), say=dist.is_main)
        check_trainable(cfg, corpus)
        device = dist.setup(cfg)
        torch.manual_seed(cfg.run.seed)
        model = LanguageModel.from_config(cfg.model, len(corpus.vocab)).to(device)
        dist.seed(cfg.run.seed)
        # Only now that every input is valid: a refused run leaves nothing on disk. Rank 0 writes.
        run_dir = dist.from_main(lambda: _create_run(cfg, corpus, _command(args, dist)))
        trainer = Trainer(cfg, corpus, model, run_dir, device, progress=not args.quiet, dist=dist)
    with _stop_on_signals(trainer):
        summary = trainer.fit()
    dist.leave()
    if not dist.is_main:
        return 130 if summary["stop_reason"] == INTERRUPTED else 0
    return _finish(trainer, summary, args.json)


def _create_run(cfg: C.TrainConfig, corpus: Corpus, command: str) -> RunDir:
    run_dir = RunDir.create(cfg.run.out, cfg, corpus.fingerprint(), command)
    corpus.vocab.save(run_dir.vocab_path)
    return run_dir


def _command(args: argparse.Namespace, dist: OneProcess) -> str:
    torchrun = f"torchrun --nproc_per_node {dist.world_size} -m " if dist.world_size > 1 else ""
    return torchrun + command_line(args.argv)


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


def _resumed_trainer(args: argparse.Namespace, dist: OneProcess) -> Trainer:
    changed = sorted(set(given(args, ALL_FIELDS)) - set(RESUMABLE))
    if changed or args.corpus or args.config:
        what = ", ".join("--" + n.replace("_", "-") for n in changed) or "the corpus or --config"
        raise RnnlabError(
            f"--resume continues a run as it was configured; it cannot change {what} "
            f"(only {', '.join('--' + n.replace('_', '-') for n in RESUMABLE)})"
        )
    run_dir = RunDir.open(args.resume)
    if not run_dir.checkpoint_path.exists():
        raise RnnlabError(f"{run_dir.path} has no checkpoint.json to resume from")
    cfg = C.TrainConfig.from_flat(given(args, RESUMABLE), base=run_dir.load_config())
    if cfg.run.tensorboard:
        require_tensorboard()
    corpus = Corpus.from_config(cfg.data, vocab=run_dir.load_vocab())
    if corpus.fingerprint() != run_dir.corpus_sha256():
        raise RnnlabError("the corpus changed since this run started; resume needs the same text")
    ckpt = load_checkpoint(run_dir.path)
    device = dist.setup(cfg)
    model = LanguageModel.from_config(cfg.model, len(corpus.vocab)).to(device)
    trainer = Trainer(cfg, corpus, model, run_dir, device, progress=not args.quiet, dist=dist)
    trainer.restore(ckpt)
    finished = trainer.state.stop_reason not in (None, INTERRUPTED)
    trainer.state.stop_reason = None
    reason = trainer.stop_condition()
    # A run killed after its last checkpoint but before its "end" record still owes its test score:
    # resuming it finishes that. One that ended needs a larger limit to go on.
    ended = any(r.get("event") == "end" for r in read_metrics(run_dir.metrics_path))
    if finished and ended and reason is not None:
        raise RnnlabError(
            f"run {run_dir.path} already stopped ({reason}); "
            "give a larger --max-steps, --epochs, --max-time or --patience to train on"
        )
    if dist.is_main:
        run_dir.record_resume(cfg, _command(args, dist))
    return trainer


@contextlib.contextmanager
def _stop_on_signals(trainer: Trainer):
    """Ctrl-C or SIGTERM: finish the current step, save a resumable checkpoint, exit. Twice: now."""

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


def _finish(trainer: Trainer, summary: dict, as_json: bool) -> int:
    run = trainer.run.path
    unit = summary["unit"] = trainer.corpus.vocab.kind
    if unit == "word":  # the losses are per word: "bits per character" would mislabel them
        summary["best_val_bpc"] = summary["test_bpc"] = None
    if summary["stop_reason"] == INTERRUPTED:
        print(
            f"interrupted at step {summary['steps']}; continue with: rnnlab train --resume {run}", flush=True
        )
        print_result(summary, as_json, f"run {run}: interrupted, checkpoint saved")
        return 130
    diag = diagnose(read_metrics(trainer.run.metrics_path), cell=trainer.cfg.model.cell)
    print(diag.render_text(), file=sys.stderr, flush=True)
    summary["fit_verdict"] = diag.fit.verdict
    summary["gradient_verdict"] = diag.gradients.kind if diag.gradients else None
    prefix = trainer.cfg.run.prefix[0] if trainer.cfg.run.prefix else ""
    length = trainer.cfg.run.sample_length or 200
    chars = generate_text(
        trainer.model, trainer.corpus.vocab, prefix, length, SamplingConfig(), seed=0, on_unknown="skip"
    )
    print(prefix + "".join(step[0] for step in chars), flush=True)
    per, bpc = (" per word", "") if unit == "word" else ("", f", {summary['best_val_bpc']:.3f} bpc")
    test = f", test ppl {summary['test_ppl']:.2f}{per}" if summary["test_ppl"] is not None else ""
    human = (
        f"run {run}: {summary['steps']} steps ({summary['stop_reason']}), "
        f"best val loss {summary['best_val_loss']:.4f} (ppl {summary['best_val_ppl']:.2f}{per}{bpc})"
        f"{test}, {summary['train_chars_per_s']:,.0f} {unit}s/s"
    )
    print_result(summary, as_json, human)
    return 0
