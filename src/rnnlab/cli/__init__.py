"""The `rnnlab` command line: one module per subcommand, each mapping flags onto the library."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rnnlab import __version__
from rnnlab.errors import RnnlabError

SUBCOMMANDS = (
    "train",
    "generate",
    "evaluate",
    "baseline",
    "diagnose",
    "experiment",
    "bench",
    "export",
    "report",
    "inspect",
    "serve",
)


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (its default prints the whole usage block first)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rnnlab",
        description="Train, diagnose and sample recurrent language models on any UTF-8 text.",
    )
    parser.add_argument("--version", action="version", version=f"rnnlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)
    for name in SUBCOMMANDS:
        module = __import__(f"rnnlab.cli.{name}", fromlist=["add_parser"])
        module.add_parser(sub).add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; user errors print one line and return 2 (tracebacks only with --debug)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as e:  # --help, --version, or a bad flag (already reported in one line)
            return int(e.code or 0)
        args.argv = argv
        return int(args.func(args) or 0)
    except RnnlabError as e:
        if debug:
            raise
        print(f"rnnlab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rnnlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `rnnlab generate ... | head` closes the pipe early: that is not an error.
        sys.stderr.close()
        return 0
