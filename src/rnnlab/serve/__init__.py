"""The playground (``rnnlab serve``): a local page and JSON API to sample from runs side by side."""

from rnnlab.serve.app import LIMITS, bind, create_app, serve
from rnnlab.serve.events import Probe, complete, stream_events
from rnnlab.serve.request import MAX_BEAM, MAX_BODY, MAX_LENGTH, BadRequest, GenerateRequest, parse_request
from rnnlab.serve.runs import ServedRun, load_runs, pick_run

__all__ = [
    "LIMITS",
    "MAX_BEAM",
    "MAX_BODY",
    "MAX_LENGTH",
    "BadRequest",
    "GenerateRequest",
    "Probe",
    "ServedRun",
    "bind",
    "complete",
    "create_app",
    "load_runs",
    "parse_request",
    "pick_run",
    "serve",
    "stream_events",
]
