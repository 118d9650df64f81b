"""A RunReport as one self-contained HTML page: inline CSS, PNGs as data: URIs, no scripts, no fetches."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from html import escape

from rnnlab import __version__
from rnnlab.diagnose.fit import Remedy
from rnnlab.diagnose.fit import render_text as render_fit
from rnnlab.diagnose.run import Diagnosis


@dataclass(frozen=True)
class RunReport:
    """Everything the page shows, with the pictures as PNG bytes.

    Attributes:
        name: the run directory's name.
        command: the command line that made the run (and any resumes).
        config: the resolved config, nested by component (config.json's ``config``).
        numbers: (label, value) rows: steps, best validation score, test score, baseline, ...
        diagnosis: the fit and gradient verdicts (``diagnosis.gradients`` None: no monitor readings).
        pictures: ``learning_curves`` and, when the monitor logged dL/dh_t, ``dldh_heatmap``.
        samples: (label, text) from the best model, one per entry of :data:`TEMPERATURES`.
    """

    name: str
    command: tuple[str, ...]
    config: dict
    numbers: tuple[tuple[str, str], ...]
    diagnosis: Diagnosis
    pictures: dict[str, bytes]
    samples: tuple[tuple[str, str], ...]
    inspect_page: str | None = None  # the run's `rnnlab inspect` page beside the report, when there is one


# Local fonts only: a @font-face or stylesheet link would be a network fetch.
CSS = """
:root { --ink: #1d2330; --muted: #5b6475; --line: #dde2ea; --paper: #f5f7fa; --accent: #2f5fb3; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--paper); color: var(--ink); line-height: 1.45;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", "Noto Sans", "DejaVu Sans",
  "Noto Sans CJK SC", "WenQuanYi Zen Hei", sans-serif; }
main { max-width: 1160px; margin: 0 auto; padding: 24px; }
header { border-bottom: 3px solid var(--accent); margin-bottom: 18px; }
h1 { margin: 0 0 6px; font-size: 26px; } h1 span { color: var(--muted); font-weight: 400; }
h2 { margin: 0 0 10px; font-size: 19px; } h3 { margin: 12px 0 6px; font-size: 15px; }
code, pre { font-family: "DejaVu Sans Mono", Menlo, Consolas, "WenQuanYi Zen Hei Mono", monospace; }
.cmd code { display: block; padding: 6px 0 12px; color: var(--muted); word-break: break-all; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 18px;
  margin-bottom: 16px; }
.pair { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 16px; }
.pair > section { margin-bottom: 0; } .row { margin-bottom: 16px; }
img { max-width: 100%; height: auto; display: block; border: 1px solid var(--line); border-radius: 4px; }
table { border-collapse: collapse; width: 100%; }
td, th { text-align: left; vertical-align: top; padding: 4px 10px 4px 0;
  border-bottom: 1px solid var(--line); }
th { color: var(--muted); font-weight: 600; white-space: nowrap; width: 1%; }
.badge { display: inline-block; padding: 1px 10px; border-radius: 12px; color: #fff; font-size: 15px; }
.good { background: #2e8b57; } .warn { background: #d9822b; } .bad { background: #c0392b; }
.info { background: var(--accent); }
ul, ol { margin: 4px 0; padding-left: 22px; } li { margin: 3px 0; }
li code { background: var(--paper); padding: 0 4px; border-radius: 3px; }
.note { color: var(--muted); }
.samples { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 12px; }
pre.sample { white-space: pre-wrap; word-break: break-all; margin: 0; padding: 10px;
  background: var(--paper); border-radius: 4px; max-height: 260px; overflow: auto; font-size: 14px; }
.config { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 4px 18px; }
.config td, .config th { font-size: 13px; padding: 2px 8px 2px 0; }
footer { color: var(--muted); font-size: 12px; text-align: center; padding: 8px; }
"""
BADGES = {
    "good fit": "good",
    "healthy": "good",
    "still improving": "info",
    "under-fitting": "warn",
    "vanishing": "warn",
    "over-fitting": "bad",
    "exploding": "bad",
}
NO_MONITOR = (
    "This run has no gradient monitor readings (it was trained with <code>--monitor-every 0</code>, or "
    "stopped before the first reading), so there is no gradient verdict and no dL/dh<sub>t</sub> "
    "heatmap. Train with <code>--monitor-every N</code> to get them."
)


def _png(data: bytes, alt: str) -> str:
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}">'


def _badge(kind: str) -> str:
    return f'<span class="badge {BADGES.get(kind, "info")}">{escape(kind)}</span>'


def _items(lines, ordered: bool = False) -> str:
    tag = "ol" if ordered else "ul"
    return f"<{tag}>" + "".join(f"<li>{line}</li>" for line in lines) + f"</{tag}>"


def _remedies(remedies: tuple[Remedy, ...]) -> str:
    if not remedies:
        return ""
    lines = [f"{escape(r.action)}: <code>{escape(r.flags)}</code>" for r in remedies]
    return "<h3>Remedies, most promising first</h3>" + _items(lines, ordered=True)


def _table(rows, css: str = "") -> str:
    body = "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>" for k, v in rows)
    return f'<table class="{css}">{body}</table>' if css else f"<table>{body}</table>"


def _fit(report: RunReport) -> str:
    fit = report.diagnosis.fit
    since = f" since step {fit.since_step}" if fit.since_step is not None else ""
    # rnnlab diagnose's own wording: the lines between the verdict and the remedies are the evidence.
    text = render_fit(fit).splitlines()
    evidence = [line.strip() for line in text[1 : text.index("remedies, most promising first:")]]
    return (
        f'<section id="fit"><h2>Fit verdict {_badge(fit.verdict)}{escape(since)}</h2>'
        f"<h3>Evidence</h3>{_items(map(escape, evidence))}{_remedies(fit.remedies)}</section>"
    )


def _gradients(report: RunReport) -> tuple[str, str]:
    """The heatmap's section and the gradient verdict's section."""
    diag, heatmap = report.diagnosis, report.pictures.get("dldh_heatmap")
    if diag.gradients is None:
        picture = f'<p class="note" id="no-monitor">{NO_MONITOR}</p>'
    elif heatmap is None:
        picture = '<p class="note">The gradient monitor logged no dL/dh<sub>t</sub> curves for this run.</p>'
    else:
        picture = _png(heatmap, "log10 of the gradient norm reaching each window step, per logged step")
    heat = f'<section id="heatmap"><h2>dL/dh<sub>t</sub> heatmap</h2>{picture}</section>'
    d = diag.divergence
    divergence = ""
    if any(d.values()):
        divergence = (
            f'<p class="note">Divergence: {d["skip"] + d["rollback"]} non-finite steps skipped, '
            f"{d['rollback']} rollbacks, {d['save_skipped']} saves of a non-finite model refused.</p>"
        )
    g = diag.gradients
    if g is None:
        verdict = f"<h2>Gradient verdict</h2><p>No readings: see the heatmap's note.</p>{divergence}"
    else:
        verdict = (
            f"<h2>Gradient verdict {_badge(g.kind)}</h2><h3>Evidence</h3>"
            f"{_items(map(escape, g.evidence))}{_remedies(g.remedies)}{divergence}"
        )
    return heat, f'<section id="gradients">{verdict}</section>'


def _samples(report: RunReport) -> str:
    cells = "".join(
        f'<div><h3>{escape(label)}</h3><pre class="sample">{escape(text)}</pre></div>'
        for label, text in report.samples
    )
    return (
        '<section id="samples"><h2>Samples from the best model</h2>'
        f'<p class="note">Same seed for each; lower temperatures are safer, higher ones wilder.</p>'
        f'<div class="samples">{cells}</div></section>'
    )


def _config(report: RunReport) -> str:
    def show(value) -> str:
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    tables = "".join(
        f"<div><h3>{escape(section)}</h3>{_table((k, show(v)) for k, v in values.items())}</div>"
        for section, values in report.config.items()
    )
    commands = "".join(f"<li><code>{escape(c)}</code></li>" for c in report.command)
    return (
        f'<section id="config"><h2>Config</h2><ul>{commands}</ul><div class="config">{tables}</div></section>'
    )


def _baseline_note(report: RunReport) -> str:
    loss = report.diagnosis.baseline_val_loss
    if loss is None:
        return '<p class="note">This run scored no n-gram baseline.</p>'
    return f'<p class="note">Dashed: the n-gram baseline\'s validation loss ({loss:.4f} nats).</p>'


def _inspect_note(report: RunReport) -> str:
    what = "Which units track quotes, brackets, line position, ...: "
    if report.inspect_page:
        link = escape(report.inspect_page)
        return f'<p class="note" id="inspect-link">{what}<a href="{link}">{link}</a> (rnnlab inspect).</p>'
    page = "<code>rnnlab inspect RUN_DIR</code> writes that page"
    return f'<p class="note" id="inspect-link">{what}{page}.</p>'


def render_html(report: RunReport) -> str:
    """The whole page as one string (UTF-8 when written)."""
    curves = report.pictures["learning_curves"]
    heat, grads = _gradients(report)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>rnnlab report: {escape(report.name)}</title>
<style>{CSS}</style></head>
<body><main>
<header><h1>rnnlab report <span>{escape(report.name)}</span></h1>
<div class="cmd"><code>{escape(report.command[0])}</code></div></header>
<section id="summary"><h2>Summary</h2>{_table(report.numbers)}{_inspect_note(report)}</section>
<div class="pair row">
<section id="learning-curves"><h2>Learning curves</h2>{_png(curves, "train and validation loss by step")}
{_baseline_note(report)}</section>
{_fit(report)}
</div>
<div class="pair row">{heat}{grads}</div>
{_samples(report)}
{_config(report)}
<footer>rnnlab {escape(__version__)}: everything on this page comes from the run directory.</footer>
</main></body></html>
"""
