"""What many test files share: one small corpus, the argv of a tiny `rnnlab train` run, run readers."""

import json
from pathlib import Path

import pytest
import torch

from rnnlab.train import read_metrics

SENTENCES = [
    "the quick brown fox jumps over the lazy dog. ",
    "分开 不分开 我不能再想 我不要再想 ",
    "a stitch in time saves nine; ",
    "rnnlab trains recurrent models. ",
]
# 70 sentences: 2,256 characters, 2,030 of them in the train split. A batch of 8 rows of 12 steps then
# ends its epoch after 21 steps, so a 30-step run crosses an epoch boundary, while 8 rows of 8 steps
# (31 per epoch) or 4 rows of 8 (63) do not before step 30.
NUM_SENTENCES = 70

# The settings of a tiny run, flag names as keywords: a run takes seconds. A test whose assertions
# depend on one of them passes it explicitly, even at the same value, so a change here cannot quietly
# change what that test checks.
TINY_RUN = {
    "hidden_size": 16,
    "num_layers": 1,
    "embedding_dim": 8,
    "batch_size": 4,
    "num_steps": 8,
    "eval_every": 5,
    "max_steps": 10,
    "max_time": "none",  # stop by steps, never by the machine's speed
    "sample_length": 10,
    "preset": "default",  # auto would pick small-corpus for so little text
    "quiet": True,
}
TIMING = frozenset({"chars_per_s", "train_time", "seconds"})  # wall-clock readings: never equal twice


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory) -> Path:
    """English and Chinese sentences in a seeded order (see NUM_SENTENCES). Shared: write runs elsewhere."""
    g = torch.Generator().manual_seed(0)
    picks = torch.randint(len(SENTENCES), (NUM_SENTENCES,), generator=g).tolist()
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("".join(SENTENCES[i] for i in picks), encoding="utf-8")
    return path


def tiny_run_argv(corpus: str | Path | None, out: str | Path | None, *extra: str, **settings) -> list[str]:
    """The argv of ``rnnlab train CORPUS --out OUT`` with TINY_RUN's settings, then ``extra`` flags.

    Args:
        corpus, out: the corpus file and the run directory (None: left out).
        extra: flags appended last (argparse lets the last of a repeated flag win).
        settings: flag values over TINY_RUN's, ``max_steps=40`` for ``--max-steps 40``: True gives a bare
            flag (``json=True``: ``--json``), None or False leaves the flag out (rnnlab's default).
    """
    argv = ["train"]
    if corpus is not None:
        argv.append(str(corpus))
    if out is not None:
        argv += ["--out", str(out)]
    for name, value in {**TINY_RUN, **settings}.items():
        if value is None or value is False:
            continue
        argv.append("--" + name.replace("_", "-"))
        if value is not True:
            argv.append(str(value))
    return [*argv, *extra]


def metric_records(run_dir: Path, event: str | None = None) -> list[dict]:
    """The records of a run's metrics.jsonl, only those of ``event`` when given."""
    records = read_metrics(Path(run_dir) / "metrics.jsonl")
    return [r for r in records if event is None or r["event"] == event]


def metrics_without_timing(run_dir: Path) -> list[dict]:
    """Every record the run logged minus its wall-clock readings: equal for equal runs."""
    return [{k: v for k, v in r.items() if k not in TIMING} for r in metric_records(run_dir)]


def last_json(text: str) -> dict:
    """The JSON object on the last line of a command's output (``--json``'s summary)."""
    return json.loads(text.strip().splitlines()[-1])
