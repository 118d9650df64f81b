"""`rnnlab serve`: a local playground page to sample from one or more runs side by side."""

from __future__ import annotations

import argparse
import ipaddress
import sys

from rnnlab.errors import RnnlabError

LOOPBACK_NAMES = ("localhost",)


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "serve",
        help="a local playground: sample from runs in the browser",
        description="Serve a page (and its JSON API) that streams text from each RUN_DIR side by side, "
        "showing each character's top-5 alternatives on hover. Ctrl-C stops it.",
    )
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories made by rnnlab train")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only; the page has no login)",
    )
    p.add_argument(
        "--port", type=_port, default=8000, help="port to listen on; 0 picks a free one (default: 8000)"
    )
    p.set_defaults(func=run)
    return p


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535, got {text}")
    return value


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() in LOOPBACK_NAMES


def run(args: argparse.Namespace) -> int:
    try:  # the web libraries are an extra: the rest of rnnlab runs without them
        from rnnlab.serve import bind, create_app, load_runs, serve
    except ModuleNotFoundError as err:
        raise RnnlabError(
            f"rnnlab serve needs {err.name}, which is not installed: pip install 'rnnlab[serve]'"
        ) from None
    runs = load_runs(args.run_dirs)
    sock = bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    names = ", ".join(r.name for r in runs)
    print(f"rnnlab serve: {names} at http://{shown}:{port}/ (Ctrl-C stops)", file=sys.stderr, flush=True)
    if not _loopback(args.host):
        print(
            f"rnnlab serve: warning: listening on {args.host}: anyone who can reach it can use it",
            file=sys.stderr,
        )
    try:
        serve(create_app(runs), sock)
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the Ctrl-C it shut down on, except when it came in between
    finally:
        sock.close()
    print("rnnlab serve: stopped", file=sys.stderr)
    return 0
