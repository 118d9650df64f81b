"""The training loop. It knows batches, losses and states; it never asks which cell it trains."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict

import torch

from rnnlab.config import TrainConfig, cross_fitted
from rnnlab.data import Corpus
from rnnlab.errors import RnnlabError
from rnnlab.model import LanguageModel
from rnnlab.nn.ngram import NGramFit
from rnnlab.nn.state import detach_state, state_from_tensors, state_tensors
from rnnlab.rundir import RunDir, save_model
from rnnlab.train import scoring
from rnnlab.train.checkpoint import load_checkpoint, save_checkpoint, save_unless_broken
from rnnlab.train.distributed import OneProcess, QuietReporter
from rnnlab.train.evaluate import evaluate_parts, held_out
from rnnlab.train.loop_state import INTERRUPTED, LoopState
from rnnlab.train.order import BatchOrder
from rnnlab.train.reporting import Reporter, run_summary, validation_line, write_validation
from rnnlab.train.schedule import budget_spent
from rnnlab.train.step import Stepper
from rnnlab.train.tensorboard import open_tensorboard

Samples = Callable[[torch.nn.Module], list[tuple[str, str]]]
"""``samples(model) -> [(prefix, text), ...]``: what the loop shows at each validation."""


class Trainer:
    """Trains ``model`` on ``corpus``, logging to and checkpointing into ``run``.

    Args:
        cfg: the run's configuration.
        corpus: the encoded splits (its vocabulary is the run's).
        model: a LanguageModel already on ``device``.
        run: the run directory.
        device: where batches go.
        log: prints one line when there is no progress bar (default: stderr).
        progress: show a tqdm bar.
        dist: this process's share of a torchrun run (default: one process, the whole batch).
        samples: text to show at each validation (None: none); the loop itself never touches text.
        ngram: the run's n-gram fit, for the baseline record (None: fitted here when the run scores one).
        validate_first: score the untrained model before the first step (a network over an n-gram
            starts at the n-gram's loss: the best model kept is then never worse than counting).
    """

    def __init__(
        self,
        cfg: TrainConfig,
        corpus: Corpus,
        model: LanguageModel,
        run: RunDir,
        device: torch.device,
        log: Callable[[str], None] | None = None,
        progress: bool = True,
        dist: OneProcess | None = None,
        samples: Samples | None = None,
        ngram: NGramFit | None = None,
        validate_first: bool = False,
    ):
        scoring.check_trainable(cfg, corpus)
        self.cfg, self.corpus, self.model, self.run, self.device = cfg, corpus, model, run, device
        self.dist = dist or OneProcess()
        self.stepper = Stepper(model, cfg, device, self.dist)
        self.order = BatchOrder(corpus.train, cfg.data, cfg.run.seed)
        self.state = LoopState()
        self.carried = None  # the recurrent state consecutive sampling carries across batches
        self._agreed_time = 0.0  # training time as all processes agree on it (see stop_condition)
        self.metrics_size: int | None = None
        self.progress, self._log, self.samples = progress, log, samples
        self.stop_request: str | None = None  # set by a signal handler
        self.adaptive: dict | None = None  # adaptive evaluation's val/test loss, when run
        self.ngram, self.parts = ngram, None  # the baseline's fit; the best model's scores in parts
        self.validate_first = validate_first
        self._val_parts: dict | None = None  # the best model's on val, once this process validated it

    # --- checkpoints ---------------------------------------------------------------------------

    def checkpoint_state(self) -> dict:
        cuda = [torch.cuda.get_rng_state(i) for i in range(torch.cuda.device_count())]
        return {
            "loop": asdict(self.state),
            "metrics_bytes": self.report.size(),
            "model": self.model.state_dict(),
            **self.stepper.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "data_epoch": self.order.epoch_state,
                "data": self.order.rng.get_state(),
                "cuda": cuda,
                **self.dist.rng_states(),
            },
            # the carried state, under its name of checkpoint format 1
            "hidden": state_tensors(self.dist.gather_rows(self.carried)),
        }

    def restore(self, ckpt: dict, weights_only: bool = False) -> None:
        """Continue from a :meth:`checkpoint_state`; ``weights_only``: model and optimiser only."""
        try:
            self.model.load_state_dict(ckpt["model"])
            self.stepper.load_state_dict(ckpt, weights_only)
            if weights_only:
                return
            self.state = LoopState(**ckpt["loop"])
            self._agreed_time = self.state.train_time  # the schedule's clock goes on from where it was
            torch.set_rng_state(ckpt["rng"]["torch"])
            self.order.epoch_state = ckpt["rng"]["data_epoch"]
            if "data" in ckpt["rng"]:  # (not in checkpoints from before it was kept)
                self.order.rng.set_state(ckpt["rng"]["data"])
            for i, s in enumerate(ckpt["rng"]["cuda"][: torch.cuda.device_count()]):
                torch.cuda.set_rng_state(s, i)
            self.dist.restore_rng(ckpt["rng"], self.cfg.run.seed, self.state.step)
            carried = state_from_tensors([t.to(self.device) for t in ckpt["hidden"]])
            self.carried = self.dist.own_rows(carried)
            self.metrics_size = int(ckpt["metrics_bytes"])
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise RnnlabError(f"checkpoint in {self.run.path} does not fit this run ({e})") from e

    def _save(self, save, *args) -> None:
        if self.dist.is_main:  # under torchrun rank 0 writes for all
            save_unless_broken(self.model, self.report, self.state.step, save, *args)

    def _save_checkpoint(self) -> None:
        self._save(save_checkpoint, self.run.path, self.state.step, self.checkpoint_state())

    # --- the loop ----------------------------------------------------------------------------------

    def fit(self) -> dict:
        """Train until a stop condition; returns the run's summary (see :meth:`summary`)."""
        self._wall_start = time.perf_counter()
        self._open_report()
        r, main = self.cfg.run, self.dist.is_main  # under torchrun only rank 0 writes
        if self.metrics_size is None:  # a new run, not a resumed one
            info = scoring.corpus_info(
                self.corpus, self.model, self.order.per_epoch(), self.cfg.model.ngram_fold_passes
            )
            self.report.write("start", **info)
            if r.baseline and main:
                fit = self.ngram or scoring.fit_run_ngram(self.cfg, self.corpus)
                self.state.baseline_val_loss = scoring.score_baseline(fit, self.report)
            if self.validate_first:
                self._validate()  # ... which also checkpoints
            else:
                self._save_checkpoint()  # resumable from the very start: a kill -9 never strands a run
        try:
            self._train_epochs()
        finally:
            self.report.close_bar()
            self.stepper.close()
        if self.state.stop_reason != INTERRUPTED:
            if self.state.last_eval_step != self.state.step:
                self._validate()
            else:
                self._save_checkpoint()
            if main:  # the other processes hold the same model: their scores would be rank 0's
                scores = scoring.score_best(
                    self.model, self.corpus, self.run.model_path, self.report, r.eval_tokens, self._val_parts
                )
                self.state.test_loss, self.parts = scores["test"], scores["parts"]
            if r.adaptive_eval and main:
                self.adaptive = scoring.score_adaptive(self.model, self.corpus, self.report)
        else:
            self._save_checkpoint()
        self.report.write("end", step=self.state.step, reason=self.state.stop_reason)
        self.report.close()
        return self.summary()

    def _open_report(self) -> None:
        """The metrics log and the terminal (rank 0 only; the others keep quiet)."""
        self.report = QuietReporter()
        if not self.dist.is_main:
            return
        r, at = self.cfg.run, self.state.step
        total = r.max_steps or (r.epochs * self.order.per_epoch() if r.epochs else None)
        # TensorBoard hides what an interrupted run wrote after its last checkpoint.
        sinks = [open_tensorboard(self.run.path, self.model, at or None)] if r.tensorboard else []
        self.report = Reporter(
            self.run.metrics_path, self.metrics_size, self.progress, total, at, self._log, sinks
        )

    def _train_epochs(self) -> None:
        r, s = self.cfg.run, self.state
        while True:
            s.stop_reason = s.stop_reason or self.stop_condition()
            if s.stop_reason is not None:
                return
            if s.batch == 0:
                self.carried = None
            for X, Y, starts in self.order.epoch(s.batch):
                self._train_step(X, Y, starts)
                if s.step % r.eval_every == 0:
                    self._validate()
                s.stop_reason = s.stop_reason or self.stop_condition()
                if s.stop_reason is not None:
                    return
            s.epoch, s.batch = s.epoch + 1, 0
            if s.last_eval_step != s.step:
                self._validate()

    def stop_condition(self) -> str | None:
        """Why training should stop now (a signal, a limit, early stopping), or None to go on."""
        r, s = self.cfg.run, self.state
        # Under torchrun a signal may reach one process only, and clocks differ: decide together.
        requested, train_time = self.dist.agree(self.stop_request is not None, s.train_time)
        self._agreed_time = train_time  # the learning-rate schedule's clock, the same in every process
        if requested:
            return self.stop_request or INTERRUPTED
        if r.epochs is not None and s.epoch >= r.epochs:
            return "epochs"
        if r.max_steps is not None and s.step >= r.max_steps:
            return "max steps"
        if r.max_time is not None and train_time >= r.max_time:
            return "time limit"
        if s.bad_evals >= r.patience:
            return "early stopping"
        return None

    def _train_step(self, X: torch.Tensor, Y: torch.Tensor, starts: torch.Tensor) -> None:
        s = self.state
        start = time.perf_counter()
        # Random windows start from zeros; consecutive ones carry the last state, detached (BPTT stops).
        carried = None if self.cfg.data.sampling == "random" else detach_state(self.carried)
        # A cross-fitted n-gram scores the first --ngram-fold-passes passes (0: all), where the network
        # has not learnt the text either; after them, leave-one-out (see rnnlab.nn.ngram.folds).
        placed = starts if cross_fitted(self.cfg.model, s.epoch) else None
        result = self.stepper(X, Y, carried, s.step + 1, self._progress(), placed)
        self.carried = result.state
        if result.decision.action != "step":
            self._non_finite(result.decision)
        if result.record is not None:
            self.report.write("grad", **result.record)
        s.step, s.batch, s.chars_seen = s.step + 1, s.batch + 1, s.chars_seen + Y.numel()
        if math.isfinite(result.loss):
            s.run_loss_sum, s.run_count = s.run_loss_sum + result.loss, s.run_count + 1
            for name, value in result.terms.items():
                s.run_terms[name] = s.run_terms.get(name, 0.0) + value
        s.train_time += time.perf_counter() - start
        self.report.step(result.loss, self._chars_per_s())

    def _non_finite(self, decision) -> None:
        """The update was skipped; on a rollback, reload the last good weights and lower the learning rate."""
        self.carried = None  # a carried state may hold the NaN
        self.report.write(decision.action, step=self.state.step + 1, reason=decision.reason)
        if decision.action == "rollback":
            self.restore(load_checkpoint(self.run.path), weights_only=True)
            self.stepper.scale_lr(decision.lr_factor)
            self.report.say(
                f"rnnlab: {decision.reason}: rolled back to the last checkpoint, lr x{decision.lr_factor}"
            )

    def _progress(self) -> float | None:
        return budget_spent(self.cfg.run, self.state.step, self._agreed_time, self.order.per_epoch())

    def _chars_per_s(self) -> float:
        return self.state.chars_seen / self.state.train_time if self.state.train_time > 0 else 0.0

    # --- validation ---------------------------------------------------------------------------------

    def _validate(self) -> None:
        with self.stepper.scored_weights():  # under --ema, the weights' moving average
            self._score_validation()
        self._save_checkpoint()

    def _score_validation(self) -> None:
        s = self.state
        # Rank 0's score for all: best model, LR on plateau and early stopping decide alike everywhere.
        val = held_out(self.corpus.val, self.cfg.run.eval_tokens, len(self.corpus.vocab))
        parts = self.dist.from_main(lambda: evaluate_parts(self.model, val))
        val_loss = parts["loss"]
        train_loss = s.run_loss_sum / s.run_count if s.run_count else math.nan
        lr = self.stepper.lr
        write_validation(
            self.report, s, train_loss, val_loss, lr, self._chars_per_s(), self.corpus.vocab.kind
        )
        improved = val_loss < s.best_val_loss
        if improved:
            s.best_val_loss, s.best_step, s.bad_evals = val_loss, s.step, 0
            self._val_parts = parts  # the best model's: the scoring at the end reuses them
            self._save(save_model, self.run.model_path, self.model, {"step": s.step, "val_loss": val_loss})
        elif self.stepper.schedule.counts_stalls(self._progress()):
            s.bad_evals += 1
        if math.isfinite(val_loss):
            self.stepper.schedule.validated(val_loss)
        s.run_loss_sum, s.run_count, s.run_terms, s.last_eval_step = 0.0, 0, {}, s.step
        self.report.say(validation_line(s, train_loss, val_loss, improved, lr))
        # A NaN model samples garbage; under torchrun rank 0 samples for all.
        if self.samples is not None and math.isfinite(val_loss) and self.dist.is_main:
            for prefix, text in self.samples(self.model):
                self.report.write("sample", step=s.step, prefix=prefix, text=text)
                self.report.say("  sample: " + text.replace("\n", " ⏎ "))

    def summary(self) -> dict:
        wall, kind = time.perf_counter() - self._wall_start, self.corpus.vocab.kind
        return run_summary(self.state, self.run.path, self._chars_per_s(), wall, self.stepper.guard, kind,
                           parts=self.parts, adaptive=self.adaptive)  # fmt: skip
