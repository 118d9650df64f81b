"""LanguageModel: ids -> encoder (one-hot or embedding) -> recurrent stack -> dropout -> decoder -> logits,
optionally a residual over an n-gram's log-probabilities."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rnnlab.config import MIN_BLOCK_PARTS, MIN_CELLS, NGRAM_GATES, ModelConfig, ngram_gate
from rnnlab.errors import RnnlabError
from rnnlab.nn import (
    DenseKneserNey,
    Dropout,
    FoldKneserNey,
    LockedDropout,
    State,
    WeightDrop,
    embedding_dropout,
    recurrent_layer,
    state_from_tensors,
    state_tensors,
    zero_state,
)

BIDIRECTIONAL_REFUSAL = (
    "a bidirectional recurrent layer cannot be a next-character language model: its backward direction "
    "reads the very character it must predict, so the training loss collapses to near zero and samples "
    "are garbage (rnnlab experiment bidirectional-leak shows it); use a unidirectional --cell"
)

# The constructor's arguments that ModelConfig holds under the same name.
_CONFIG_FIELDS = ("cell", "impl", "hidden_size", "num_layers", "dropout", "encoder", "embedding_dim",
                  "tie_weights", "bidirectional", "embedding_dropout", "input_dropout", "weight_drop",
                  "variational", "min_block")  # fmt: skip


@dataclass
class LMOutput:
    """What :meth:`LanguageModel.forward` returns, whatever the cell.

    Attributes:
        logits: ``(B, T, V)`` next-token scores.
        state: the recurrent state after the last step (carry it to continue the text).
        outputs: ``(B, T, H)`` the top recurrent layer's outputs before dropout (for AR/TAR and the cache).
        prior: ``(B, T, V)`` the n-gram's log-probabilities (a residual model), else None.
        network: ``(B, T, V)`` the network's logits alone, before the n-gram's weighted log-probabilities
            are added (a residual model), else None.
    """

    logits: torch.Tensor
    state: State
    outputs: torch.Tensor
    prior: torch.Tensor | None = None
    network: torch.Tensor | None = None


class LanguageModel(nn.Module):
    """A recurrent character-level language model.

    ``ids (B, T) -> encoder -> RNN/GRU/LSTM stack (T, B, H) -> dropout -> Linear(H, V) -> logits (B, T, V)``

    Args:
        vocab_size: ``V``.
        cell: ``"rnn"`` (tanh), ``"gru"``, ``"lstm"``, or ``"mingru"`` / ``"minlstm"`` (Feng et al.
            2024, in their block: :class:`rnnlab.nn.MinBlockStack`; ``dropout`` then drops each
            block's branches when stacked, and ``weight_drop`` is refused: there is no hidden weight).
        impl: ``"torch"`` uses torch.nn's recurrent layers; ``"scratch"`` rnnlab.nn's, written from the
            gate equations. Both have the same parameters, so their state_dicts are interchangeable.
            minGRU and minLSTM exist only in rnnlab.nn, whatever ``impl`` says.
        hidden_size, num_layers: the recurrent stack.
        dropout: between recurrent layers and on the top layer's output (Zaremba et al. 2014).
        encoder: ``"embedding"`` (a learnt ``embedding_dim``-wide vector per id) or ``"onehot"`` (the
            notes' input: the first layer reads ``V``-wide one-hot vectors; done as a gather of the
            input weight's columns, which equals ``one_hot(x) @ W_ih^T`` without the ``V``-wide matmul).
        embedding_dim: width of the embedding.
        tie_weights: share the embedding with the decoder (Press & Wolf 2017; Inan et al. 2017).
        bidirectional: always refused, see :data:`BIDIRECTIONAL_REFUSAL`.
        embedding_dropout: drop whole characters from the embedding matrix (Gal & Ghahramani 2016).
        input_dropout: dropout on the recurrent stack's input (the embeddings).
        weight_drop: DropConnect on the hidden-to-hidden weights (Wan et al. 2013; Merity et al. 2018).
        variational: one dropout mask per sequence for the input and output dropout, shared by all time
            steps (locked dropout, Gal & Ghahramani 2016) instead of a fresh mask per step.
        ngram: a Kneser-Ney model to learn the residual of (Li et al. 2022, "Residual learning of
            neural text generation with n-gram language model"): ``logits = decoder(h) + (1 + g(h)) ·
            log p_KN(. | context)``, where ``g`` (a linear read of the state) lets the network trust
            the counts more or less at each position: sharpen them where the context is one the
            counts know well, flatten them where they guess. Decoder and ``g`` start at zero, so the
            untrained model scores exactly the n-gram's loss. The state then also carries the last
            ``n − 2`` ids (the n-gram's context across windows); the tables are not parameters and
            never enter the state_dict.
        leave_one_out: in training mode with targets, score each position with its own event left out
            of the n-gram's counts (for counts made from the very text trained on: else the n-gram is
            over-confident there, and the network learns a residual that does not hold on new text).
        min_block: a min cell's block parts, some of ``"conv,mlp,norm"``, or ``"none"`` (the cell alone,
            stacked): :class:`rnnlab.nn.MinBlockStack`'s switches.
        ngram_gate: ``"one"`` weight on the n-gram, or one per n-gram order: see :meth:`_gate_ngram`.
    """

    def __init__(
        self,
        vocab_size: int,
        cell: str = "lstm",
        impl: str = "torch",
        hidden_size: int = 256,
        num_layers: int = 1,
        dropout: float = 0.0,
        encoder: str = "embedding",
        embedding_dim: int = 128,
        tie_weights: bool = False,
        bidirectional: bool = False,
        embedding_dropout: float = 0.0,
        input_dropout: float = 0.0,
        weight_drop: float = 0.0,
        variational: bool = False,
        ngram: DenseKneserNey | None = None,
        leave_one_out: bool = False,
        min_block: str = "conv,mlp,norm",
        ngram_gate: str = "one",
    ):
        super().__init__()
        if bidirectional:
            raise RnnlabError(BIDIRECTIONAL_REFUSAL)
        if encoder != "embedding" and (embedding_dropout or input_dropout):
            raise RnnlabError("--embedding-dropout and --input-dropout need --encoder embedding")
        if tie_weights and ngram is not None:
            raise RnnlabError("--tie-weights needs --ngram off: the residual decoder starts at zero")
        if tie_weights and (encoder != "embedding" or embedding_dim != hidden_size):
            raise RnnlabError(
                "--tie-weights needs --encoder embedding with --embedding-dim equal to --hidden-size "
                f"(got {encoder}, {embedding_dim} vs {hidden_size})"
            )
        self.vocab_size = vocab_size
        self.impl = impl
        self.embedding = nn.Embedding(vocab_size, embedding_dim) if encoder == "embedding" else None
        input_size = embedding_dim if encoder == "embedding" else vocab_size
        layer = recurrent_layer(impl, cell)
        kwargs = {"nonlinearity": "tanh"} if cell == "rnn" else {}
        if cell in MIN_CELLS:
            kwargs = {part: part in min_block.split(",") for part in MIN_BLOCK_PARTS}
        rnn = layer(input_size, hidden_size, num_layers, dropout=dropout if num_layers > 1 else 0.0, **kwargs)
        self.rnn = WeightDrop(rnn, p=weight_drop) if weight_drop > 0 else rnn
        drop = LockedDropout if variational else Dropout
        self.embedding_dropout = embedding_dropout
        self.input_drop = drop(input_dropout)
        self.drop = drop(dropout)
        self.decoder = nn.Linear(hidden_size, vocab_size)
        if tie_weights:
            self.decoder.weight = self.embedding.weight
        self.ngram, self.leave_one_out = ngram, leave_one_out
        self.folds: FoldKneserNey | None = None  # see cross_fit
        if ngram is not None:
            self._gate_ngram(ngram, hidden_size, ngram_gate)

    def _gate_ngram(self, ngram: DenseKneserNey, hidden_size: int, gate: str) -> None:
        """The weights on the n-gram, read from the state: ``"one"``, ``1 + g(h)`` (tiny Shakespeare
        after 1,134 steps: val 1.378 against a plain sum's 1.429); ``"orders"``, ``Σ_k (δ_kn + g_k(h))
        · log P_k`` with ``P_k`` Kneser-Ney's interpolation up to order ``k``
        (:meth:`DenseKneserNey.probs_by_order`): where to trust long contexts over short ones (90/10:
        1.373 after 900 steps against one weight's 1.387 after 1,100, about as long), for ``n`` times
        the n-gram's work. They start at zero with the decoder: step 0 is the n-gram exactly."""
        if ngram.vocab_size != self.vocab_size:
            raise RnnlabError(f"the n-gram counts {ngram.vocab_size} ids, the model {self.vocab_size}")
        if gate not in NGRAM_GATES:
            raise RnnlabError(f"ngram_gate must be one of {', '.join(NGRAM_GATES)}; got {gate!r}")
        self.by_order = gate == "orders"
        gates = ngram.order if self.by_order else 1
        self.prior_gate = nn.Linear(hidden_size, gates)
        for zero in (self.decoder.weight, self.decoder.bias, *self.prior_gate.parameters()):
            nn.init.zeros_(zero)
        base = torch.zeros(gates)
        base[-1] = 1.0  # the full model's weight 1; the lower orders' 0
        self.register_buffer("gate_base", base, persistent=False)

    @classmethod
    def from_config(
        cls,
        cfg: ModelConfig,
        vocab_size: int,
        ngram: DenseKneserNey | None = None,
        leave_one_out: bool = False,
    ) -> LanguageModel:
        """The model ``cfg`` describes; ``ngram`` (and ``leave_one_out``) when it is a residual one."""
        if (cfg.ngram == "residual") != (ngram is not None):
            raise ValueError(f"--ngram {cfg.ngram} with an n-gram {'given' if ngram else 'missing'}")
        fields = {name: getattr(cfg, name) for name in _CONFIG_FIELDS}
        gate = ngram_gate(cfg, vocab_size)
        return cls(vocab_size, **fields, ngram=ngram, leave_one_out=leave_one_out, ngram_gate=gate)

    def cross_fit(self, train_ids, folds: int, workers: int = 2) -> None:
        """Score training batches that say where they start with ``folds`` n-grams, each counted on
        ``train_ids`` without one fold (:class:`rnnlab.nn.ngram.FoldKneserNey`), in place of
        leave-one-out. Evaluation and generation keep the n-gram of the whole training text."""
        self.folds = FoldKneserNey(train_ids, self.vocab_size, self.ngram.order, folds, workers)

    def init_state(self, batch_size: int) -> State:
        """The start state for ``batch_size`` rows: zeros (and, for a residual model, no history)."""
        return self._joined(zero_state(self.rnn, batch_size), None, batch_size)

    @property
    def history_length(self) -> int:
        """How many past ids the state carries for the n-gram (0 without one)."""
        return 0 if self.ngram is None else max(self.ngram.context_length - 1, 0)

    def _split(self, state: State | None) -> tuple[State | None, torch.Tensor | None]:
        """``(the recurrent layers' state, the n-gram's history (1, B, n-2) or None)``."""
        if self.ngram is None or state is None:
            return state, None
        parts = state_tensors(state)
        return state_from_tensors(parts[:-1]), parts[-1]

    def _joined(self, rnn_state: State, history: torch.Tensor | None, batch_size: int) -> State:
        if self.ngram is None:
            return rnn_state
        if history is None:  # before the stream's start: -1, "no id"
            device = state_tensors(rnn_state)[0].device
            history = torch.full((1, batch_size, self.history_length), -1, dtype=torch.long, device=device)
        return (*state_tensors(rnn_state), history)

    def encode(self, ids: torch.Tensor) -> torch.Tensor:
        """``(T, B)`` ids -> the recurrent stack's input ``(T, B, E)``.

        One-hot with the scratch layers passes the ids through: those layers gather columns of
        ``weight_ih_l0`` directly. torch.nn's layers only take vectors, so there the one-hot matrix is
        materialised (the notes' way, and as slow as theirs).
        """
        if self.embedding is not None:
            weight = self.embedding.weight
            if self.training and self.embedding_dropout > 0:
                weight = embedding_dropout(weight, self.embedding_dropout)
            return self.input_drop(F.embedding(ids, weight))  # (T, B, E)
        if self.impl == "scratch":
            return ids
        return F.one_hot(ids, self.vocab_size).to(self.decoder.weight.dtype)  # (T, B, V)

    def forward(
        self,
        ids: torch.Tensor,
        state: State | None = None,
        targets: torch.Tensor | None = None,
        starts: torch.Tensor | None = None,
    ) -> LMOutput:
        """Score the next token at every position.

        Args:
            ids: ``(B, T)`` int64 token ids.
            state: the state to start from (``None``: zeros).
            targets: ``(B, T)`` the next ids, in training: a residual model with ``leave_one_out``
                then scores each position without its own event in the n-gram's counts. Ignored
                otherwise (and by a plain model).
            starts: ``(B,)`` where each row of ``ids`` starts in the training stream, in training: a
                cross-fitted residual model (:meth:`cross_fit`) then scores each position with the
                n-gram counted without its fold. Ignored otherwise.

        Returns:
            :class:`LMOutput` with ``(B, T, V)`` logits.
        """
        rnn_state, history = self._split(state)
        x = self.encode(ids.t())  # (T, B, E) or (T, B) ids; time-major: the recurrence walks dim 0
        output, rnn_state = self.rnn(x, rnn_state)  # (T, B, H)
        dropped = self.drop(output).transpose(0, 1)  # (B, T, H)
        logits = self.decoder(dropped)  # (B, T, V)
        if self.ngram is None:
            return LMOutput(logits, rnn_state, output.transpose(0, 1))
        if history is None:
            history = self._split(self.init_state(ids.shape[0]))[1].to(ids.device)
        prior = self._prior(ids, history[0], targets, starts).to(logits.device)  # (B, T, [n,] V)
        state = self._joined(rnn_state, self._history_after(history, ids), ids.shape[0])
        weight = self.gate_base + self.prior_gate(dropped).float()  # (B, T, 1 or n)
        if self.by_order:
            term = torch.einsum("btk,btkv->btv", weight, prior)
            prior = prior[:, :, -1]
        else:
            term = weight * prior
        logits = logits.float()
        return LMOutput(logits + term, state, output.transpose(0, 1), prior, logits)

    def read(self, ids: torch.Tensor, state: State | None = None) -> State:
        """The state after reading ``(B, T)`` ids from ``state`` (None: zeros), without scoring them:
        :meth:`forward`'s state, at the cost of the recurrent layers alone (no decoder, no n-gram)."""
        rnn_state, history = self._split(self.init_state(ids.shape[0]) if state is None else state)
        _, rnn_state = self.rnn(self.encode(ids.t()), rnn_state)
        if self.ngram is None:
            return rnn_state
        return self._joined(rnn_state, self._history_after(history.to(ids.device), ids), ids.shape[0])

    def _history_after(self, history: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """The n-gram's history ``(1, B, n-2)`` once ``ids`` have been read after ``history``."""
        seen = torch.cat([history[0], ids], dim=1)  # (B, n-2 + T)
        return seen[:, seen.shape[1] - self.history_length :][None]  # the last n-2 ids

    def _prior(self, ids, history, targets, starts) -> torch.Tensor:
        """The n-gram's ``(B, T, [n,] V)`` log-probabilities (every order's when gated by order):
        cross-fitted or leave-one-out on training batches (:meth:`forward`), else all counts'."""
        if self.training and self.folds is not None and starts is not None:
            return self.folds.log_probs(ids, starts, by_order=self.by_order)
        left_out = targets if self.training and self.leave_one_out else None
        return self.ngram.log_probs(ids, history, left_out, by_order=self.by_order)
