"""TensorBoard sink: mirrors the metrics log's records into RUN_DIR/tensorboard (``--tensorboard``).

It listens to :class:`rnnlab.train.reporting.Reporter` like metrics.jsonl does, so the loop never
calls it: every record the run writes is offered to it, and it picks what TensorBoard can show.

::

    record event   TensorBoard
    ------------   ------------------------------------------------------------------------
    train          train/loss, train/ppl, train/bpc, train/lr, train/penalty_*, train/chars_per_s
    val            val/loss, val/ppl, val/bpc; histograms weights/<parameter name>
    grad           grad/norm_before, grad/norm_after, grad/clip_frac, grad/grad_norm/<group>, ...
    sample         text sample/<prefix>
    test           test/loss, test/ppl, test/bpc
    baseline       baseline/val_loss, baseline/val_ppl (at step 0)
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from rnnlab.errors import RnnlabError
from rnnlab.train.metrics import finite

LOG_DIR = "tensorboard"  # inside the run directory
INSTALL_HINT = 'pip install "rnnlab[tensorboard]"'
_SCALARS = {  # event -> the record keys drawn as scalars (grad records: every number but the step)
    "train": ("loss", "ppl", "bpc", "lr", "chars_per_s"),
    "val": ("loss", "ppl", "bpc"),
    "test": ("loss", "ppl", "bpc"),
    "baseline": ("val_loss", "val_ppl", "test_loss", "test_ppl"),
}


def require_tensorboard() -> None:
    """Check, before a run starts, that ``--tensorboard`` can work.

    Raises:
        RnnlabError: tensorboard is not installed (the message says how to install it).
    """
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError as e:
        raise RnnlabError(f"--tensorboard needs the tensorboard package: {INSTALL_HINT}") from e


def open_tensorboard(run_path: str | Path, model: nn.Module, purge_step: int | None = None):
    """The one place a run's SummaryWriter is made (gate it here, e.g. rank 0 only in distributed runs).

    Args:
        run_path: the run directory; events go to ``run_path/tensorboard``.
        model: whose parameters the weight histograms show.
        purge_step: on resume, the checkpoint's step: TensorBoard hides the events an interrupted run
            wrote after it, which the resumed run writes again.

    Returns:
        a :class:`TensorBoardSink` for the Reporter.
    """
    require_tensorboard()
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(Path(run_path) / LOG_DIR), purge_step=purge_step)
    return TensorBoardSink(writer, model)


class TensorBoardSink:
    """Turns Reporter records into TensorBoard scalars, weight histograms and text.

    Args:
        writer: a ``torch.utils.tensorboard.SummaryWriter``.
        model: whose ``named_parameters()`` become histograms at each validation.
    """

    def __init__(self, writer, model: nn.Module):
        self.writer, self.model = writer, model

    def write(self, event: str, values: dict) -> None:
        step = values.get("step") or 0
        if event == "grad":
            keys = [k for k in values if k not in ("step", "dldh")]
        else:
            keys = list(_SCALARS.get(event, ()))
            if event == "train":
                keys += [k for k in values if k.startswith("penalty_")]
        for key in keys:
            value = finite(values.get(key))
            if value is not None:
                self.writer.add_scalar(f"{event}/{key}", value, step)
        if event == "val":
            for name, param in self.model.named_parameters():
                self.writer.add_histogram(f"weights/{name}", param.detach().float().cpu(), step)
        elif event == "sample":
            tag = f"sample/{values.get('prefix') or 'no prefix'}"
            # TensorBoard renders text as markdown: a code block keeps the sample's spaces and newlines.
            self.writer.add_text(tag, "```\n" + str(values.get("text", "")) + "\n```", step)

    def close(self) -> None:
        self.writer.close()
