"""Generation: prime the state with a prefix once, then sample one id at a time, carrying the state."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch

from rnnlab.config import check_number
from rnnlab.data.vocab import Vocab
from rnnlab.errors import RnnlabError
from rnnlab.generate.lean import LeanStep
from rnnlab.generate.sampling import SamplingConfig, next_ids
from rnnlab.nn.state import State, repeat_rows


@torch.no_grad()
def sample_ids(
    model: torch.nn.Module,
    prefix: torch.Tensor,
    length: int,
    cfg: SamplingConfig = SamplingConfig(),
    *,
    num_samples: int = 1,
    generator: torch.Generator | None = None,
    start_probs: torch.Tensor | None = None,
    banned: Sequence[int] = (),
    fast: bool = True,
) -> Iterator[torch.Tensor]:
    """Yield ``length`` steps of ``(num_samples,)`` new ids.

    The prefix runs through the model once (one forward over all its steps, batch 1) and its state is
    copied to every sample row; from then on each step feeds only the newest id (never re-running the
    prefix, as the notes' predict() does).

    Args:
        model: a LanguageModel (anything whose forward takes ``(ids, state)`` and returns ``.logits``,
            ``.state``).
        prefix: ``(P,)`` ids; empty means the first id is drawn from ``start_probs``.
        length: how many new ids.
        cfg: how to choose each id.
        num_samples: rows sampled in parallel.
        generator: the random source (seed it for repeatable samples).
        start_probs: ``(V,)`` probabilities of the first id when the prefix is empty (e.g. unigrams).
        banned: ids never produced (e.g. ``<unk>``).
        fast: after the prefix, step with :class:`rnnlab.generate.lean.LeanStep` where it applies (a
            LanguageModel on the CPU with a unidirectional torch.nn or rnnlab.nn RNN/GRU/LSTM);
            ``False`` calls ``model.forward`` every step: the reference that the fast path is tested
            against (same seed, same ids).
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        if len(prefix) == 0:
            if start_probs is None:
                raise RnnlabError("an empty prefix needs start probabilities (the vocabulary's counts)")
            first = torch.multinomial(start_probs.float(), num_samples, replacement=True, generator=generator)
            yield first
            length -= 1
            out = model(first.to(device)[:, None], None)
            state, logits = out.state, out.logits[:, -1]
        else:
            out = model(prefix.to(device)[None, :], None)
            state = repeat_rows(out.state, num_samples)
            logits = out.logits[:, -1].expand(num_samples, -1)
        ban = torch.zeros(logits.shape[-1], dtype=logits.dtype, device=device)
        ban[list(banned)] = -torch.inf  # added to the logits: banned ids score -inf, the rest unchanged
        lean = LeanStep.of(model, state, ban, rows=length * num_samples) if fast else None
        step = lean or _forward_step(model, state, ban)
        logits = logits + ban  # each step's logits come with the ban added
        for _ in range(length):
            ids = next_ids(logits.cpu(), cfg, generator)
            yield ids
            logits = step(ids.to(device))
    finally:
        model.train(was_training)


def _forward_step(
    model: torch.nn.Module, state: State, ban: torch.Tensor
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The reference step: ``(N,)`` ids -> ``(N, V)`` logits + ban by the model's forward, state carried."""

    def step(ids: torch.Tensor) -> torch.Tensor:
        nonlocal state
        out = model(ids[:, None], state)
        state = out.state
        return out.logits[:, -1] + ban

    return step


def unigram_probs(vocab: Vocab) -> torch.Tensor | None:
    """The training distribution of characters (specials excluded), from the vocabulary's counts."""
    if vocab.counts is None:
        return None
    counts = torch.tensor(vocab.counts, dtype=torch.float64)
    counts[vocab.special_ids] = 0
    return counts / counts.sum() if counts.sum() > 0 else None


def generate_text(
    model: torch.nn.Module,
    vocab: Vocab,
    prefix: str,
    length: int,
    cfg: SamplingConfig = SamplingConfig(),
    *,
    num_samples: int = 1,
    seed: int | None = None,
    on_unknown: str = "error",
    fast: bool = True,
) -> Iterator[list[str]]:
    """Text-level generation: yields, per step, the new text of each sample: its new character, or
    for a word vocabulary its new word with the space before it (``fast``: see :func:`sample_ids`).

    Raises:
        RnnlabError: prefix characters (words) outside the vocabulary (with ``on_unknown="error"``;
            ``"skip"`` drops them, ``"unk"`` maps them to ``<unk>``).
    """
    check_number("length", length, 0)
    check_number("num_samples", num_samples, 1)
    if cfg.top_k is not None and cfg.top_k > len(vocab):
        raise RnnlabError(f"--top-k {cfg.top_k} is larger than the vocabulary ({len(vocab)} tokens)")
    if on_unknown == "error" and vocab.unknown_chars(prefix):
        chars = (" " if vocab.kind == "word" else "").join(vocab.unknown_chars(prefix))
        raise RnnlabError(
            f"prefix {vocab.unit}s not in the training vocabulary: {chars!r}; "
            "remove them or pass --unknown skip (drop) or --unknown unk"
        )
    ids = torch.from_numpy(vocab.encode(prefix, on_unknown=on_unknown).astype("int64"))
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    stream = sample_ids(
        model,
        ids,
        length,
        cfg,
        num_samples=num_samples,
        generator=generator,
        start_probs=unigram_probs(vocab),
        banned=vocab.special_ids,
        fast=fast,
    )
    texts = vocab.text_stream(prefix, num_samples)
    for step in stream:
        yield texts(step.tolist())
