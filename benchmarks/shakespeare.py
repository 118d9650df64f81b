"""Tiny Shakespeare against nanoGPT's CPU figures: the ``shakespeare`` preset after 85 s and 10 minutes.

    python benchmarks/shakespeare.py [--budgets 85,600] [--threads N] [--out results/shakespeare]

Each budget is one ``rnnlab train CORPUS --preset shakespeare --split 0.9,0.1,0 --max-time BUDGET`` run
(90/10 split as nanoGPT's ``shakespeare_char``; val loss in nats per character). Targets (issue "Speed",
P6): below 1.886 after 85 s (nanoGPT's README CPU recipe here), at most 1.55 after 10 minutes.
``--threads N`` sets OMP_NUM_THREADS for the runs (default: torch's choice).
"""

from __future__ import annotations

import argparse
import json
import operator
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_CORPUS = HERE.parent.parent / "shared" / "data" / "tinyshakespeare.txt"
TARGETS = {85: ("<", 1.886), 600: ("<=", 1.55)}
OPS = {"<": operator.lt, "<=": operator.le}
FLAGS = ["--preset", "shakespeare", "--split", "0.9,0.1,0", "--quiet", "--json", "--sample-length", "0"]


def train(corpus: str, out: Path, budget: float, env: dict) -> dict:
    """One run; returns its JSON summary."""
    args = ["train", corpus, "--out", str(out), "--max-time", str(budget), *FLAGS]
    print("$", shlex.join(["rnnlab", *args]), flush=True)
    done = subprocess.run([sys.executable, "-m", "rnnlab", *args], capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(done.stderr.strip().splitlines()[-1])
    return json.loads(done.stdout.strip().splitlines()[-1])


def render(result: dict) -> str:
    lines = [
        "# Tiny Shakespeare: the `shakespeare` preset against nanoGPT's CPU figures",
        "",
        f"```\n{result['command']}\n```",
        "",
        "| budget | val loss (nats/char) | target | met | steps | train chars/s |",
        "|---|---|---|---|---|---|",
    ]
    for run in result["runs"]:
        op, goal = TARGETS.get(int(run["budget_s"]), ("", None))
        met = "" if goal is None else ("yes" if OPS[op](run["best_val_loss"], goal) else "**no**")
        lines.append(
            f"| {run['budget_s']:.0f} s | {run['best_val_loss']:.4f} | {op} {goal} | {met} | "
            f"{run['steps']} | {run['train_chars_per_s']:,.0f} |"
        )
    lines += ["", f"OMP_NUM_THREADS={result['threads']}; runs one after the other.", ""]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", default=str(DEFAULT_CORPUS))
    p.add_argument("--budgets", default="85,600", help="seconds of training, comma-separated")
    p.add_argument("--threads", default=None)
    p.add_argument("--out", default=str(HERE.parent / "results" / "shakespeare"))
    p.add_argument("--runs", default="/tmp/rnnlab-shakespeare")
    a = p.parse_args()
    env = dict(os.environ)
    if a.threads:
        env["OMP_NUM_THREADS"] = a.threads
    stamp = time.strftime("%Y%m%d-%H%M%S")
    result = {"command": shlex.join(["python", *sys.argv]), "threads": a.threads or "default", "runs": []}
    for budget in (float(b) for b in a.budgets.split(",")):
        summary = train(a.corpus, Path(a.runs) / f"{budget:.0f}s-{stamp}", budget, env)
        result["runs"].append({"budget_s": budget, **summary})
    Path(a.out + ".json").write_text(json.dumps(result, indent=1) + "\n")
    Path(a.out + ".md").write_text(render(result))
    print(render(result))


if __name__ == "__main__":
    main()
