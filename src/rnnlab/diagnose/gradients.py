"""Gradient verdict: vanishing, exploding or healthy, read from the monitor's "grad" records."""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rnnlab.diagnose.fit import Remedy
from rnnlab.errors import RnnlabError
from rnnlab.train.metrics import finite

VANISH_RATIO = 1e-3  # ‖dL/dh_0‖ / ‖dL/dh_{T-1}‖ below this: the window's start gets no signal
LAYER_RATIO = 1e-3  # first / last recurrent layer gradient norm below this: early layers barely learn
GROWTH = 1e2  # global norm late / early above this: the gradient is blowing up over training
CLIP_MOST = 0.5  # clipping on more than this fraction of steps: the clip is doing the optimiser's job
SPIKE = 10.0  # ...a problem where a recent norm reaches this times their median; else a low threshold
RECENT = 3  # vanishing is judged on the last few records: a gated cell that just learnt to remember
# (the adding problem's plateau, then its breakthrough) has vanishing records behind it, not ahead
MIN_REACH = 3  # a gradient that dies within fewer steps starves even a learning model of context
AHEAD = 0.95  # ...unless its val is at most this fraction of the n-gram's: it has the context the text needs

GATED = ("lstm", "gru", "mingru", "minlstm")
GATED_CELL = Remedy(
    "a gated cell: its cell state carries gradient across many steps (Hochreiter & Schmidhuber 1997; "
    "Cho et al. 2014)",
    "--cell lstm / --cell gru",
)
ALREADY_GATED = Remedy(
    "the cell is gated already: train longer (its forget / update gates learn to hold on), or the text "
    "needs no longer memory than the gradient's reach",
    "--max-time 600 (or --max-steps)",
)
REACH = Remedy(
    "a window much longer than the gradient's reach costs compute and teaches nothing: shorten it, or "
    "lengthen the reach with the remedies above",
    "--num-steps N",
)
FEWER_LAYERS = Remedy(
    "residual (skip) connections between stacked layers keep early layers learning (He et al. 2016); "
    "rnnlab's stack has none, so use fewer layers",
    "--num-layers 1",
)
CLIP = Remedy("clip the global gradient norm (Pascanu et al. 2013)", "--clip-norm 1")
CLIP_OFTEN = Remedy(
    "clipping on most steps makes every update the same length: lower the learning rate, or raise the "
    "threshold to about the typical norm if the norms are steady",
    "--lr (halve it) / --clip-norm",
)
LOWER_LR = Remedy("a lower learning rate", "--lr (halve it)")
SHORTER_WINDOW = Remedy("a shorter window: fewer recurrent Jacobians multiply together", "--num-steps N")

_LAYER_KEY = re.compile(r"^grad_norm/(?P<prefix>.*)\.l(?P<layer>\d+)$")


@dataclass(frozen=True)
class GradientVerdict:
    """What the gradient records say.

    Attributes:
        kind: ``"exploding"``, ``"vanishing"`` or ``"healthy"``; exploding wins when both show (it is
            the one that wrecks a run), and the evidence then lists both.
        evidence: one line per finding, with its numbers and threshold.
        remedies: what to try, most promising first, each with the rnnlab flags that do it.
        numbers: the measured figures (JSON-able).
        notes: findings that are no problem here, with why (e.g. a gradient that fades over the window
            while the model learns: text needs little memory).
    """

    kind: str
    evidence: tuple[str, ...] = ()
    remedies: tuple[Remedy, ...] = ()
    numbers: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def render_text(self) -> str:
        lines = [f"gradients: {self.kind}"]
        lines += [f"  - {line}" for line in self.evidence]
        lines += [f"  note: {line}" for line in self.notes]
        if self.remedies:
            lines.append("remedies, most promising first:")
            lines += [f"  {i}. {r.action}: {r.flags}" for i, r in enumerate(self.remedies, 1)]
        return "\n".join(lines)


def grad_records(records: Sequence[dict]) -> list[dict]:
    """The monitor's records among a metrics.jsonl's (``event == "grad"``, or no event at all)."""
    return [r for r in records if r.get("event", "grad") == "grad"]


def _late(values: list, fraction: float = 0.5) -> list:
    return values[int(len(values) * (1 - fraction)) :] if values else values


def _dldh_ratio(record: dict) -> tuple[float, int] | None:
    """``dldh[0] / dldh[-1]`` and the reach: how many steps back the gradient stays above VANISH_RATIO."""
    curve = [finite(v) for v in record.get("dldh") or ()]
    if len(curve) < 2 or None in curve or curve[-1] <= 0:
        return None
    last = len(curve) - 1
    reach = next((last - t for t in range(last, -1, -1) if curve[t] < VANISH_RATIO * curve[-1]), len(curve))
    return curve[0] / curve[-1], reach


