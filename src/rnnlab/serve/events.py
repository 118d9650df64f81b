"""Generation for the playground: the whole text at once, or streamed with what the model weighed.

The text itself always comes from :func:`rnnlab.generate.generate_text` (or the beam search), so a
request gets exactly what ``rnnlab generate`` prints for the same settings and seed. Alongside the
stream, a :class:`Probe` reads the model along the same text to report, at each position, the likeliest
tokens and a few hidden units: one extra forward step per token, on its own state.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from rnnlab.generate import generate_text, unigram_probs
from rnnlab.generate.beam import beam_steps
from rnnlab.serve.request import GenerateRequest
from rnnlab.serve.runs import ServedRun, prefix_ids, units_of

ALTERNATIVES = 5  # tokens shown per position


def pieces(run: ServedRun, req: GenerateRequest, seed: int | None) -> Iterator[str]:
    """The new text step by step: each step's new character (or word with the space before it).
    ``seed`` seeds the sampler (a beam draws nothing and takes None)."""
    if req.beam is not None:
        return iter(beam_steps(run.model, run.vocab, req.prefix, req.length, req.beam))
    steps = generate_text(run.model, run.vocab, req.prefix, req.length, req.sampling, seed=seed)
    return (step[0] for step in steps)


def complete(run: ServedRun, req: GenerateRequest, seed: int | None) -> str:
    """The prefix and its continuation: ``rnnlab generate``'s line for the same settings, sans newline."""
    return req.prefix + "".join(pieces(run, req, seed))


def stream_events(run: ServedRun, req: GenerateRequest, seed: int | None) -> Iterator[dict]:
    """The events of ``POST /api/stream``, one JSON object each.

    ``start`` (run, seed, units), then per new token a ``token`` event (its ``text``; ``top``, the
    likeliest tokens with their probabilities at that position; ``act``, the chosen units'
    activations in the state the position was predicted from), then ``done`` with the whole text.
    """
    units = units_of(run, req)
    yield {"type": "start", "run": run.name, "seed": seed, "units": units, "prefix": req.prefix}
    probe = Probe(run, prefix_ids(run, req.prefix), units)
    text = [req.prefix]
    for piece in pieces(run, req, seed):
        yield {"type": "token", "text": piece, **probe.look()}
        probe.push(piece)
        text.append(piece)
    yield {"type": "done", "text": "".join(text)}


class Probe:
    """The model read along a text as it streams: the next token's distribution and some units.

    The probabilities are the model's at temperature 1 with the vocabulary's specials removed (what the
    sampler draws from before temperature, top-k and top-p). After an empty prefix, the first
    position's are the training characters' frequencies, as generation draws it, and there is no
    state to read units from yet (``act`` is null).
    """

    def __init__(self, run: ServedRun, prefix: torch.Tensor, units: Sequence[int]):
        self.model, self.vocab, self.units = run.model, run.vocab, list(units)
        self.ban = torch.zeros(len(self.vocab), dtype=torch.float64)
        self.ban[self.vocab.special_ids] = -torch.inf
        self.state, self.pending = None, ""
        if len(prefix) > 0:
            self._feed(prefix)
        else:
            start = unigram_probs(self.vocab)
            self.probs = start if start is not None else torch.softmax(self.ban, -1)
            self.act = None

    def look(self) -> dict:
        """``{"top": [{"token", "p"}, ...], "act": [...] | None}`` at the current position."""
        if self.pending:
            ids = self.vocab.encode(self.pending, on_unknown="unk")  # one id: a generated token
            self._feed(torch.from_numpy(ids.astype("int64")))
            self.pending = ""
        top = torch.topk(self.probs, min(ALTERNATIVES, len(self.probs)))
        itos = self.vocab.itos
        alternatives = [
            {"token": itos[i], "p": round(p, 5)}
            for p, i in zip(top.values.tolist(), top.indices.tolist())
            if p > 0
        ]
        return {"top": alternatives, "act": self.act}

    def push(self, piece: str) -> None:
        """Move past ``piece`` (fed on the next :meth:`look`: the last token needs no step)."""
        self.pending += piece

    @torch.no_grad()
    def _feed(self, ids: torch.Tensor) -> None:
        out = self.model(ids[None, :], self.state)
        self.state = out.state
        self.probs = torch.softmax(out.logits[0, -1].double() + self.ban, -1)
        self.act = [round(a, 4) for a in out.outputs[0, -1, self.units].tolist()]
