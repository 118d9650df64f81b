"""An Inspection as one self-contained HTML page: the text coloured by a unit, the model's next-character
guesses, the feature table; inline CSS, script and data, no fetches."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from html import escape
from pathlib import Path

import numpy as np

from rnnlab import __version__
from rnnlab.inspect.activations import SIGNALS
from rnnlab.inspect.correlate import FeatureScores, UnitScore
from rnnlab.inspect.run import (
    DEFAULT_CHARS,
    PAGE_NAME,
    VAL_SOURCE,
    Inspection,
    check_chars,
    check_out,
    inspect_run,
)
from rnnlab.inspect.script import CSS, SCRIPT
from rnnlab.io import atomic_write_text
from rnnlab.rundir import RunDir

MAX_PAGE_VALUES = 6_000_000  # int8 activations on the page (8 MB of base64): 300 unit signals at 20k chars


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def page_tracks(inspection: Inspection, budget: int = MAX_PAGE_VALUES) -> list[tuple[str, int, int]]:
    """The ``(signal, layer, unit)`` series the page carries, at most ``budget // T`` of them (at least 1):
    those of the feature table first, then every unit's ``h``, then the other signals (c and the gates)
    of the table's units, then those of every unit, as room allows."""
    rec = inspection.recording
    layers, _, hidden = rec.signals["h"].shape
    signals = SIGNALS[rec.mode]
    featured = list(dict.fromkeys((u.layer, u.unit) for s in inspection.scores for u in s.units))
    everyone = [(layer, unit) for layer in range(layers) for unit in range(hidden)]
    wanted = [(u.signal, u.layer, u.unit) for s in inspection.scores for u in s.units]
    wanted += [("h", layer, unit) for layer, unit in everyone]
    wanted += [(signal, layer, unit) for layer, unit in featured for signal in signals]
    wanted += [(signal, layer, unit) for signal in signals for layer, unit in everyone]
    room = max(budget // max(len(inspection.text), 1), 1)
    chosen = list(dict.fromkeys(wanted))[:room]
    return sorted(chosen, key=lambda t: (signals.index(t[0]), t[1], t[2]))


def page_data(inspection: Inspection, budget: int = MAX_PAGE_VALUES) -> dict:
    """What the page's script reads: the text, the vocabulary, and base64 arrays.

    Returns:
        ``text``, ``chars`` (T), ``tokens``, ``tracks`` (``[signal, layer, unit, scale]`` each), ``acts``
        (int8 ``(tracks, T)``, ``round(127 * value / scale)``, scale = the track's max ``|value|``),
        ``k``, ``top_ids`` (uint16 or uint32 ``(T, K)``, little-endian, width ``id_bytes``),
        ``top_probs`` (uint8 ``(T, K)``, ``round(255 * p)``) and ``start`` (the track shown first: the
        best unit of the first feature that varies).
    """
    rec = inspection.recording
    tracks = page_tracks(inspection, budget)
    series = np.stack([rec.signals[s][layer, :, unit] for s, layer, unit in tracks])  # (N, T)
    scales = np.abs(series).max(axis=1)  # (N,)
    acts = np.round(127 * series / np.where(scales > 0, scales, 1)[:, None]).astype(np.int8)  # (N, T)
    id_bytes = 2 if len(inspection.tokens) <= 1 << 16 else 4
    position = {track: n for n, track in enumerate(tracks)}
    best = [(u.signal, u.layer, u.unit) for s in inspection.scores for u in s.units[:1]]
    return {
        "text": inspection.text,
        "chars": len(inspection.text),
        "tokens": list(inspection.tokens),
        "tracks": [[s, layer, unit, float(scale)] for (s, layer, unit), scale in zip(tracks, scales)],
        "acts": _b64(acts),
        "k": int(rec.top_ids.shape[1]),
        "id_bytes": id_bytes,
        "top_ids": _b64(rec.top_ids.astype("<u2" if id_bytes == 2 else "<u4")),
        "top_probs": _b64(np.round(rec.top_probs * 255).astype(np.uint8)),
        "start": position.get(best[0], 0) if best else 0,
    }


def fragment(unit: UnitScore) -> str:
    """The URL fragment that shows ``unit`` on the page: ``unit=L:U``, with ``&signal=S`` unless ``h``."""
    return f"unit={unit.layer}:{unit.unit}" + ("" if unit.signal == "h" else f"&signal={unit.signal}")


def _unit_button(score: FeatureScores, n: int) -> str:
    u = score.units[n]
    label = f"{score.feature} {u.corr:+.2f}"
    return (
        f'<button class="unit" data-hash="{escape(fragment(u))}" data-label="{escape(label)}">'
        f"{u.signal} {u.layer}:{u.unit} <b>{u.corr:+.2f}</b></button>"
    )


def _feature_rows(scores: Sequence[FeatureScores]) -> str:
    rows = []
    for s in scores:
        if s.constant is not None:
            rows.append(
                f"<tr><td>{escape(s.feature)}</td><td class='note'>constant on this text "
                f"(always {s.constant:g}): no unit can track it here</td><td></td></tr>"
            )
            continue
        units = "".join(_unit_button(s, n) for n in range(len(s.units)))
        rows.append(
            f'<tr data-hash="{escape(fragment(s.units[0]))}"><td>{escape(s.feature)}</td><td>{units}</td>'
            f"<td>{s.control:.2f}</td></tr>"
        )
    return "".join(rows)


def _json_for_script(data: dict) -> str:
    """JSON that cannot end its ``<script>`` element early (no ``<`` survives)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


def _where(source: str) -> str:
    return f"the {source}" if source == VAL_SOURCE else source


def render_page(inspection: Inspection, budget: int = MAX_PAGE_VALUES) -> str:
    """The whole page as one string (UTF-8 when written)."""
    m, rec = inspection.model, inspection.recording
    name = escape(inspection.run.resolve().name)
    about = (
        f"{m['num_layers']}×{m['hidden_size']} {m['cell'].upper()} (impl {m['impl']}, n-gram {m['ngram']}); "
        f"{len(inspection.text):,} characters of {escape(_where(inspection.source))}"
        + (f", {inspection.unknown:,} of them unknown to the vocabulary" if inspection.unknown else "")
    )
    data = page_data(inspection, budget)
    shown = len(data["tracks"])
    total = sum(values.shape[0] * values.shape[2] for values in rec.signals.values())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>rnnlab inspect: {name}</title>
<style>{CSS}</style></head>
<body><main>
<header><h1>rnnlab inspect <span>{name}</span></h1><p class="note">{about}</p></header>
<section id="viewer"><h2>The text, coloured by one unit</h2>
<div class="controls"><label>unit <select id="pick"></select></label><span id="legend"></span>
<span id="missing" class="note"></span></div>
<noscript><p class="note">The colouring needs JavaScript.</p></noscript>
<div id="text"></div>
<div id="probe" class="note">Hover a character: the unit's value there and the model's
{data["k"]} likeliest next characters.</div>
<p class="note">{shown:,} of {total:,} unit signals are on this page (red above zero, blue below; gates
green); <code>#unit=L:U&amp;signal=S&amp;pos=N</code> in the address picks one.</p></section>
<section id="features"><h2>Units that track a feature</h2>
<p class="note">Pearson correlation of each unit's state (h, and c for an LSTM) with the feature, over
every character; the best {max((len(s.units) for s in inspection.scores), default=0)} by |r|. Chance:
the best |r| with the feature rotated by half the text. Click a row or a unit to colour the text by it.</p>
<table><tr><th>feature</th><th>best units (signal layer:unit r)</th><th>chance</th></tr>
{_feature_rows(inspection.scores)}</table></section>
<footer>rnnlab {escape(__version__)}: everything on this page comes from the run and the text.</footer>
</main>
<script type="application/json" id="data">{_json_for_script(data)}</script>
<script>{SCRIPT}</script>
</body></html>
"""


def write_inspection(
    run_path: str | Path,
    out: str | Path | None = None,
    text: str | Path | None = None,
    chars: int = DEFAULT_CHARS,
    features: Sequence[str] = (),
) -> tuple[Inspection, Path]:
    """Inspect a run (:func:`rnnlab.inspect.run.inspect_run`) and write its page (default
    ``RUN_DIR/inspect.html``); returns the inspection and the page's path. Every argument is checked
    before any work, and the page is written atomically: a refusal leaves the disk as it was."""
    RunDir.open(run_path)  # a missing run directory is named as such, not as a missing --out directory
    out = check_out(out if out is not None else Path(run_path) / PAGE_NAME)
    check_chars(chars)
    inspection = inspect_run(run_path, text, chars, features)
    atomic_write_text(out, render_page(inspection))
    return inspection, out
