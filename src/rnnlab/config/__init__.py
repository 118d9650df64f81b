"""Run configuration: one frozen dataclass per component, composed into TrainConfig.

Field names double as the command line's flags (``hidden_size`` is ``--hidden-size``) and as the keys
of a TOML config file, so a run can be described in any of the three ways and written back to JSON.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields

from rnnlab.config.ngram import (
    FOLD_TOKENS,
    MAX_NGRAM_ORDER,
    MIN_NGRAM_TOKENS,
    NGRAM_GATES,
    NGRAM_TOKENS,
    NGRAM_TOKENS_PER_SECOND,
    ORDER_GATE_VOCAB,
    cross_fitted,
    ngram_gate,
    ngram_tokens,
)
from rnnlab.config.values import build, check_choice, check_number, flag_name, load_toml
from rnnlab.errors import RnnlabError

CELLS = ("rnn", "gru", "lstm", "mingru", "minlstm")
MIN_CELLS = ("mingru", "minlstm")  # Feng et al. 2024: no hidden-to-hidden weight, a parallel scan
MIN_BLOCK_PARTS = ("conv", "mlp", "norm")  # around a min cell: rnnlab.nn.MinBlockStack's switches
IMPLS = ("torch", "scratch")
ENCODERS = ("embedding", "onehot")
OPTIMIZERS = ("adam", "adamw", "sgd")
SAMPLINGS = ("consecutive", "random")
PRECISIONS = ("auto", "fp32", "bf16")  # auto: bf16 where the hardware computes it natively
SCHEDULES = ("auto", "deadline", "plateau", "constant")  # rnnlab.train.schedule
NGRAMS = ("residual", "off")  # residual: the network learns the residual of a Kneser-Ney n-gram
TOKENS = ("char", "word")  # what a token is: a character, or a word (rnnlab.data.words)


@dataclass(frozen=True)
class DataConfig:
    corpus: tuple[str, ...] = ()  # no file: the built-in corpus, so `rnnlab train` works anywhere
    builtin: str = "python-docs"
    split: tuple[float, ...] = (0.9, 0.05, 0.05)  # contiguous train/val/test
    min_freq: int = 1  # rarer characters become <unk>
    tokens: str = "char"  # "word": words, punctuation marks and newlines (rnnlab.data.words)
    encoding: str = "utf-8"
    errors: str = "strict"  # refuse undecodable bytes rather than train on mojibake
    sampling: str = "consecutive"  # carries the state across batches: context beyond one window
    batch_size: int = 32
    num_steps: int = 64  # backpropagation-through-time window
    shrink_to_fit: bool = False  # a corpus too short for one batch is an error unless asked

    def __post_init__(self):
        check_choice("sampling", self.sampling, SAMPLINGS)
        check_choice("tokens", self.tokens, TOKENS)
        check_number("min_freq", self.min_freq, 1)
        check_number("batch_size", self.batch_size, 1)
        check_number("num_steps", self.num_steps, 1)


@dataclass(frozen=True)
class ModelConfig:
    cell: str = "lstm"  # gated: keeps gradients alive over long windows
    impl: str = "torch"  # torch.nn's kernels; "scratch" runs rnnlab.nn's own layers
    hidden_size: int = 256
    num_layers: int = 1  # in a one-minute CPU budget one wide layer beats two (measured: docs/design.md)
    dropout: float = 0.0  # between layers and before the decoder (Zaremba et al. 2014)
    encoder: str = "embedding"  # "onehot" is the notes' input, done as a row gather
    embedding_dim: int = 128
    tie_weights: bool = False  # decoder shares the embedding (needs embedding_dim == hidden_size)
    bidirectional: bool = False  # refused: a bidirectional LM reads the answer
    embedding_dropout: float = 0.0  # AWD-LSTM's regularisers, off by default (Merity et al. 2018)
    input_dropout: float = 0.0
    weight_drop: float = 0.0
    variational: bool = False  # input/output dropout masks shared over time (Gal & Ghahramani 2016)
    min_block: str = "conv,mlp,norm"  # the parts of a mingru/minlstm block, comma-separated, or "none"
    # Counting beats a minute of learning on every corpus measured; learning the counts' residual
    # starts where counting ends (Li et al. 2022). "off": the network alone.
    ngram: str = "residual"
    ngram_order: int = 0  # 0: the order (1..7) that scores best on validation
    ngram_tokens: int = 0  # count at most this many training tokens; 0: by the budget (ngram_tokens())
    # Training positions see the n-gram as new text would: scored by counts made without their fold of
    # the training text (cross-fitting, rnnlab.nn.ngram.folds), in the first ngram_fold_passes passes
    # (0: all); later passes and 0 folds: leave-one-out counts. Up to FOLD_TOKENS training tokens; above,
    # counting the folds would cost more than it gives.
    ngram_folds: int = 5
    # A minute's few passes: the network has not learnt the text by heart, and the cross-fitted counts
    # still match it (built-in corpus, 60 s: 1.129/1.139 against 1.150-1.156 with the first pass only).
    # Minutes of passes (the long preset: 1) over-fit against them.
    ngram_fold_passes: int = 0
    ngram_gate: str = "auto"  # NGRAM_GATES, or auto: "orders" up to ORDER_GATE_VOCAB ids, else "one"

    def __post_init__(self):
        check_choice("cell", self.cell, CELLS)
        check_choice("ngram", self.ngram, NGRAMS)
        check_number("ngram_order", self.ngram_order, 0, MAX_NGRAM_ORDER)
        check_number("ngram_tokens", self.ngram_tokens, 0)
        check_number("ngram_folds", self.ngram_folds, 0)
        check_number("ngram_fold_passes", self.ngram_fold_passes, 0)
        check_choice("ngram_gate", self.ngram_gate, ("auto", *NGRAM_GATES))
        if self.ngram_folds == 1:
            raise RnnlabError("--ngram-folds must be 0 (leave-one-out) or at least 2; got 1")
        check_choice("impl", self.impl, IMPLS)
        check_choice("encoder", self.encoder, ENCODERS)
        check_number("hidden_size", self.hidden_size, 1)
        check_number("num_layers", self.num_layers, 1)
        check_number("dropout", self.dropout, 0, 1)
        check_number("embedding_dim", self.embedding_dim, 1)
        for name in ("embedding_dropout", "input_dropout", "weight_drop"):
            check_number(name, getattr(self, name), 0, 1)
        if not set(self.min_block.split(",")) <= {*MIN_BLOCK_PARTS, "none"}:
            raise RnnlabError(f"--min-block takes some of conv,mlp,norm or none; got {self.min_block!r}")
        if self.cell in MIN_CELLS and self.weight_drop > 0:
            raise RnnlabError(f"--weight-drop drops hidden-to-hidden weights; --cell {self.cell} has none")


@dataclass(frozen=True)
class OptimConfig:
    optimizer: str = "adam"
    # With the residual n-gram and the deadline schedule, 2.5e-3 and 5e-3 tie within a seed's noise
    # after a minute (tiny Shakespeare 1.3758 vs 1.3770); 2.5e-3 was the steadier on two corpora.
    lr: float = 2.5e-3
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only
    clip_norm: float | None = 1.0  # global-norm clipping (Pascanu et al. 2013); None turns it off
    clip_value: float | None = None
    # auto: decay to zero at the deadline when the run has a budget (measured: a 60 s run ends lower
    # than with a constant or plateau-lowered rate), else lower on plateaus (rnnlab.train.schedule)
    schedule: str = "auto"
    warmup: float = 0.02  # share of the budget over which the deadline schedule warms up
    lr_factor: float = 0.5  # plateau: multiply the LR by this when validation stalls
    lr_patience: int = 2  # plateau: evaluations without improvement before the LR drops
    ema: float = 0.0  # decay of the weights' moving average that validation scores (0: none)

    def __post_init__(self):
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_number("lr", self.lr, 0, low_open=True)
        check_number("weight_decay", self.weight_decay, 0)
        check_number("momentum", self.momentum, 0, 1)
        check_number("clip_norm", self.clip_norm, 0, low_open=True, allow_none=True)
        check_number("clip_value", self.clip_value, 0, low_open=True, allow_none=True)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_number("warmup", self.warmup, 0, 1)
        if self.warmup >= 1:
            raise RnnlabError(f"--warmup must be below 1 (a share of the budget); got {self.warmup}")
        check_number("lr_factor", self.lr_factor, 0, 1, low_open=True)
        check_number("lr_patience", self.lr_patience, 0)
        check_number("ema", self.ema, 0, 1)
        if self.ema >= 1:
            raise RnnlabError(f"--ema must be below 1 (the average's decay per step); got {self.ema}")


@dataclass(frozen=True)
class RegConfig:
    """Penalties added to the loss (each logged as its own term)."""

    l1: float = 0.0  # coefficient of sum |w| over weight matrices
    l2: float = 0.0  # coefficient of sum w^2 (coupled decay; see --weight-decay for AdamW's decoupled one)
    elastic_net: tuple[float, ...] = ()  # C,RATIO: C * (RATIO * L1 + (1 - RATIO) * L2)
    ar: float = 0.0  # activation regularisation, alpha * mean(h^2) (Merity et al. 2018)
    tar: float = 0.0  # temporal activation regularisation, beta * mean((h_t - h_{t-1})^2)

    def __post_init__(self):
        for name in ("l1", "l2", "ar", "tar"):
            check_number(name, getattr(self, name), 0)
        if self.elastic_net:
            if len(self.elastic_net) != 2:
                raise RnnlabError(f"--elastic-net takes C,RATIO; got {self.elastic_net}")
            check_number("elastic_net", self.elastic_net[0], 0)
            check_number("elastic_net", self.elastic_net[1], 0, 1)


@dataclass(frozen=True)
class RunConfig:
    epochs: int | None = None  # None: until --max-time, --max-steps or early stopping
    max_steps: int | None = None
    max_time: float | None = 60.0  # seconds of training; about a minute gives readable text
    seed: int = 0
    eval_every: int = 200  # steps between validations (also at each epoch end)
    patience: int = 5  # validations without improvement before early stopping
    prefix: tuple[str, ...] = ()  # samples printed at each validation; empty: start anywhere
    sample_length: int = 200
    device: str = "auto"
    precision: str = "auto"  # resolved (rnnlab.device.resolve_precision) and recorded in config.json
    baseline: bool = True  # score the n-gram baseline on the same split at the start
    adaptive_eval: bool = False  # at the end: cache + dynamic evaluation + n-gram mixing, tuned on val
    monitor_every: int = 50  # gradient readings every N steps (0: off); ~2% of the steps' time
    eval_tokens: int = 250_000  # validation and test read at most this many tokens of their split (0: all)
    tensorboard: bool = False  # also log to RUN_DIR/tensorboard (needs the tensorboard extra)
    preset: str = "auto"  # a named recipe (rnnlab.presets); auto: by corpus size
    out: str | None = None  # run directory; default runs/<corpus>-<time>

    def __post_init__(self):
        check_number("epochs", self.epochs, 1, allow_none=True)
        check_number("max_steps", self.max_steps, 1, allow_none=True)
        check_number("max_time", self.max_time, 0, low_open=True, allow_none=True)
        check_number("seed", self.seed, 0)
        check_number("eval_every", self.eval_every, 1)
        check_number("monitor_every", self.monitor_every, 0)
        check_number("eval_tokens", self.eval_tokens, 0)
        check_number("patience", self.patience, 1)
        check_number("sample_length", self.sample_length, 0)
        check_choice("precision", self.precision, PRECISIONS)


@dataclass(frozen=True)
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    reg: RegConfig = field(default_factory=RegConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """Rebuild from :meth:`to_dict` output (nested by component), validating every value."""
        if not isinstance(data, dict):
            raise RnnlabError("config must be a JSON object")
        parts = {}
        for f in fields(cls):
            section = data.get(f.name, {})
            if not isinstance(section, dict):
                raise RnnlabError(f"config section {f.name!r} must be an object")
            parts[f.name] = build(_SECTIONS[f.name], section)
        return cls(**parts)

    @classmethod
    def from_flat(cls, values: dict, base: TrainConfig | None = None) -> TrainConfig:
        """Apply flat ``{field: value}`` pairs (flags or TOML keys, dashes or underscores) on ``base``."""
        base = base or cls()
        values = {k.replace("-", "_"): v for k, v in values.items()}
        unknown = sorted(set(values) - set(FIELD_SECTION))
        if unknown:
            raise RnnlabError(f"unknown config keys: {', '.join(unknown)}; see rnnlab train --help")
        nested = base.to_dict()
        for key, value in values.items():
            nested[FIELD_SECTION[key]][key] = value
        return cls.from_dict(nested)


_SECTIONS = {
    "data": DataConfig,
    "model": ModelConfig,
    "optim": OptimConfig,
    "reg": RegConfig,
    "run": RunConfig,
}
FIELD_SECTION = {f.name: section for section, c in _SECTIONS.items() for f in fields(c)}

__all__ = [
    "CELLS",
    "ENCODERS",
    "FIELD_SECTION",
    "FOLD_TOKENS",
    "IMPLS",
    "MAX_NGRAM_ORDER",
    "MIN_BLOCK_PARTS",
    "MIN_CELLS",
    "MIN_NGRAM_TOKENS",
    "NGRAMS",
    "NGRAM_GATES",
    "NGRAM_TOKENS",
    "NGRAM_TOKENS_PER_SECOND",
    "OPTIMIZERS",
    "ORDER_GATE_VOCAB",
    "PRECISIONS",
    "SAMPLINGS",
    "SCHEDULES",
    "TOKENS",
    "DataConfig",
    "ModelConfig",
    "OptimConfig",
    "RegConfig",
    "RunConfig",
    "TrainConfig",
    "check_choice",
    "check_number",
    "cross_fitted",
    "flag_name",
    "load_toml",
    "ngram_gate",
    "ngram_tokens",
]
