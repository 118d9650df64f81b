"""Pictures of a run: learning curves with the n-gram baseline (matplotlib, imported only when drawing)."""

from __future__ import annotations

from pathlib import Path

from rnnlab.train.metrics import finite


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    return plt


def plot_learning_curves(
    records: list[dict], path: str | Path, baseline_loss: float | None = None, mark_step: int | None = None
) -> Path:
    """Train and validation loss (nats/char) against steps, with the baseline and a marked step.

    Args:
        records: metrics.jsonl records ("train" and "val" events are drawn).
        path: the PNG to write.
        baseline_loss: the n-gram baseline's validation loss, drawn as a horizontal line.
        mark_step: a step to mark (e.g. where over-fitting starts).
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    for event, style in (("train", "-"), ("val", "-o")):
        points = [
            (r["step"], r["loss"])
            for r in records
            if r.get("event") == event and finite(r.get("loss")) is not None
        ]
        if points:
            ax.plot(*zip(*points), style, markersize=3, label=f"{event} loss")
    if baseline_loss is not None:
        ax.axhline(baseline_loss, color="grey", linestyle="--", label="n-gram baseline (val)")
    if mark_step is not None:
        ax.axvline(mark_step, color="red", linestyle=":", label=f"step {mark_step}")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats per character)")
    ax.set_title("learning curves")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
