"""Gather what a run's report shows: config, headline numbers, verdicts, pictures and samples."""

from __future__ import annotations

import dataclasses
import math
import tempfile
from pathlib import Path

from rnnlab.diagnose.run import diagnose
from rnnlab.errors import RnnlabError
from rnnlab.generate import SamplingConfig, generate_text
from rnnlab.io import atomic_write_text, read_json
from rnnlab.report.html import RunReport, render_html
from rnnlab.rundir import RunDir
from rnnlab.train.metrics import read_metrics

REPORT_NAME = "report.html"  # default place: inside the run directory
INSPECT_PAGE = "inspect.html"  # what `rnnlab inspect` writes into the run directory by default
TEMPERATURES = (  # label, how to choose each character: from safest to wildest
    ("greedy", SamplingConfig(greedy=True)),
    ("temperature 0.5", SamplingConfig(temperature=0.5)),
    ("temperature 0.8", SamplingConfig(temperature=0.8)),
    ("temperature 1.0", SamplingConfig(temperature=1.0)),
)


def check_out(path: str | Path) -> Path:
    """Refuse, before any work, an output path that cannot take the report (an existing report is
    regenerated: it is derived from the run)."""
    path = Path(path)
    if path.is_dir():
        raise RnnlabError(f"--out {path} is a directory; give a file name such as {path / REPORT_NAME}")
    if not path.parent.is_dir():
        raise RnnlabError(f"--out {path}: directory {path.parent} does not exist")
    return path


def _loss(record: dict | None, what: str) -> str:
    if not record:
        return "n/a"
    loss = float(record.get("loss", math.nan))
    bpc = f", {record['bpc']:.3f} bpc" if record.get("bpc") is not None else ""  # none per word
    return f"loss {loss:.4f} nats, ppl {math.exp(min(loss, 50)):.2f}{bpc} ({what})"


def headline_numbers(records: list[dict]) -> tuple[tuple[str, str], ...]:
    """The rows of the summary table, read from metrics.jsonl's records."""
    first = {}
    for r in records:
        first.setdefault(r.get("event"), r)
    start, base, end = first.get("start", {}), first.get("baseline"), first.get("end")
    vals = [r for r in records if r.get("event") == "val" and math.isfinite(float(r.get("loss", math.nan)))]
    best = min(vals, key=lambda r: float(r["loss"]), default=None)
    test = next((r for r in reversed(records) if r.get("event") == "test"), None)
    chars = start.get("chars") or {}
    rows = [
        ("test score", _loss(test, f"best model, step {test.get('step')}") if test else "not scored"),
        ("best validation", _loss(best, f"step {best['step']}") if best else "no validation yet"),
    ]
    parts = next((r for r in reversed(records) if r.get("event") == "parts"), None)
    if parts:  # a residual model: what each part scores alone, so counting is not taken for learning
        for name, key in (("network alone", "network"), ("its n-gram alone", "ngram")):
            scores = [f"{split} loss {parts[split][key]:.4f}" for split in ("val", "test") if split in parts]
            rows.append((name, ", ".join(scores) + " nats"))
    if base:
        rows.append(
            (
                "n-gram baseline",
                f"val ppl {base['val_ppl']:.2f}"
                + (f", test ppl {base['test_ppl']:.2f}" if base.get("test_ppl") is not None else "")
                + f" (Kneser-Ney, order {base['order']})",
            )
        )
    adaptive = next((r for r in reversed(records) if r.get("event") == "adaptive"), None)
    if adaptive and adaptive.get("test", {}).get("all") is not None:
        rows.append(("adaptive evaluation", f"test ppl {math.exp(adaptive['test']['all']):.2f}"))
    rows += [
        ("steps", f"{end['step']} ({end.get('reason')})" if end else "run not finished"),
        ("corpus", f"{start.get('source', '?')}: " + ", ".join(f"{k} {v:,}" for k, v in chars.items())),
        ("vocabulary", f"{start.get('vocab_size', '?')} tokens"),
        ("parameters", f"{start['params']:,}" if "params" in start else "?"),
    ]
    return tuple(rows)


def build_report(run_path: str | Path, length: int = 200, seed: int = 0) -> RunReport:
    """Read a run directory and make its report's contents.

    Args:
        run_path: a run directory made by ``rnnlab train``.
        length: characters per sample.
        seed: the samples' random seed (the same seed gives the same samples).

    Raises:
        RnnlabError: not a run directory, no metrics.jsonl, no validation yet, or no saved model.
    """
    run = RunDir.open(run_path)
    records = read_metrics(run.metrics_path)
    cfg = run.load_config()
    doc = read_json(run.config_path)
    with tempfile.TemporaryDirectory(prefix="rnnlab-report-") as tmp:
        diag = diagnose(records, tmp, cell=cfg.model.cell)  # the same verdicts and PNGs as rnnlab diagnose
        pictures = {Path(p).stem: Path(p).read_bytes() for p in diag.plots}
    model, _ = run.load_model("cpu")
    vocab = run.load_vocab()
    prefix = cfg.run.prefix[0] if cfg.run.prefix else ""
    samples = []
    for label, sampling in TEMPERATURES:
        steps = generate_text(model, vocab, prefix, length, sampling, seed=seed, on_unknown="skip")
        samples.append((label, prefix + "".join(step[0] for step in steps)))
    return RunReport(
        name=run.path.resolve().name,
        command=(doc.get("command", "?"), *doc.get("resumed", ())),
        config=cfg.to_dict(),
        numbers=headline_numbers(records),
        diagnosis=diag,
        pictures=pictures,
        samples=tuple(samples),
    )


def write_report(
    run_path: str | Path, out: str | Path | None = None, length: int = 200, seed: int = 0
) -> Path:
    """Write the run's self-contained HTML report; returns its path (default ``RUN_DIR/report.html``)."""
    RunDir.open(run_path)  # a missing run directory is named as such, not as a missing --out directory
    out = check_out(out if out is not None else Path(run_path) / REPORT_NAME)
    report = build_report(run_path, length, seed)
    page = Path(run_path) / INSPECT_PAGE  # linked when `rnnlab inspect` wrote it beside the report
    if page.is_file() and out.resolve().parent == page.resolve().parent:
        report = dataclasses.replace(report, inspect_page=INSPECT_PAGE)
    atomic_write_text(out, render_html(report))
    return out
