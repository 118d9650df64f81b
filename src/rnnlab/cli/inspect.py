"""`rnnlab inspect`: which units of a run's model track quotes, brackets, line position, ..., on a page."""

from __future__ import annotations

import argparse

from rnnlab.cli.common import positive_int, print_result
from rnnlab.inspect import FEATURES, inspection_json, write_inspection
from rnnlab.inspect.run import DEFAULT_CHARS, VAL_SOURCE


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "inspect",
        help="find the units that track features of the text, and see them on a page",
        description="Run the run's best model over a text (default: its validation split), record every "
        "unit of every layer (and the gates of an LSTM or GRU) at each character, rank the units by "
        f"their correlation with text features ({', '.join(FEATURES)}, and yours), and write a "
        "self-contained HTML page: the text coloured by a chosen unit, the model's likeliest next "
        "characters at each position, and the feature table. An existing page is regenerated.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory made by rnnlab train")
    p.add_argument(
        "--text", metavar="FILE", help="a UTF-8 file to read (default: the run's validation split)"
    )
    p.add_argument(
        "--chars",
        type=positive_int,
        metavar="N",
        default=DEFAULT_CHARS,
        help=f"read at most this many characters (default: {DEFAULT_CHARS:,})",
    )
    p.add_argument(
        "--feature",
        action="append",
        default=[],
        metavar="NAME=REGEX",
        help="another feature: 1 on the characters of a match of REGEX, else 0 (repeatable)",
    )
    p.add_argument("--out", metavar="FILE", help="where to write the page (default: RUN_DIR/inspect.html)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    inspection, page = write_inspection(args.run_dir, args.out, args.text, args.chars, args.feature)
    result = inspection_json(inspection, page)
    if not args.json:
        for s in inspection.scores:
            if s.constant is not None:
                print(f"{s.feature:>14}: constant on this text ({s.constant:g})")
                continue
            units = "  ".join(f"{u.signal}{u.layer}:{u.unit} {u.corr:+.2f}" for u in s.units)
            print(f"{s.feature:>14}: {units}  (chance {s.control:.2f})")
    source = f"the {VAL_SOURCE}" if args.text is None else args.text
    human = f"{result['chars']:,} characters of {source}; page: {page}"
    print_result(result, args.json, human)
    return 0
