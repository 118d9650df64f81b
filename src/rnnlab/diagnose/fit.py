"""Fit verdict: under-fitting, over-fitting, good fit or still improving, read from the loss curves.

It comes with its evidence and with the notes' remedies, ranked for the case and named as rnnlab flags.

The notes' definitions (part 一): under-fitting is "training and validation error both large" (high
bias); over-fitting is "training error far below the validation error" (high variance), typically from
training too long on too little data. The rules below turn those words into thresholds, tried in order;
all losses are in nats, "relative" means divided by the validation loss. The train loss is what the
loop logs: the mean over the steps since the previous evaluation, in training mode (dropout on).

1. **over-fitting** when, after the validation minimum at step ``s``, there are at least
   :data:`OVERFIT_EVALS` evaluations, the last validation loss is at least :data:`OVERFIT_RISE` above
   the minimum, and the train loss kept falling after ``s`` (else it is instability, not over-fitting).
   Also when validation has not improved for :data:`TREND_EVALS` evaluations while the relative gap
   ``(val − train) / val`` is at least :data:`GAP_WIDE` and still widening (by at least
   :data:`GAP_WIDENING` of val over the window). Over-fitting starts at ``s``.
2. **under-fitting** when the final train loss does not beat the n-gram ``baseline``'s validation loss
   (a model that cannot fit its own training text better than counting generalises is too weak); for
   a network over the n-gram (the "start" record's ``residual``), when its best validation loss does
   not (its train loss scores each position with its own event left out of the counts: a held-out
   reading, not a fit); with no baseline, when the best validation loss is still at least
   :data:`NEAR_UNIFORM` of ``ln V`` (the uniform guess), read from the "start" record's ``vocab_size``.
3. **still improving** when the validation loss fell by at least :data:`IMPROVING` (relative) over the
   last :data:`TREND_EVALS` evaluations, or there is only one evaluation.
4. **good fit** otherwise: validation has flattened without rising, and the model beats the baseline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rnnlab.errors import RnnlabError
from rnnlab.train.metrics import finite

UNDER_FITTING = "under-fitting"
OVER_FITTING = "over-fitting"
GOOD_FIT = "good fit"
STILL_IMPROVING = "still improving"

OVERFIT_RISE = 0.02  # val at the end ≥ 2% above its minimum: beyond evaluation noise on a few-k-char split
OVERFIT_EVALS = 2  # ...with at least two evaluations after the minimum (one bad evaluation is noise)
GAP_WIDE = 0.10  # (val - train) / val ≥ 10%: train fits the training text clearly better than new text
GAP_WIDENING = 0.01  # ...and grew by ≥ 1% of val over the window: smaller changes are dropout's noise
TREND_EVALS = 3  # window, in evaluations, for "still falling", "not improving" and the gap's trend
IMPROVING = 0.005  # val fell ≥ 0.5% over the window: more training still pays
NEAR_UNIFORM = 0.9  # without a baseline, best val ≥ 90% of ln V means almost nothing was learnt
HIGH_OOV = 0.01  # more than 1% <unk> in val: a floor on the loss that no model can remove


@dataclass(frozen=True)
class Remedy:
    """One thing to try: what it does, and the rnnlab flags that do it."""

    action: str
    flags: str


@dataclass(frozen=True)
class FitEvidence:
    """The numbers behind a verdict (losses in nats; ``None`` where the records do not say)."""

    evaluations: int
    final_step: int
    final_train_loss: float | None
    best_train_loss: float | None
    final_val_loss: float
    best_val_loss: float
    best_val_step: int
    gap: float | None  # final val - final train
    gap_trend: float | None  # change of the gap over the last TREND_EVALS evaluations; > 0 widening
    val_trend: float  # relative change of val over the last TREND_EVALS evaluations; < 0 falling
    baseline_val_loss: float | None
    beats_baseline: bool | None  # best val below the baseline's val loss
    oov_rate: float | None  # fraction of <unk> in the validation split
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class FitVerdict:
    """What :func:`fit_verdict` concludes; ``since_step`` is where over-fitting starts (else None)."""

    verdict: str
    since_step: int | None
    evidence: FitEvidence
    remedies: tuple[Remedy, ...]


MORE_CAPACITY = Remedy(
    "more capacity: wider or deeper recurrent layers", "--hidden-size 512 / --num-layers 2"
)
RICHER_FEATURES = Remedy(
    "richer input features: a wider learnt embedding", "--encoder embedding --embedding-dim 256"
)
LESS_REGULARISATION = Remedy(
    "less regularisation", "--dropout 0 --weight-decay 0 (and --l2 0, --weight-drop 0)"
)
TRAIN_LONGER = Remedy("train longer", "--max-time 600 (or --max-steps / --epochs)")
EARLY_STOPPING = Remedy(
    "early stopping: model.safetensors already holds the best-validation model; stop sooner next time",
    "--patience 2",
)
MORE_DATA = Remedy("more training text (the notes' first cause: too little data)", "more CORPUS files")
LESS_CAPACITY = Remedy("less capacity", "--hidden-size 128 / --num-layers 1 / --embedding-dim 64")
DROPOUT = Remedy("more dropout between layers and before the decoder (Zaremba et al. 2014)", "--dropout 0.3")
DECOUPLED_DECAY = Remedy(
    "decoupled weight decay (Loshchilov & Hutter 2019)", "--weight-decay 0.1 --optimizer adamw"
)
L2 = Remedy("an L2 penalty on the weight matrices in the loss", "--l2 1e-5")
WEIGHT_DROP = Remedy("DropConnect on the hidden-to-hidden weights (Merity et al. 2018)", "--weight-drop 0.5")
SCALE_BOTH = Remedy(
    "to go further, scale capacity and regularisation together", "--hidden-size 512 --dropout 0.3"
)

REMEDIES = {
    UNDER_FITTING: (MORE_CAPACITY, RICHER_FEATURES, LESS_REGULARISATION, TRAIN_LONGER),
    OVER_FITTING: (EARLY_STOPPING, MORE_DATA, LESS_CAPACITY, DROPOUT, DECOUPLED_DECAY, L2, WEIGHT_DROP),
    STILL_IMPROVING: (TRAIN_LONGER,),
    GOOD_FIT: (SCALE_BOTH,),
}


def _curves(records: list[dict]) -> tuple[list[int], list[float], list[float | None]]:
    """Steps, val losses and the train loss logged at the same step, in step order (last write wins)."""
    val: dict[int, float] = {}
    train: dict[int, float | None] = {}
    for r in records:
        if r.get("event") == "val" and finite(r.get("loss")) is not None:
            val[int(r["step"])] = finite(r["loss"])
        elif r.get("event") == "train":
            train[int(r["step"])] = finite(r.get("loss"))
    steps = sorted(val)
    return steps, [val[s] for s in steps], [train.get(s) for s in steps]


def fit_verdict(records: list[dict], baseline: float | None = None) -> FitVerdict:
    """Judge a run from its metrics.jsonl records (see the module docstring for the rules).

    Args:
        records: the run's records, as :func:`rnnlab.train.metrics.read_metrics` returns them; uses the
            "train" and "val" events (``step``, ``loss``) and the "start" event (``oov_rate``,
            ``vocab_size``).
        baseline: the validation loss (nats) of the best n-gram model on the same split
            (:func:`rnnlab.nn.ngram.select_order`), or None.

    Raises:
        RnnlabError: no validation record with a finite loss.
    """
    steps, val, train = _curves(records)
    if not steps:
        raise RnnlabError("metrics.jsonl has no validation loss yet; let the run reach its first evaluation")
    start = next((r for r in records if r.get("event") == "start"), {})
    n = len(steps)
    best = min(range(n), key=val.__getitem__)
    w = min(TREND_EVALS, n - 1)  # evaluations back from the last one
    gaps = [None if t is None else v - t for v, t in zip(val, train)]
    finite_train = [t for t in train if t is not None]
    oov = finite((start.get("oov_rate") or {}).get("val"))
    evidence = FitEvidence(
        evaluations=n,
        final_step=steps[-1],
        final_train_loss=train[-1],
        best_train_loss=min(finite_train) if finite_train else None,
        final_val_loss=val[-1],
        best_val_loss=val[best],
        best_val_step=steps[best],
        gap=gaps[-1],
        gap_trend=None if w == 0 or None in (gaps[-1], gaps[-1 - w]) else gaps[-1] - gaps[-1 - w],
        val_trend=(val[-1] - val[-1 - w]) / val[-1 - w] if w and val[-1 - w] else 0.0,
        baseline_val_loss=baseline,
        beats_baseline=None if baseline is None else val[best] < baseline,
        oov_rate=oov,
        notes=tuple(_notes(val, train, oov)),
    )
    verdict, since = _classify(evidence, train, best, start)
    remedies = REMEDIES[verdict]
    if verdict == UNDER_FITTING and evidence.val_trend <= -IMPROVING:
        remedies = (TRAIN_LONGER, *(r for r in remedies if r is not TRAIN_LONGER))  # still falling: first
    return FitVerdict(verdict, since, evidence, remedies)


def _train_fell_after(train: list[float | None], best: int) -> bool:
    """Whether the train loss at the end is below the first one logged at or after ``best`` (a model
    scored before its first step has none there)."""
    before = next((t for t in train[best:] if t is not None), None)
    after = train[-1]
    return before is not None and after is not None and after < before


def _classify(e: FitEvidence, train: list[float | None], best: int, start: dict) -> tuple[str, int | None]:
    evals_since_best = e.evaluations - 1 - best
    rose = evals_since_best >= OVERFIT_EVALS and e.final_val_loss >= e.best_val_loss * (1 + OVERFIT_RISE)
    stalled = evals_since_best >= TREND_EVALS
    widening = (e.gap_trend or 0) > GAP_WIDENING * e.final_val_loss
    wide = e.gap is not None and e.gap >= GAP_WIDE * e.final_val_loss and widening
    if (rose or (stalled and wide)) and _train_fell_after(train, best):
        return OVER_FITTING, e.best_val_step
    if e.baseline_val_loss is not None:
        reference = e.best_val_loss if start.get("residual") else e.final_train_loss
        if reference is not None and reference >= e.baseline_val_loss:
            return UNDER_FITTING, None
    else:
        vocab_size = finite(start.get("vocab_size"))
        if vocab_size and vocab_size > 1 and e.best_val_loss >= NEAR_UNIFORM * math.log(vocab_size):
            return UNDER_FITTING, None
    if e.evaluations == 1 or e.val_trend <= -IMPROVING:
        return STILL_IMPROVING, None
    return GOOD_FIT, None


def _notes(val: list[float], train: list[float | None], oov: float | None) -> list[str]:
    notes = []
    if len(val) == 1:
        notes.append("one evaluation only: no trend to read yet")
    finite = [t for t in train if t is not None]
    if train[-1] is not None and finite and train[-1] > min(finite) * (1 + OVERFIT_RISE):
        notes.append("the train loss rose from its minimum: training is unstable (try a lower --lr)")
    if train[-1] is not None and train[-1] > val[-1]:
        notes.append("train loss above val loss: usual with dropout, which is on in training only")
    if oov is not None and oov > HIGH_OOV:
        notes.append(
            f"{oov:.1%} of the validation characters are <unk>: a floor on the loss no model removes"
        )
    return notes


def render_text(verdict: FitVerdict) -> str:
    """A few lines for a person: the verdict, the evidence, the remedies in order."""
    e = verdict.evidence
    since = f" since step {verdict.since_step}" if verdict.since_step is not None else ""
    lines = [f"verdict: {verdict.verdict}{since}"]

    def fmt(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.4f}"

    lines.append(
        f"  val loss: final {fmt(e.final_val_loss)} at step {e.final_step}, "
        f"best {fmt(e.best_val_loss)} at step {e.best_val_step} ({e.evaluations} evaluations)"
    )
    lines.append(f"  train loss: final {fmt(e.final_train_loss)}, best {fmt(e.best_train_loss)}")
    trend = ""
    if e.gap_trend is not None:
        trend = f", {'widening' if e.gap_trend > 0 else 'narrowing'} by {abs(e.gap_trend):.4f}"
    window = min(TREND_EVALS, e.evaluations - 1)
    lines.append(
        f"  gap (val - train): {fmt(e.gap)}{trend}; val {e.val_trend:+.1%} over the last {window} evaluations"
    )
    if e.baseline_val_loss is not None:
        beats = "beats" if e.beats_baseline else "does not beat"
        lines.append(f"  n-gram baseline val loss {fmt(e.baseline_val_loss)}: the model {beats} it")
    if e.oov_rate is not None:
        lines.append(f"  OOV rate (val): {e.oov_rate:.2%}")
    lines.extend(f"  note: {note}" for note in e.notes)
    lines.append("remedies, most promising first:")
    lines.extend(f"  {i}. {r.action}: {r.flags}" for i, r in enumerate(verdict.remedies, 1))
    return "\n".join(lines)
