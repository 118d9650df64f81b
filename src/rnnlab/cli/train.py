"""`rnnlab train`: flags and TOML onto a run's values, then rnnlab.workflow; prints a sample and a summary."""

from __future__ import annotations

import argparse
import sys

from rnnlab import config as C
from rnnlab.cli.common import add_config_flags, given, print_result
from rnnlab.errors import RnnlabError
from rnnlab.presets import preset_names
from rnnlab.workflow import RESUMABLE, TrainResult, resume_run, start_run

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
    "cell": "recurrent cell (mingru, minlstm: Feng et al. 2024, parallel over time, in their block)",
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
    "min_block": "mingru/minlstm: the block's parts around the cell (conv: causal depthwise convolution, "
    "mlp, norm: RMSNorm), comma-separated, or none",
    "ngram": "residual: the network learns the residual of a Kneser-Ney n-gram (Li et al. 2022); off: alone",
    "ngram_order": "the residual n-gram's order (0: the best on validation, up to 7)",
    "ngram_tokens": "count at most this many training tokens for the n-gram (0: 8M, and under --max-time at "
    "most 100k per second of it)",
    "ngram_folds": "score training positions with n-grams counted without their fold (cross-fitting; up "
    "to 2M tokens); 0: leave-one-out counts",
    "ngram_fold_passes": "cross-fit the first N passes over the training text, leave-one-out after (0: all)",
    "ngram_gate": "orders: a weight per n-gram order read from the state; one: one weight; "
    "auto: orders up to 512 distinct tokens",
    "l1": "L1 penalty coefficient on weight matrices",
    "l2": "L2 penalty coefficient on weight matrices (in the loss: coupled with Adam)",
    "elastic_net": "elastic net C,RATIO: C*(RATIO*L1 + (1-RATIO)*L2)",
    "ar": "activation regularisation alpha (AWD-LSTM)",
    "tar": "temporal activation regularisation beta (AWD-LSTM)",
    "baseline": "score the Kneser-Ney n-gram baseline on the same split first",
    "adaptive_eval": "finally score val/test with a neural cache, dynamic evaluation and n-gram mixing",
    "monitor_every": "gradient readings every N steps (0: off)",
    "tensorboard": "also log scalars, weight histograms and samples to RUN_DIR/tensorboard",
    "preset": "a named recipe; auto: small-corpus below 200k training tokens (chars or words), else long "
    "from 300 s of training (or no time limit), else default",
    "optimizer": "optimiser",
    "lr": "learning rate",
    "weight_decay": "weight decay on weight matrices (coupled for adam, decoupled for adamw)",
    "momentum": "SGD momentum",
    "clip_norm": "clip the global gradient norm to this ('none' turns it off)",
    "clip_value": "clip each gradient element to [-v, v]",
    "schedule": "learning rate: deadline (warm up, then decay to 0 when the budget ends), plateau, "
    "constant; auto: deadline when there is a --max-time, --max-steps or --epochs, else plateau",
    "warmup": "deadline schedule: share of the budget spent warming up",
    "lr_factor": "plateau schedule: multiply the learning rate by this when validation stalls (1: constant)",
    "lr_patience": "validations without improvement before the learning rate drops",
    "ema": "validate and keep a moving average of the weights with this decay per step (0: the weights)",
    "epochs": "passes over the training split",
    "max_steps": "stop after this many optimiser steps",
    "max_time": "stop after this many seconds of training ('none': no limit)",
    "seed": "random seed: the same seed gives the same run, bit for bit on the CPU",
    "eval_every": "validate, sample and checkpoint every N steps (and at each epoch end)",
    "patience": "early stopping: validations without improvement before stopping",
    "prefix": "prefix for the samples shown at each validation (repeatable)",
    "sample_length": "characters per sample",
    "device": "auto, cpu, cuda or cuda:N",
    "precision": "fp32, bf16 autocast, or auto: bf16 where the CPU/GPU computes it natively",
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
    "schedule": C.SCHEDULES,
    "preset": preset_names(),
}
ALL_FIELDS = tuple(f for f in C.FIELD_SECTION if f != "corpus")  # corpus is the positional argument


def add_parser(sub) -> argparse.ArgumentParser:
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
    p.set_defaults(func=run)
    return p


def user_values(args: argparse.Namespace) -> dict:
    """What the user asked for: the TOML file's keys, overridden by the flags given."""
    flat = C.load_toml(args.config) if args.config else {}
    flat = {k.replace("-", "_"): v for k, v in flat.items()}
    flat.update(given(args, ALL_FIELDS))
    if args.corpus:
        flat["corpus"] = tuple(args.corpus)
    return flat


def run(args: argparse.Namespace) -> int:
    progress = not args.quiet
    if args.resume:
        changes = given(args, ALL_FIELDS)
        if (args.corpus or args.config) and not set(changes) - set(RESUMABLE):
            raise RnnlabError(
                "--resume continues a run as it was configured; it cannot change the corpus or --config "
                f"(only {', '.join(C.flag_name(n) for n in RESUMABLE)})"
            )
        result = resume_run(args.resume, changes, argv=args.argv, progress=progress)
    else:
        result = start_run(user_values(args), argv=args.argv, progress=progress)
    if not result.is_main:
        return 130 if result.interrupted else 0
    return _print(result, args.json)


def _print(result: TrainResult, as_json: bool) -> int:
    """The sample, then the summary line (the diagnosis goes to stderr); 130 for an interrupted run."""
    summary, run = result.summary, result.run_dir
    if result.interrupted:
        print(
            f"interrupted at step {summary['steps']}; continue with: rnnlab train --resume {run}", flush=True
        )
        print_result(summary, as_json, f"run {run}: interrupted, checkpoint saved")
        return 130
    print(result.diagnosis.render_text(), file=sys.stderr, flush=True)
    print(result.sample, flush=True)
    unit = summary["unit"]
    per = " per word" if unit == "word" else ""
    bpc = f", {summary['best_val_bpc']:.3f} bpc" if summary["best_val_bpc"] is not None else ""
    test = f", test ppl {summary['test_ppl']:.2f}{per}" if summary["test_ppl"] is not None else ""
    human = (
        f"run {run}: {summary['steps']} steps ({summary['stop_reason']}), "
        f"best val loss {summary['best_val_loss']:.4f} (ppl {summary['best_val_ppl']:.2f}{per}{bpc})"
        f"{test}, {summary['train_chars_per_s']:,.0f} {unit}s/s"
    )
    if "network_val_loss" in summary:  # a residual model: what learning added to counting
        human += (
            f"; val loss of the n-gram alone {summary['ngram_val_loss']:.4f}, "
            f"of the network alone {summary['network_val_loss']:.4f}"
        )
    print_result(summary, as_json, human)
    return 0
