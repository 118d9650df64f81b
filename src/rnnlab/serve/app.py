"""The playground's web app (Starlette, served by uvicorn): the page, and the JSON API it uses.

::

    GET  /               the page
    GET  /api/runs       {"runs": [...], "defaults": {...}, "limits": {...}}
    POST /api/generate   request JSON -> {"text", "run", "seed"}: rnnlab generate's line
    POST /api/stream     request JSON -> newline-delimited JSON events (start, token..., done)

A wrong request is answered ``{"error": "<one line>"}`` with a 4xx status, before any generation.
Generation runs in Starlette's thread pool, off the event loop, so one long request does not stall
the others.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import socket
from collections.abc import Iterator, Sequence
from dataclasses import asdict

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from rnnlab.errors import RnnlabError
from rnnlab.serve.events import complete, stream_events
from rnnlab.serve.page import CONTENT_SECURITY_POLICY, PAGE
from rnnlab.serve.request import (
    MAX_BEAM,
    MAX_BODY,
    MAX_LENGTH,
    MAX_UNITS,
    BadRequest,
    GenerateRequest,
    parse_request,
)
from rnnlab.serve.runs import ServedRun, pick_run

LIMITS = {"max_length": MAX_LENGTH, "max_body_bytes": MAX_BODY, "max_beam": MAX_BEAM, "max_units": MAX_UNITS}


def create_app(runs: Sequence[ServedRun]) -> Starlette:
    """The app serving ``runs`` (one column each on the page; ``"run"`` picks one in a request)."""
    routes = [
        Route("/", page),
        Route("/api/runs", list_runs),
        Route("/api/generate", generate, methods=["POST"]),
        Route("/api/stream", stream, methods=["POST"]),
    ]
    handlers = {HTTPException: error_response, RnnlabError: error_response}
    app = Starlette(routes=routes, exception_handlers=handlers)
    app.state.runs = list(runs)
    return app


async def page(request: Request) -> Response:
    headers = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-store"}
    return HTMLResponse(PAGE, headers=headers)


async def list_runs(request: Request) -> Response:
    runs = request.app.state.runs
    defaults = {k: v for k, v in asdict(GenerateRequest()).items() if k not in ("run", "units")}
    return JSONResponse(
        {"runs": [run.describe(i) for i, run in enumerate(runs)], "defaults": defaults, "limits": LIMITS}
    )


async def generate(request: Request) -> Response:
    run, req, seed = await _job(request)
    text = await run_in_threadpool(complete, run, req, seed)
    return JSONResponse({"text": text, "run": run.name, "seed": seed})


async def stream(request: Request) -> Response:
    run, req, seed = await _job(request)
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    # A sync iterator: Starlette pulls each event in its thread pool.
    return StreamingResponse(
        _lines(stream_events(run, req, seed)), media_type="application/x-ndjson", headers=headers
    )


async def error_response(request: Request, exc: Exception) -> Response:
    """``{"error": "<one line>"}`` with the exception's status (400 for a plain RnnlabError)."""
    if isinstance(exc, HTTPException):
        status, message = exc.status_code, str(exc.detail)
    else:
        status, message = getattr(exc, "status", 400), str(exc)
    return JSONResponse({"error": " ".join(message.split())}, status_code=status)


async def _job(request: Request) -> tuple[ServedRun, GenerateRequest, int | None]:
    """The run, the checked request and the seed: the request's, or a fresh one that the answer
    reports (None for a beam, which draws nothing)."""
    req = parse_request(await _body(request))
    run = pick_run(request.app.state.runs, req)
    if req.beam is not None:
        return run, req, None
    return run, req, req.seed if req.seed is not None else secrets.randbelow(2**32)


async def _body(request: Request) -> bytes:
    """The request's body, refused (413) as soon as it passes :data:`MAX_BODY` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise BadRequest(f"request body is {declared} bytes; the limit is {MAX_BODY}", 413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise BadRequest(f"request body is over {MAX_BODY} bytes, the limit", 413)
    return bytes(body)


def _lines(events: Iterator[dict]) -> Iterator[str]:
    """Events as JSON lines; a problem met mid-stream becomes a last ``error`` event."""
    try:
        for event in events:
            yield json.dumps(event, ensure_ascii=False) + "\n"
    except RnnlabError as e:
        yield json.dumps({"type": "error", "error": " ".join(str(e).split())}) + "\n"


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free one), bound before the server starts so
    that a port in use is a clear error, not a log line.

    Raises:
        RnnlabError: the host does not resolve, or the port is taken or not allowed.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, OverflowError) as e:
        raise RnnlabError(f"cannot listen on {host}:{port}: {getattr(e, 'strerror', None) or e}") from e
    sock = socket.socket(family, kind, proto)
    if os.name == "posix":  # restart at once after a stop (elsewhere it would let two servers share a port)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as e:
        sock.close()
        why = "is in use" if e.errno == errno.EADDRINUSE else f"cannot be used ({e.strerror or e})"
        raise RnnlabError(f"port {port} on {host} {why}; pick another with --port (0: any free port)") from e
    return sock


def serve(app: Starlette, sock: socket.socket, *, log_level: str = "warning") -> None:
    """Serve ``app`` on ``sock`` until Ctrl-C (then finish open responses for up to 5 s and return,
    re-raising the KeyboardInterrupt as uvicorn does)."""
    config = uvicorn.Config(app, log_level=log_level, lifespan="off", timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])
