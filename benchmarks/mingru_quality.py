"""Quality per second of minGRU / minLSTM against the LSTM on tiny Shakespeare (nanoGPT's 90/10 split).

Each row is one ``rnnlab train`` in a fresh process, default flags except ``--max-time``, the split and
the cell (and ``--min-block`` where a row says so), exactly as ``rnnlab bench --parts quality`` runs its
rows: the val loss is the best on the split's 10%, the wall time and peak RSS are the whole command's.
The first budget runs every variant; the longer ones only the variants named in ``--long``.

    python benchmarks/mingru_quality.py --out results/mingru            # 60 s all, 600 s the defaults
    python benchmarks/mingru_quality.py --budgets 10 --long lstm --out /tmp/quick
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from rnnlab.bench.measure import machine
from rnnlab.bench.quality import COLUMNS, SHAKESPEARE, _row, train_in_child
from rnnlab.bench.report import write_report

VARIANTS = {
    "lstm": ["--cell", "lstm"],
    "mingru": ["--cell", "mingru"],
    "minlstm": ["--cell", "minlstm"],
    "mingru, no MLP": ["--cell", "mingru", "--min-block", "conv,norm"],
    "mingru, no conv": ["--cell", "mingru", "--min-block", "mlp,norm"],
    "mingru, cell alone": ["--cell", "mingru", "--min-block", "none"],
    "mingru, network alone": ["--cell", "mingru", "--ngram", "off"],
}
SPLIT = ["--split", "0.9,0.1,0"]


def without_goals(table: dict) -> dict:
    """The quality bench's table without its goal columns (issue 12's ratios, not this page's target)."""
    keep = [i for i, c in enumerate(table["columns"]) if c not in ("goal", "met", "wall goal")]
    return {
        **table,
        "columns": [table["columns"][i] for i in keep],
        "rows": [[r[i] for i in keep] for r in table["rows"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="60,600", help="seconds of training (default 60,600)")
    parser.add_argument(
        "--first", default=";".join(VARIANTS), help="variants run at the first budget, ;-separated"
    )
    parser.add_argument(
        "--long", default="mingru;minlstm", help="variants run at the longer budgets, ;-separated"
    )
    parser.add_argument("--out", required=True, help="write OUT.json and OUT.md")
    args = parser.parse_args()
    budgets, flags = [int(b) for b in args.budgets.split(",")], vars(args)
    started, rows, runs = time.perf_counter(), [], []
    with tempfile.TemporaryDirectory(prefix="rnnlab-mingru-") as tmp:
        for budget in budgets:
            names = (args.first if budget == budgets[0] else args.long).split(";")
            for name in names:
                out = Path(tmp) / str(len(runs))
                result = train_in_child(SHAKESPEARE, budget, [*SPLIT, *VARIANTS[name]], out)
                runs.append({"variant": name, "budget": budget, **result})
                rows.append(_row(f"tiny Shakespeare, {budget} s", name, budget, result))
                print(f"{budget:>4} s  {name:24} val {rows[-1][2]:.4f}  steps {rows[-1][9]}", flush=True)
    part = {
        "anchor": "each run's n-gram baseline (Kneser-Ney, order chosen on val, same split)",
        "target": "issue 13: --cell mingru val <= 1.50 within 600 s on this 2-core CPU",
        "method": "one `rnnlab train` per row in a fresh process, one at a time; commands in the JSON",
        "tables": [without_goals({"title": "tiny Shakespeare (90/10)", "columns": COLUMNS, "rows": rows})],
        "runs": runs,
        "seconds": time.perf_counter() - started,
    }
    result = {
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "command": "python benchmarks/mingru_quality.py " + " ".join(f"--{k} {v}" for k, v in flags.items()),
        "machine": machine(),
        "quick": False,
        "parts": {"minGRU / minLSTM vs LSTM": part},
    }
    for path in write_report(result, args.out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
