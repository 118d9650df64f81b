"""How one id is chosen from a step's logits: greedy, or a temperature / top-k / top-p draw."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rnnlab.config import check_number


@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 0.8  # below 1 sharpens: fewer misspellings than raw samples; 0 means greedy
    top_k: int | None = None
    top_p: float | None = None
    greedy: bool = False  # the notes' predict(): always the most likely id

    def __post_init__(self):
        check_number("temperature", self.temperature, 0)
        check_number("top_k", self.top_k, 1, allow_none=True)
        check_number("top_p", self.top_p, 0, 1, low_open=True, allow_none=True)


def next_ids(logits: torch.Tensor, cfg: SamplingConfig, generator: torch.Generator | None) -> torch.Tensor:
    """Choose one id per row of ``(N, V)`` logits: greedy, or a temperature / top-k / top-p draw."""
    if cfg.greedy or cfg.temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits.float() / cfg.temperature
    if cfg.top_k is not None and cfg.top_k < logits.shape[-1]:
        kth = torch.topk(logits, cfg.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, -torch.inf)
    probs = torch.softmax(logits, dim=-1)
    if cfg.top_p is not None and cfg.top_p < 1:
        # Nucleus sampling (Holtzman et al. 2020): keep the smallest set whose mass reaches top_p.
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        before = sorted_probs.cumsum(dim=-1) - sorted_probs  # mass of the ids ranked above each one
        sorted_probs = sorted_probs.masked_fill(before >= cfg.top_p, 0.0)
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_probs)
    return draw(probs, generator)


def draw(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One id per row of ``(N, V)`` probabilities, by inverting the row's cumulative distribution.

    One uniform number per row: ``torch.multinomial`` draws V exponentials per row instead, which
    costs more than the model's step at batch 64. Ids of probability 0 are never drawn (their
    interval of the CDF is empty); the CDF is summed in float64, so rounding swallows no small one.
    """
    cdf = probs.double().cumsum(dim=-1)  # (N, V)
    u = torch.rand((len(cdf), 1), dtype=cdf.dtype, device=cdf.device, generator=generator)  # [0, 1)
    below_total = u * (cdf[:, -1:] * (1 - 2**-52))  # strictly below the top: every row finds an id
    return torch.searchsorted(cdf, below_total, right=True).squeeze(-1)
