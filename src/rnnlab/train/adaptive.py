"""Evaluation that adapts to the text as it is scored: neural cache, dynamic evaluation, n-gram mixing.

Held-out text often repeats itself (a chorus comes back within the song). Three standard ways to use the
part of the stream already scored, never a character before it has been scored:

* neural cache (Grave, Joulin & Usunier 2017): the hidden state at ``t`` is compared with the states of
  the already-scored positions; ``p_cache(w) ∝ Σ_{i<t, x_{i+1}=w} exp(θ h_t·h_i)``;
* dynamic evaluation (Krause et al. 2018): after a window has been scored, one gradient step on it,
  decaying back towards the trained weights, so the model drifts towards the recent text;
* n-gram mixing: the Kneser-Ney baseline's probability of the same character, interpolated.

The final probability of the true next character is the mixture
``p = (1 - λ_c - λ_n) p_model + λ_c p_cache + λ_n p_ngram``; each part is normalised, so the mixture is.
The stream is read as one row, window by window, with the state carried (as a reader would).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch

from rnnlab.config import check_number
from rnnlab.losses import cross_entropy
from rnnlab.nn.state import detach_state


@dataclass(frozen=True)
class AdaptiveConfig:
    num_steps: int = 64  # window length: the cache and the dynamic update see whole windows
    dynamic_lr: float = 0.0  # 0: no dynamic evaluation
    dynamic_decay: float = 0.02  # pull back towards the trained weights after each update
    cache_size: int = 0  # 0: no cache; else how many past positions the cache keeps
    cache_theta: float = 0.3  # flatness of the cache's softmax over similarities
    cache_lambda: float = 0.0
    ngram_lambda: float = 0.0

    def __post_init__(self):
        check_number("num_steps", self.num_steps, 1)
        check_number("dynamic_lr", self.dynamic_lr, 0)
        check_number("dynamic_decay", self.dynamic_decay, 0, 1)
        check_number("cache_size", self.cache_size, 0)
        check_number("cache_theta", self.cache_theta, 0)
        check_number("cache_lambda", self.cache_lambda, 0, 1)
        check_number("ngram_lambda", self.ngram_lambda, 0, 1)
        check_number("cache_lambda + ngram_lambda", self.cache_lambda + self.ngram_lambda, 0, 1)


@dataclass
class StreamProbs:
    """Per-position probabilities of the true next character, one array per source (length n-1)."""

    model: np.ndarray
    cache: np.ndarray | None

    def mix(self, cache_lambda: float, ngram: np.ndarray | None, ngram_lambda: float) -> float:
        """Mean loss in nats of the mixture with these weights."""
        p = (1 - cache_lambda - ngram_lambda) * self.model
        if self.cache is not None and cache_lambda:
            p = p + cache_lambda * self.cache
        if ngram is not None and ngram_lambda:
            p = p + ngram_lambda * ngram
        return float(-np.log(np.maximum(p, 1e-300)).mean())


def stream_probs(model: torch.nn.Module, ids: np.ndarray, cfg: AdaptiveConfig) -> StreamProbs:
    """Score ``ids[1:]`` one window at a time, adapting as it goes (see the module docstring).

    The model is copied when dynamic evaluation changes weights; the caller's model is left untouched.
    """
    device = next(model.parameters()).device
    stream = torch.from_numpy(np.asarray(ids).astype(np.int64)).to(device)
    n = len(stream) - 1
    if cfg.dynamic_lr > 0:
        model = copy.deepcopy(model)
        originals = [p.detach().clone() for p in model.parameters()]
    model.eval()
    p_model, p_cache = np.zeros(n), np.zeros(n) if cfg.cache_size else None
    keys, values = [], []  # cache: hidden states and the character that followed each
    state = None
    for t0 in range(0, n, cfg.num_steps):
        x = stream[t0 : min(t0 + cfg.num_steps, n)][None]  # (1, T)
        y = stream[t0 + 1 : t0 + 1 + x.shape[1]][None]
        with torch.no_grad():
            out = model(x, state)
            probs = torch.softmax(out.logits[0].float(), -1)  # (T, V)
            p_model[t0 : t0 + x.shape[1]] = probs.gather(1, y[0][:, None])[:, 0].cpu().numpy()
            if p_cache is not None:
                h = out.outputs[0].float()  # (T, H)
                p_cache[t0 : t0 + x.shape[1]] = _cache_probs(h, y[0], keys, values, cfg)
                keys.append(h)
                values.append(y[0])
        if cfg.dynamic_lr > 0:
            _dynamic_step(model, x, y, state, originals, cfg)
        state = detach_state(out.state)
    return StreamProbs(p_model, p_cache)


def _cache_probs(
    h: torch.Tensor, y: torch.Tensor, keys: list, values: list, cfg: AdaptiveConfig
) -> np.ndarray:
    """p_cache(y_t) for each step of the window, from earlier windows and earlier steps of this one."""
    past_h = torch.cat([*keys, h])[-(cfg.cache_size + len(h)) :]  # (P + T, H)
    past_y = torch.cat([*values, y])[-(cfg.cache_size + len(h)) :]
    P = len(past_h) - len(h)
    scores = cfg.cache_theta * h @ past_h.t()  # (T, P + T)
    # Step t may use positions whose next character is already scored: the P old ones and t' < t.
    allowed = torch.arange(len(past_h))[None, :] < (P + torch.arange(len(h)))[:, None]
    scores = scores.masked_fill(~allowed, -math.inf)
    weights = torch.softmax(scores, -1).nan_to_num(0.0)  # a row with no past at all: all zero
    hit = (past_y[None, :] == y[:, None]).float()  # (T, P + T): past positions followed by y_t
    return (weights * hit).sum(-1).cpu().numpy()


def _dynamic_step(model, x, y, state, originals, cfg: AdaptiveConfig) -> None:
    """One SGD step on the window just scored, then decay towards the trained weights."""
    with torch.enable_grad():
        out = model(x, detach_state(state))
        loss = cross_entropy(out.logits, y)
        grads = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)
    with torch.no_grad():
        for p, g, p0 in zip(model.parameters(), grads, originals):
            if g is not None:
                p.sub_(cfg.dynamic_lr * g)
            p.add_(cfg.dynamic_decay * (p0 - p))


@dataclass(frozen=True)
class AdaptiveResult:
    """Tuned on validation, applied unchanged to test: each ingredient's loss (nats/char) on both."""

    config: AdaptiveConfig
    ngram_order: int
    val: dict[str, float]
    test: dict[str, float]


