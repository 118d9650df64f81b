"""Beam search: the continuation of a prefix with the best length-normalised log-probability.

Each step extends every live hypothesis by every id, and keeps the ``beam_width`` best by summed
log-probability (live hypotheses all have the same length, so the sum ranks them as well as any
normalisation would). A hypothesis is finished when it reaches ``length`` ids, or earlier when its
last id is one of ``stop``; finished hypotheses of different lengths are compared by

    score(Y) = log P(Y | prefix) / lp(Y),    lp(Y) = ((5 + |Y|) / 6) ** alpha

(Wu et al. 2016, "Google's neural machine translation system", eq. 14; ``alpha = 0`` is the plain
sum, larger ``alpha`` favours longer text). Without ``stop`` ids every hypothesis ends at ``length``
ids and the normalisation does not change the winner; the score still reads across lengths.

Log-probabilities are those of the distribution the sampler draws from at temperature 1: banned ids
(the vocabulary's specials) are removed and the rest renormalised. Everything is deterministic: ties
go to the lower (row, id) in a stable sort, so the same model and prefix always give the same text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from rnnlab.config import check_number
from rnnlab.data.vocab import Vocab
from rnnlab.errors import RnnlabError
from rnnlab.generate.stream import unigram_probs
from rnnlab.nn.state import select_rows

ALPHA = 0.6  # Wu et al.'s value for translation; 0 ranks finished hypotheses by their plain sum


@dataclass(frozen=True)
class Beam:
    """One finished hypothesis.

    Attributes:
        ids: the continuation's ids (the prefix excluded).
        log_prob: ``log P(ids | prefix)`` in nats, specials excluded from every step's distribution.
        score: ``log_prob / length_penalty(len(ids), alpha)``, what the search maximises.
    """

    ids: list[int]
    log_prob: float
    score: float


def length_penalty(length: int, alpha: float = ALPHA) -> float:
    """Wu et al. 2016's ``lp(Y) = ((5 + |Y|) / 6) ** alpha``: 1 for one id, growing with the length."""
    return ((5 + length) / 6) ** alpha


@torch.no_grad()
def beam_search(
    model: torch.nn.Module,
    prefix: torch.Tensor,
    length: int,
    beam_width: int,
    *,
    banned: Sequence[int] = (),
    start_probs: torch.Tensor | None = None,
    stop: Sequence[int] = (),
    alpha: float = ALPHA,
) -> Beam:
    """The best continuation of ``prefix`` of at most ``length`` ids (see the module docstring).

    Args:
        model: a LanguageModel (forward ``(ids (B, T), state) -> .logits (B, T, V), .state``); its
            state is touched only through :mod:`rnnlab.nn.state`, so any cell (and a residual model's
            n-gram history) works.
        prefix: ``(P,)`` ids; empty means the first id's log-probabilities are ``log start_probs``.
        length: the most new ids (exactly this many unless a ``stop`` id ends a hypothesis first).
        beam_width: hypotheses kept per step; 1 is greedy decoding.
        banned: ids never produced (e.g. the vocabulary's specials).
        start_probs: ``(V,)`` probabilities of the first id when the prefix is empty.
        stop: ids that finish a hypothesis (included in it).
        alpha: the length penalty's exponent.

    Raises:
        RnnlabError: an empty prefix without ``start_probs``, or every id banned.
    """
    check_number("length", length, 0)
    check_number("beam", beam_width, 1)
    if length == 0:
        return Beam([], 0.0, 0.0)
    was_training = model.training
    model.eval()
    try:
        return _search(model, prefix, length, beam_width, banned, start_probs, stop, alpha)
    finally:
        model.train(was_training)


def _search(model, prefix, length, beam_width, banned, start_probs, stop, alpha) -> Beam:
    device = next(model.parameters()).device
    state, log_probs = _start(model, prefix.to(device), start_probs)
    V = log_probs.shape[-1]
    ban = torch.zeros(V, dtype=torch.float64, device=device)
    ban[list(banned)] = -torch.inf
    stops = torch.zeros(V, dtype=torch.bool, device=device)
    stops[list(stop)] = True
    tokens = torch.zeros((1, 0), dtype=torch.long, device=device)  # (B, t): the live hypotheses
    total = torch.zeros(1, dtype=torch.float64, device=device)  # (B,): their summed log-probabilities
    finished: list[Beam] = []
    for t in range(length):
        scores = (total[:, None] + torch.log_softmax(log_probs.double() + ban, dim=-1)).flatten()  # (B*V,)
        order = scores.argsort(descending=True, stable=True)
        order = order[scores[order] > -torch.inf]
        if len(order) == 0:
            raise RnnlabError("every id is banned: nothing to generate")
        last = t == length - 1
        ending = torch.ones_like(order, dtype=torch.bool) if last else stops[order % V]
        for pick in order[:beam_width][ending[:beam_width]].tolist():
            seq = [*tokens[pick // V].tolist(), pick % V]
            log_prob = float(scores[pick])
            finished.append(Beam(seq, log_prob, log_prob / length_penalty(len(seq), alpha)))
        live = order[~ending][:beam_width]
        if len(live) == 0:
            break
        rows, ids = live // V, live % V
        tokens = torch.cat([tokens[rows], ids[:, None]], dim=1)
        total = scores[live]
        out = model(ids[:, None], select_rows(state, rows))
        state, log_probs = out.state, out.logits[:, -1]
    return max(finished, key=lambda beam: beam.score)  # the first of equals: deterministic


def _start(model, prefix: torch.Tensor, start_probs: torch.Tensor | None):
    """The state after the prefix (None: nothing fed yet) and the first id's ``(1, V)`` scores."""
    if len(prefix) > 0:
        out = model(prefix[None, :], None)
        return out.state, out.logits[:, -1]
    if start_probs is None:
        raise RnnlabError("an empty prefix needs start probabilities (the vocabulary's counts)")
    return None, start_probs.double().log()[None, :].to(prefix.device)  # log_softmax keeps log p


def beam_steps(
    model: torch.nn.Module,
    vocab: Vocab,
    prefix: str,
    length: int,
    beam_width: int,
    *,
    on_unknown: str = "error",
    alpha: float = ALPHA,
) -> list[str]:
    """Text-level beam search: the best continuation's new text per step, as
    :func:`rnnlab.generate.generate_text` yields it for one sample (a character, or a word with the
    space before it); the vocabulary's specials are never produced.

    Raises:
        RnnlabError: prefix characters (words) outside the vocabulary with ``on_unknown="error"``
            (``"skip"`` drops them, ``"unk"`` maps them to ``<unk>``); a bad length or beam width.
    """
    ids = torch.from_numpy(vocab.encode(prefix, on_unknown=on_unknown).astype("int64"))
    best = beam_search(
        model,
        ids,
        length,
        beam_width,
        banned=vocab.special_ids,
        start_probs=unigram_probs(vocab),
        alpha=alpha,
    )
    texts = vocab.text_stream(prefix, 1)
    return [texts([i])[0] for i in best.ids]


def beam_text(
    model: torch.nn.Module,
    vocab: Vocab,
    prefix: str,
    length: int,
    beam_width: int,
    *,
    on_unknown: str = "error",
    alpha: float = ALPHA,
) -> str:
    """The new text after ``prefix`` (:func:`beam_steps` joined): what ``rnnlab generate --beam N``
    prints after the prefix."""
    return "".join(beam_steps(model, vocab, prefix, length, beam_width, on_unknown=on_unknown, alpha=alpha))
