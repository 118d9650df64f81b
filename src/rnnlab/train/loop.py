"""The training loop. It knows batches, losses and states; it never asks which cell it trains."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import torch

from rnnlab.config import TrainConfig
from rnnlab.data import (
    Corpus,
    consecutive_batch_count,
    consecutive_batches,
    random_batch_count,
    random_batches,
)
from rnnlab.device import autocast
from rnnlab.diagnose.ngram import select_order
from rnnlab.errors import RnnlabError
from rnnlab.generate import SamplingConfig, generate_text
from rnnlab.losses import cross_entropy, loss_readings, regularization_terms
from rnnlab.model import LanguageModel
from rnnlab.nn.state import detach_state, state_from_tensors, state_tensors
from rnnlab.train.checkpoint import load_model_weights, save_checkpoint, save_model
from rnnlab.train.evaluate import evaluate_loss
from rnnlab.train.metrics import MetricsLog
from rnnlab.train.optim import build_optimizer, build_scheduler

if TYPE_CHECKING:
    from rnnlab.rundir import RunDir

INTERRUPTED = "interrupted"
BASELINE_MAX_CHARS = 20_000_000  # beyond this the n-gram counts cost more than they tell


@dataclass
class LoopState:
    """Where the loop is: everything besides tensors that a checkpoint must restore."""

    epoch: int = 0
    batch: int = 0  # batches done in the current epoch
    step: int = 0
    chars_seen: int = 0
    train_time: float = 0.0  # seconds spent in training steps (evaluation excluded)
    best_val_loss: float = math.inf
    best_step: int = 0
    bad_evals: int = 0  # validations since the best one (early stopping)
    run_loss_sum: float = 0.0  # running train loss since the last validation
    run_count: int = 0
    run_terms: dict = field(default_factory=dict)  # running sums of each penalty term
    baseline_val_loss: float | None = None  # the n-gram baseline's, for comparison
    last_eval_step: int = -1
    stop_reason: str | None = None


def check_trainable(cfg: TrainConfig, corpus: Corpus) -> None:
    """Refuse, before anything is written, a corpus that cannot give a batch or a validation score."""
    if len(corpus.val) < 2:
        raise RnnlabError(
            f"the validation split has {len(corpus.val)} characters; give --split a VAL fraction "
            "that leaves it some text (or use a larger corpus)"
        )
    d = cfg.data
    if d.sampling == "random":
        next(random_batches(corpus.train, d.batch_size, d.num_steps, generator=torch.Generator()), None)
    else:
        next(consecutive_batches(corpus.train, d.batch_size, d.num_steps), None)


class Trainer:
    """Trains ``model`` on ``corpus``, logging to and checkpointing into ``run``.

    Args:
        cfg: the run's configuration.
        corpus: the encoded splits (its vocabulary is the run's).
        model: a LanguageModel already on ``device``.
        run: the run directory.
        device: where batches go.
        log: prints one progress line (default: stderr).
        progress: show a tqdm bar.
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
    ):
        self.cfg, self.corpus, self.model, self.run, self.device = cfg, corpus, model, run, device
        self.optimizer = build_optimizer(model, cfg.optim)
        self.scheduler = build_scheduler(self.optimizer, cfg.optim)
        self.data_rng = torch.Generator().manual_seed(cfg.run.seed)
        self.epoch_rng_state = self.data_rng.get_state()  # the sampler's draws for this epoch
        self.state = LoopState()
        self.hidden = None  # carried across batches by consecutive sampling
        self.metrics_size: int | None = None
        self.progress = progress
        self._log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self._bar = None
        self.stop_request: str | None = None  # set by a signal handler
        check_trainable(cfg, corpus)

    # --- checkpoints ---------------------------------------------------------------------------

    def checkpoint_state(self) -> dict:
        cuda = [torch.cuda.get_rng_state(i) for i in range(torch.cuda.device_count())]
        return {
            "loop": asdict(self.state),
            "metrics_bytes": self.metrics.size(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "data_epoch": self.epoch_rng_state, "cuda": cuda},
            "hidden": state_tensors(self.hidden),
        }

    def restore(self, ckpt: dict) -> None:
        """Continue from a :meth:`checkpoint_state` (read back by ``load_checkpoint``)."""
        try:
            self.state = LoopState(**ckpt["loop"])
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scheduler.load_state_dict(ckpt["scheduler"])
            torch.set_rng_state(ckpt["rng"]["torch"])
            self.epoch_rng_state = ckpt["rng"]["data_epoch"]
            for i, s in enumerate(ckpt["rng"]["cuda"][: torch.cuda.device_count()]):
                torch.cuda.set_rng_state(s, i)
            self.hidden = state_from_tensors([t.to(self.device) for t in ckpt["hidden"]])
            self.metrics_size = int(ckpt["metrics_bytes"])
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise RnnlabError(f"checkpoint in {self.run.path} does not fit this run ({e})") from e

    def _save_checkpoint(self) -> None:
        self._saving(save_checkpoint, self.run.path, self.state.step, self.checkpoint_state())

    def _saving(self, save, *args) -> bool:
        """Run a save; a full disk or a permission error is reported and training goes on (the
        previous file is intact, see rnnlab.io.atomic_write)."""
        try:
            save(*args)
            return True
        except RnnlabError as e:
            self._say(f"rnnlab: warning: {e}")
            self.metrics.write("save_failed", step=self.state.step, error=str(e))
            return False

    # --- the loop ----------------------------------------------------------------------------------

    def batches_per_epoch(self) -> int:
        d = self.cfg.data
        count = random_batch_count if d.sampling == "random" else consecutive_batch_count
        return count(len(self.corpus.train), d.batch_size, d.num_steps)

    def _epoch_batches(self):
        d, s = self.cfg.data, self.state
        if d.sampling == "random":
            # Re-seat the generator where this epoch began: a resumed epoch redraws the same order.
            self.data_rng.set_state(self.epoch_rng_state)
            return random_batches(
                self.corpus.train, d.batch_size, d.num_steps, generator=self.data_rng, start=s.batch
            )
        return consecutive_batches(self.corpus.train, d.batch_size, d.num_steps, start=s.batch)

    def fit(self) -> dict:
        """Train until a stop condition; returns the run's summary (see :meth:`summary`)."""
        self._wall_start = time.perf_counter()
        self.metrics = MetricsLog(self.run.metrics_path, truncate_to=self.metrics_size)
        if self.metrics_size is None:  # a new run, not a resumed one
            self.metrics.write("start", **self._corpus_info())
            self._baseline()
            self._save_checkpoint()  # resumable from the very start: a kill -9 never strands a run
        self._open_bar()
        try:
            self._train_epochs()
        finally:
            if self._bar is not None:
                self._bar.close()
        if self.state.stop_reason != INTERRUPTED:
            if self.state.last_eval_step != self.state.step:
                self._validate()
            else:
                self._save_checkpoint()
            self._test()
        else:
            self._save_checkpoint()
        self.metrics.write("end", step=self.state.step, reason=self.state.stop_reason)
        self.metrics.close()
        return self.summary()

    def _train_epochs(self) -> None:
        r, s = self.cfg.run, self.state
        while True:
            s.stop_reason = s.stop_reason or self.stop_condition()
            if s.stop_reason is not None:
                return
            if s.batch == 0:
                self.epoch_rng_state = self.data_rng.get_state()
                self.hidden = None
            for X, Y in self._epoch_batches():
                self._train_step(X, Y)
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
        if self.stop_request is not None:
            return self.stop_request
        if r.epochs is not None and s.epoch >= r.epochs:
            return "epochs"
        if r.max_steps is not None and s.step >= r.max_steps:
            return "max steps"
        if r.max_time is not None and s.train_time >= r.max_time:
            return "time limit"
        if s.bad_evals >= r.patience:
            return "early stopping"
        return None

    def _train_step(self, X: torch.Tensor, Y: torch.Tensor) -> None:
        s, o = self.state, self.cfg.optim
        start = time.perf_counter()
        X, Y = X.to(self.device, non_blocking=True), Y.to(self.device, non_blocking=True)
        # Random windows are unrelated: start from zeros. Consecutive ones continue the previous
        # window, so carry its state, detached so backpropagation stops at the window's start.
        hidden = None if self.cfg.data.sampling == "random" else detach_state(self.hidden)
        with autocast(self.device, self.cfg.run.precision):
            out = self.model(X, hidden)
        loss = cross_entropy(out.logits, Y)
        r = self.cfg.reg
        terms = regularization_terms(
            self.model, out.hidden, l1=r.l1, l2=r.l2, elastic_net=r.elastic_net, ar=r.ar, tar=r.tar
        )
        self.optimizer.zero_grad(set_to_none=True)
        (loss + sum(terms.values())).backward()
        if o.clip_value is not None:
            torch.nn.utils.clip_grad_value_(self.model.parameters(), o.clip_value)
        if o.clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), o.clip_norm)
        self.optimizer.step()
        self.hidden = out.state
        value = loss.item()
        s.step, s.batch = s.step + 1, s.batch + 1
        s.chars_seen += Y.numel()
        s.run_loss_sum, s.run_count = s.run_loss_sum + value, s.run_count + 1
        for name, term in terms.items():
            s.run_terms[name] = s.run_terms.get(name, 0.0) + term.item()
        s.train_time += time.perf_counter() - start
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(
                loss=f"{value:.3f}",
                ppl=f"{math.exp(min(value, 50)):.1f}",
                chars_s=f"{self._chars_per_s():.0f}",
            )

    def _chars_per_s(self) -> float:
        return self.state.chars_seen / self.state.train_time if self.state.train_time > 0 else 0.0

    # --- validation, samples, test ------------------------------------------------------------------

    def _validate(self) -> None:
        s = self.state
        val_loss, _ = evaluate_loss(self.model, self.corpus.val)
        train_loss = s.run_loss_sum / s.run_count if s.run_count else math.nan
        lr = self.optimizer.param_groups[0]["lr"]
        common = {"step": s.step, "epoch": s.epoch, "chars_seen": s.chars_seen}
        self.metrics.write(
            "train",
            **common,
            **loss_readings(train_loss),
            lr=lr,
            chars_per_s=self._chars_per_s(),
            train_time=s.train_time,
            **{f"penalty_{k}": v / s.run_count for k, v in s.run_terms.items() if s.run_count},
        )
        self.metrics.write("val", **common, **loss_readings(val_loss))
        improved = val_loss < s.best_val_loss
        if improved:
            s.best_val_loss, s.best_step, s.bad_evals = val_loss, s.step, 0
            self._saving(save_model, self.run.model_path, self.model, {"step": s.step, "val_loss": val_loss})
        else:
            s.bad_evals += 1
        self.scheduler.step(val_loss)
        s.run_loss_sum, s.run_count, s.run_terms, s.last_eval_step = 0.0, 0, {}, s.step
        self._say(
            f"step {s.step:>6}  epoch {s.epoch}  train loss {train_loss:.3f}  val loss {val_loss:.3f} "
            f"(ppl {math.exp(min(val_loss, 50)):.2f}{self._baseline_note()})"
            f"{'  *' if improved else ''}  lr {lr:.2g}"
        )
        self._samples()
        self._save_checkpoint()

    def _baseline(self) -> None:
        """Score the n-gram baseline on the same split and vocabulary (too slow on huge corpora)."""
        c = self.corpus
        if not self.cfg.run.baseline or len(c.train) > BASELINE_MAX_CHARS:
            return
        start = time.perf_counter()
        sel = select_order(c.train, c.val, len(c.vocab), test=c.test)
        best = sel.best
        self.state.baseline_val_loss = best.val_loss
        self.metrics.write(
            "baseline", order=sel.order, val_loss=best.val_loss, val_ppl=best.val_ppl,
            test_loss=best.test_loss, test_ppl=best.test_ppl, seconds=time.perf_counter() - start,
        )  # fmt: skip
        self._say(
            f"n-gram baseline (Kneser-Ney, order {sel.order} chosen on val): val ppl {best.val_ppl:.2f}"
        )

    def _baseline_note(self) -> str:
        b = self.state.baseline_val_loss
        return f", n-gram {math.exp(b):.2f}" if b is not None else ""

    def _samples(self) -> None:
        length = self.cfg.run.sample_length
        if length == 0:
            return
        for prefix in self.cfg.run.prefix or ("",):
            chars = generate_text(
                self.model,
                self.corpus.vocab,
                prefix,
                length,
                SamplingConfig(),
                seed=self.cfg.run.seed,
                on_unknown="skip",
            )
            text = prefix + "".join(step[0] for step in chars)
            self.metrics.write("sample", step=self.state.step, prefix=prefix, text=text)
            self._say("  sample: " + text.replace("\n", " ⏎ ")[: length + len(prefix)])

    def _test(self) -> None:
        if len(self.corpus.test) < 2 or not self.run.model_path.exists():
            return
        info = load_model_weights(self.run.model_path, self.model)
        test_loss, count = evaluate_loss(self.model, self.corpus.test)
        self.metrics.write("test", step=info.get("step"), chars=count, **loss_readings(test_loss))
        self.test_loss = test_loss

    # --- output ------------------------------------------------------------------------------------

    def _corpus_info(self) -> dict:
        c = self.corpus
        return {
            "source": c.source,
            "vocab_size": len(c.vocab),
            "chars": {"train": len(c.train), "val": len(c.val), "test": len(c.test)},
            "oov_rate": c.oov_rate,
            "batches_per_epoch": self.batches_per_epoch(),
            "params": sum(p.numel() for p in self.model.parameters()),
        }

    def _open_bar(self) -> None:
        if not self.progress:
            return
        from tqdm import tqdm

        r = self.cfg.run
        total = r.max_steps or (r.epochs * self.batches_per_epoch() if r.epochs else None)
        self._bar = tqdm(
            total=total, initial=self.state.step, unit="step", file=sys.stderr, dynamic_ncols=True
        )

    def _say(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=sys.stderr)
        else:
            self._log(line)

    def summary(self) -> dict:
        s = self.state
        best = loss_readings(s.best_val_loss) if math.isfinite(s.best_val_loss) else {}
        test = loss_readings(self.test_loss) if getattr(self, "test_loss", None) is not None else {}
        return {
            "run_dir": str(self.run.path),
            "stop_reason": s.stop_reason,
            "steps": s.step,
            "epochs": s.epoch,
            "chars_seen": s.chars_seen,
            "train_chars_per_s": round(self._chars_per_s(), 1),
            "train_time_s": round(s.train_time, 2),
            "wall_s": round(time.perf_counter() - self._wall_start, 2),
            "best_step": s.best_step,
            "best_val_loss": best.get("loss"),
            "best_val_ppl": best.get("ppl"),
            "best_val_bpc": best.get("bpc"),
            "test_loss": test.get("loss"),
            "test_ppl": test.get("ppl"),
            "test_bpc": test.get("bpc"),
            "baseline_val_ppl": math.exp(s.baseline_val_loss) if s.baseline_val_loss is not None else None,
        }