def _layer_ratios(record: dict) -> dict[str, float]:
    layers: dict[str, dict[int, float]] = {}
    for key, value in record.items():
        match = _LAYER_KEY.match(key)
        if match:
            layers.setdefault(match["prefix"], {})[int(match["layer"])] = finite(value)
    ratios = {}
    for prefix, norms in layers.items():
        first, last = norms[min(norms)], norms[max(norms)]
        if len(norms) > 1 and first is not None and last is not None and last > 0:
            ratios[prefix] = first / last
    return ratios


def gradient_verdict(
    records: Sequence[dict],
    cell: str | None = None,
    learning: bool | None = None,
    ahead: tuple[float, float] | None = None,
) -> GradientVerdict:
    """Judge a run's gradients from its "grad" records (other events are ignored).

    ``cell`` (the run's ``--cell``, when known) picks the remedies: a gated cell is not told to use one.
    ``learning`` (whether the loss curves show the model learning; None: unknown) decides whether a
    gradient that fades over the window is a problem: a language model that learns needs little
    memory (the next character depends mostly on the last few), so there it is a note, unless the
    gradient dies within :data:`MIN_REACH` steps. ``ahead`` (the model's best val loss and the n-gram
    baseline's, when known) lifts that exception too: a model at most :data:`AHEAD` times the n-gram's
    loss predicts better than counting the last characters does, so the text needs no more memory
    than it gets. A problem is named only where one hurts.

    Vanishing: the median, over the last :data:`RECENT` records, of ``dldh[0] / dldh[-1]`` is below
    :data:`VANISH_RATIO`, or the first recurrent layer's gradient norm is below :data:`LAYER_RATIO` times
    the last one's. Exploding: any non-finite norm, the global norm growing more than :data:`GROWTH`-fold
    from the first third of the records to the last, or clipping on more than :data:`CLIP_MOST` of the
    steps in the later half while a norm there spikes to :data:`SPIKE` times their median. Clipping on
    most steps of a steady norm is a threshold below the typical norm (the notes' ``1e-2``): a note.

    Raises:
        RnnlabError: no "grad" records (the run was trained without the gradient monitor).
    """
    grads = grad_records(records)
    if not grads:
        raise RnnlabError("no gradient records in this run; train it with the gradient monitor on")
    numbers: dict = {"records": len(grads), "steps": [grads[0].get("step"), grads[-1].get("step")]}
    exploding, notes = _exploding(grads, numbers)
    vanishing = _vanishing(grads[-RECENT:], numbers)
    window_only = vanishing and not any(
        key.startswith("layer_ratio/") and v < LAYER_RATIO for key, v in numbers.items()
    )
    well_ahead = ahead is not None and ahead[0] <= AHEAD * ahead[1]
    if learning and window_only and (numbers.get("reach", 0) >= MIN_REACH or well_ahead):
        why = (
            f"val {ahead[0]:.3g} is {ahead[0] / ahead[1]:.2f}x the n-gram baseline's {ahead[1]:.3g}, so "
            "the model has the context this text needs"
            if well_ahead and numbers.get("reach", 0) < MIN_REACH
            else "the model is learning, and text needs little memory (the next character depends mostly "
            "on the last few), so this is the usual shape of an LSTM's gradient"
        )
        notes.append(f"{vanishing[0]}; no harm seen: {why}")
        vanishing = []
    kind = "exploding" if exploding else "vanishing" if vanishing else "healthy"
    evidence = exploding + vanishing or [
        f"no sign of vanishing or exploding gradients over {len(grads)} records"
        + (f" (‖dL/dh_0‖/‖dL/dh_T-1‖ = {numbers['dldh_ratio']:.2e})" if "dldh_ratio" in numbers else "")
    ]
    remedies = _remedies(bool(exploding), bool(vanishing), numbers, cell)
    return GradientVerdict(kind, tuple(evidence), remedies, numbers, tuple(notes))