LAMBDAS = tuple(round(float(x), 2) for x in np.arange(0.0, 0.95, 0.05))


def _best_mix(probs: StreamProbs, ngram: np.ndarray | None, use_cache: bool, use_ngram: bool):
    """The mixture weights with the lowest loss on these probabilities (a grid: two weights only)."""
    best = (probs.mix(0.0, None, 0.0), 0.0, 0.0)
    for lc in LAMBDAS if use_cache else (0.0,):
        for ln in LAMBDAS if use_ngram else (0.0,):
            if lc + ln < 0.96:
                best = min(best, (probs.mix(lc, ngram, ln), lc, ln))
    return best


def tune_adaptive(
    model: torch.nn.Module,
    splits: dict[str, np.ndarray],
    vocab_size: int,
    *,
    num_steps: int = 64,
    dynamic_lrs: tuple[float, ...] = (0.0, 0.01, 0.03, 0.1),
    cache_thetas: tuple[float, ...] = (0.1, 0.3, 1.0),
    cache_size: int = 2000,
) -> AdaptiveResult:
    """Choose dynamic-evaluation rate, cache flatness and mixture weights on ``splits["val"]``, then
    score ``splits["test"]`` with the same choices; report each ingredient alone and all together.

    ``splits`` holds ``train`` (for the n-gram), ``val`` and ``test`` id arrays.
    """
    from rnnlab.nn.ngram import KneserNeyLM, select_order

    order = select_order(splits["train"], splits["val"], vocab_size).order
    ngram = KneserNeyLM.fit(splits["train"], vocab_size, order)
    ng = {k: np.exp(ngram.log_prob(splits[k]))[1:] for k in ("val", "test") if len(splits[k]) > 1}

    def probs(split: str, lr: float, theta: float) -> StreamProbs:
        cfg = AdaptiveConfig(num_steps=num_steps, dynamic_lr=lr, cache_size=cache_size, cache_theta=theta)
        return stream_probs(model, splits[split], cfg)

    # Each ingredient is tuned on its own (for its share), and all of them together.
    runs = {(lr, th): probs("val", lr, th) for lr in dynamic_lrs for th in cache_thetas}
    choices = {}
    for name, dyn, cache, ngram_on in (
        ("model", False, False, False),
        ("+dynamic", True, False, False),
        ("+cache", False, True, False),
        ("+ngram", False, False, True),
        ("all", True, True, True),
    ):
        best = None
        for (lr, th), p in runs.items():
            if lr > 0 and not dyn:
                continue
            loss, lc, ln = _best_mix(p, ng["val"], cache, ngram_on)
            if best is None or loss < best[0]:
                best = (loss, AdaptiveConfig(num_steps, lr, 0.02, cache_size, th, lc, ln))
        choices[name] = best
    val = {name: loss for name, (loss, _) in choices.items()}
    test = {}
    if "test" in ng:
        for name, (_, cfg) in choices.items():
            p = stream_probs(model, splits["test"], cfg)
            test[name] = p.mix(cfg.cache_lambda, ng["test"], cfg.ngram_lambda)
    return AdaptiveResult(choices["all"][1], order, val, test)
