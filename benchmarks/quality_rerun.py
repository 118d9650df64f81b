"""Re-measure some rows of `rnnlab bench --parts quality` and rewrite its report in place.

A row is named ``BUDGET:CORPUS:VARIANT`` as the table shows it, e.g. ``600:built-in:rnnlab``, or ``big``
for the generated corpus's wall time and memory. Each one
runs again exactly as the bench runs it (one ``rnnlab train`` in a fresh process, the same flags), its
entry in the JSON is replaced and marked with the commit it was measured at, and the page is written
again; every other row is left as it was.

    python benchmarks/quality_rerun.py results/quality "600:built-in:rnnlab" "60:jaychou lyrics:rnnlab" big
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

from rnnlab.bench.measure import BenchConfig
from rnnlab.bench.quality import COLUMNS, VARIANTS, _big_corpus_run, _row, corpora, train_in_child
from rnnlab.bench.report import write_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stem", type=Path, help="the report's path without .json / .md")
    parser.add_argument("rows", nargs="*", metavar="BUDGET:CORPUS:VARIANT", help="none: write the page again")
    args = parser.parse_args()
    result = json.loads(args.stem.with_suffix(".json").read_text(encoding="utf-8"))
    part = result["parts"]["quality"]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    found = {name: (path, extra) for name, path, extra in corpora(BenchConfig())}
    with tempfile.TemporaryDirectory(prefix="rnnlab-rerun-") as tmp:
        if "big" in args.rows:  # the generated corpus's wall time and memory
            big = _big_corpus_run(Path(tmp), BenchConfig())
            part["runs"][-1] = {**big["run"], "remeasured_at": commit}
            part["tables"][-1] = big["table"]
            part["tables"][-1]["title"] += " †"
            print(f"big: {big['run']['wall_s']:.0f} s, {big['run']['peak_rss_mb']:.0f} MB", flush=True)
        for i, spec in enumerate(r for r in args.rows if r != "big"):
            budget, name, variant = spec.split(":", 2)
            index = next(
                k
                for k, r in enumerate(part["runs"])
                if (r["budget"], r["corpus"], r["variant"]) == (int(budget), name, variant)
            )
            path, extra = found[name]
            run = train_in_child(path, int(budget), [*extra, *VARIANTS[variant]], Path(tmp) / str(i))
            part["runs"][index] = {"corpus": name, "variant": variant, "budget": int(budget), **run,
                                   "remeasured_at": commit}  # fmt: skip
            print(f"{spec}: val {run['summary']['best_val_loss']:.4f}, {run['wall_s']:.0f} s", flush=True)
    for table in part["tables"]:
        if not table["title"].startswith("After "):
            continue
        budget = int(table["title"].split()[1])
        table["columns"] = COLUMNS
        table["rows"] = [
            _row(r["corpus"], r["variant"] + (" †" if "remeasured_at" in r else ""), budget, r)
            for r in part["runs"]
            if r.get("budget") == budget and r["corpus"] != "generated"
        ]
    commits: dict[str, int] = {}
    for r in part["runs"]:
        if "remeasured_at" in r:
            commits[r["remeasured_at"]] = commits.get(r["remeasured_at"], 0) + 1
    at = ", ".join(f"{c} ({n} row{'s' if n > 1 else ''})" for c, n in commits.items())
    note = f"rows marked † were run again after the bench, the same way, at the commit in their JSON ({at})"
    part["method"] = part["method"].split("; rows marked †")[0] + "; " + note
    write_report(result, args.stem)


if __name__ == "__main__":
    main()