def _exploding(grads: list[dict], numbers: dict) -> tuple[list[str], list[str]]:
    """Evidence of exploding gradients (non-finite norms, a growing norm, clipping on most steps of a
    spiking norm) and notes; the figures go into ``numbers``."""
    found, notes = [], []
    norms = [finite(r.get("norm_before")) for r in grads if "norm_before" in r]
    bad = sum(
        not all(finite(v) is not None for v in [r.get("norm_before", 0.0), *(r.get("dldh") or ())])
        for r in grads
    )
    if bad:
        numbers["nonfinite_records"] = bad
        found.append(f"{bad} of {len(grads)} records hold non-finite gradient norms (nan/inf)")
    finite_norms = [v for v in norms if v is not None]
    if len(finite_norms) >= 3:
        third = max(1, len(finite_norms) // 3)
        early, recent = statistics.median(finite_norms[:third]), statistics.median(finite_norms[-third:])
        growth = recent / early if early > 0 else math.inf
        numbers["norm_growth"] = growth
        if growth > GROWTH:
            found.append(
                f"global gradient norm grew {growth:.3g}x (median {early:.3g} -> {recent:.3g}; threshold "
                f"{GROWTH:g}x)"
            )
    clip = [v for r in _late(grads) if (v := finite(r.get("clip_frac"))) is not None]
    if clip:
        numbers["clip_frac"] = statistics.fmean(clip)
        late = _late(finite_norms)
        median = statistics.median(late) if late else 0.0
        numbers["norm_spike"] = max(late) / median if median > 0 else 1.0
        if numbers["clip_frac"] > CLIP_MOST:
            clipping = (
                f"clipping fired on {numbers['clip_frac']:.0%} of recent steps (threshold {CLIP_MOST:.0%})"
            )
            if numbers["norm_spike"] >= SPIKE:
                found.append(f"{clipping}, and the norm spikes to {numbers['norm_spike']:.3g}x its median")
            else:
                notes.append(
                    f"{clipping}, but the norm is steady (median {median:.3g}, at most "
                    f"{numbers['norm_spike']:.3g}x it): the threshold sits below the typical norm, so it "
                    "rescales every update (Adam: hardly a change; SGD: a fixed step length); no harm seen. "
                    f"If that is not meant: --clip-norm about {median:.2g}"
                )
    return found, notes


def _vanishing(recent: list[dict], numbers: dict) -> list[str]:
    """Evidence of vanishing gradients in the last records (over the window, across layers)."""
    found = []
    ratios = [r for r in map(_dldh_ratio, recent) if r is not None]
    if ratios:
        numbers["dldh_ratio"] = statistics.median(r for r, _ in ratios)
        numbers["reach"] = int(statistics.median(k for _, k in ratios))
        window = len(recent[-1].get("dldh") or ())
        if numbers["dldh_ratio"] < VANISH_RATIO:
            found.append(
                f"‖dL/dh_0‖ / ‖dL/dh_{window - 1}‖ = {numbers['dldh_ratio']:.2e} (median of the last "
                f"{len(ratios)} records; threshold {VANISH_RATIO:g}): the gradient of the last prediction "
                f"falls {1 / VANISH_RATIO:g}-fold within {numbers['reach']} of the window's {window} steps"
            )
    layer_ratios = [_layer_ratios(r) for r in recent]
    for prefix in sorted({p for ratios in layer_ratios for p in ratios}):
        ratio = statistics.median(r[prefix] for r in layer_ratios if prefix in r)
        numbers[f"layer_ratio/{prefix}"] = ratio
        if ratio < LAYER_RATIO:
            found.append(
                f"{prefix}: first layer's gradient norm is {ratio:.2e} of the last layer's (threshold "
                f"{LAYER_RATIO:g})"
            )
    return found


def _remedies(exploding: bool, vanishing: bool, numbers: dict, cell: str | None) -> tuple[Remedy, ...]:
    """What to try for the findings, most promising first (a gated cell is not told to use one)."""
    remedies: list[Remedy] = []
    if exploding:
        clipping_often = numbers.get("clip_frac", 0.0) > CLIP_MOST
        remedies += [CLIP_OFTEN if clipping_often else CLIP, LOWER_LR, SHORTER_WINDOW]
    if vanishing:
        remedies.append(ALREADY_GATED if cell in GATED else GATED_CELL)
        if numbers.get("dldh_ratio", 1.0) < VANISH_RATIO:
            remedies.append(REACH)
        if any(key.startswith("layer_ratio/") and v < LAYER_RATIO for key, v in numbers.items()):
            remedies.append(FEWER_LAYERS)
    return tuple(dict.fromkeys(remedies))


def plot_dldh_heatmap(records: Sequence[dict], path: str | Path) -> Path:
    """Save a PNG heatmap of log10 ‖dL/dh_t‖: one row per logged step, one column per window step t.

    Raises:
        RnnlabError: no record carries a ``dldh`` curve.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [r for r in grad_records(records) if r.get("dldh")]
    if not rows:
        raise RnnlabError("no dL/dh_t curves in these records; was the gradient monitor on?")
    width = max(len(r["dldh"]) for r in rows)
    grid = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        grid[i, : len(r["dldh"])] = [math.nan if finite(v) is None else v for v in r["dldh"]]
    with np.errstate(divide="ignore", invalid="ignore"):
        grid = np.log10(grid)
    grid[~np.isfinite(grid)] = np.nan
    fig, ax = plt.subplots(figsize=(8, max(3.0, min(10.0, 0.25 * len(rows) + 2))))
    image = ax.imshow(grid, aspect="auto", interpolation="nearest", cmap="viridis")
    fig.colorbar(image, ax=ax, label="log10 ‖dL/dh_t‖")
    ticks = np.linspace(0, len(rows) - 1, min(len(rows), 8)).round().astype(int)
    ax.set_yticks(ticks, [str(rows[i].get("step", i)) for i in ticks])
    ax.set(
        xlabel="window step t", ylabel="training step", title="gradient reaching step t from the last loss"
    )
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
