"""`rnnlab baseline`: the Kneser-Ney character n-gram on the same split and vocabulary a run would use."""

from __future__ import annotations

import argparse

from rnnlab.cli.common import float_list, given, print_result
from rnnlab.config import TOKENS, DataConfig
from rnnlab.workflow import baseline

DATA_FLAGS = ("split", "min_freq", "tokens", "encoding", "errors", "builtin")


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "baseline",
        help="score an interpolated Kneser-Ney character n-gram model (the bar a network must clear)",
        description="Fit modified Kneser-Ney n-gram models of orders 1..N on the train split, choose the "
        "order on validation, and report val/test perplexity on exactly the split and vocabulary that "
        "rnnlab train uses with the same flags.",
    )
    p.add_argument(
        "corpus", nargs="*", metavar="CORPUS", help="UTF-8 text files (default: the built-in corpus)"
    )
    p.add_argument(
        "--split",
        type=float_list,
        metavar="TRAIN,VAL,TEST",
        default=argparse.SUPPRESS,
        help="fractions, as for rnnlab train (default: 0.9,0.05,0.05)",
    )
    p.add_argument(
        "--min-freq",
        type=int,
        default=argparse.SUPPRESS,
        dest="min_freq",
        help="rarer characters become <unk> (default: 1)",
    )
    p.add_argument(
        "--tokens", choices=TOKENS, default=argparse.SUPPRESS, help="char or word, as for rnnlab train"
    )
    p.add_argument("--encoding", default=argparse.SUPPRESS, help="corpus encoding (default: utf-8)")
    p.add_argument("--errors", default=argparse.SUPPRESS, help="strict, replace or ignore (default: strict)")
    p.add_argument("--builtin", default=argparse.SUPPRESS, help="built-in corpus (default: python-docs)")
    p.add_argument("--max-order", type=int, default=7, help="largest n tried (default: 7)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    data = DataConfig(corpus=tuple(args.corpus), **given(args, DATA_FLAGS))
    result, selection, corpus = baseline(data, args.max_order)
    if not args.json:
        print(f"{corpus.summary()}\n{selection.render_text()}")
    test = f", test ppl {result['test_ppl']:.2f}" if result["test_ppl"] is not None else ""
    print_result(
        result, args.json, f"n-gram baseline: order {result['order']}, val ppl {result['val_ppl']:.2f}{test}"
    )
    return 0
