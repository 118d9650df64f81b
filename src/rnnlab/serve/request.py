"""The playground's requests: a JSON body checked field by field, with a one-line reason when it is wrong."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields

from rnnlab.errors import RnnlabError
from rnnlab.generate import SamplingConfig

# The limits (documented in the README and on /api/runs). 2,000 new characters take about a second
# from a 1x256 LSTM on one CPU core; a beam multiplies that by its width, so it is capped too.
MAX_LENGTH = 2000
MAX_BODY = 16 * 1024  # bytes of JSON: room for a long prompt, none for a corpus
MAX_BEAM = 16
MAX_UNITS = 16  # hidden units whose activations the stream reports per position
DEFAULT_UNITS = 8
SEED_RANGE = (-(2**63), 2**64 - 1)  # what torch.Generator.manual_seed accepts (and so the CLI's --seed)


class BadRequest(RnnlabError):
    """A request the playground refuses: the reason in one line, and the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class GenerateRequest:
    """The body of ``POST /api/generate`` and ``POST /api/stream``; defaults are ``rnnlab generate``'s.

    Attributes:
        prefix: the prompt.
        length: new characters (words), at most :data:`MAX_LENGTH`.
        temperature, top_k, top_p: how each character is sampled (``rnnlab generate``'s flags).
        seed: the random seed; None: the server picks one and says which.
        run: which served run, by index or name.
        beam: beam width (deterministic: ``temperature``, ``top_k``, ``top_p`` and ``seed`` unused).
        units: hidden units of the top layer whose activations each streamed position reports.
    """

    prefix: str = ""
    length: int = 200
    temperature: float = 0.8
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None
    run: int | str = 0
    beam: int | None = None
    units: tuple[int, ...] | None = None

    @property
    def sampling(self) -> SamplingConfig:
        return SamplingConfig(self.temperature, self.top_k, self.top_p)


KEYS = tuple(f.name for f in fields(GenerateRequest))


def parse_request(body: bytes) -> GenerateRequest:
    """The request in ``body``, or :class:`BadRequest` naming the first thing wrong with it."""
    if len(body) > MAX_BODY:
        raise BadRequest(f"request body is {len(body)} bytes; the limit is {MAX_BODY}", 413)
    try:
        doc = json.loads(body.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise BadRequest(f"request body is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise BadRequest(f"request body must be a JSON object, got {type(doc).__name__}")
    unknown = sorted(set(doc) - set(KEYS))
    if unknown:
        raise BadRequest(f"unknown keys {', '.join(map(repr, unknown))}; allowed: {', '.join(KEYS)}")
    values = {key: _check(key, value) for key, value in doc.items()}
    if isinstance(values.get("units"), list):
        values["units"] = tuple(values["units"])
    return GenerateRequest(**values)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _int_in(low: int, high: int):
    return lambda v: _is_int(v) and low <= v <= high, f"an integer from {low} to {high}"


# key -> (test, what it must be, whether null means "off"); the per-run checks (vocabulary, top_k
# against its size, units against the hidden size) are in rnnlab.serve.runs.
_RULES = {
    "prefix": (lambda v: isinstance(v, str), "a string", False),
    "length": (*_int_in(0, MAX_LENGTH), False),
    "temperature": (lambda v: _is_number(v) and v >= 0, "a number >= 0 (0 is greedy)", False),
    "top_k": (lambda v: _is_int(v) and v >= 1, "an integer >= 1, or null", True),
    "top_p": (lambda v: _is_number(v) and 0 < v <= 1, "a number in (0, 1], or null", True),
    "seed": (*_int_in(*SEED_RANGE), True),
    "run": (lambda v: _is_int(v) or isinstance(v, str), "a run's index or name", False),
    "beam": (*_int_in(1, MAX_BEAM), True),
    "units": (
        lambda v: isinstance(v, list) and len(v) <= MAX_UNITS and all(_is_int(u) and u >= 0 for u in v),
        f"a list of at most {MAX_UNITS} unit indices >= 0, or null",
        True,
    ),
}


def _check(key: str, value):
    test, what, nullable = _RULES[key]
    if value is None and nullable:
        return None
    if value is None or not test(value):
        shown = json.dumps(value, ensure_ascii=False)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise BadRequest(f'"{key}" must be {what}; got {shown}')
    return value
