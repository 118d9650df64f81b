"""LanguageModel: ids -> encoder (one-hot or embedding) -> recurrent stack -> dropout -> decoder -> logits."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rnnlab.config import ModelConfig
from rnnlab.errors import RnnlabError
from rnnlab.nn import (
    Dropout,
    LockedDropout,
    State,
    WeightDrop,
    embedding_dropout,
    recurrent_layer,
    zero_state,
)

BIDIRECTIONAL_REFUSAL = (
    "a bidirectional recurrent layer cannot be a next-character language model: its backward direction "
    "reads the very character it must predict, so the training loss collapses to near zero and samples "
    "are garbage (rnnlab experiment bidirectional-leak shows it); use a unidirectional --cell"
)


@dataclass
class LMOutput:
    """What :meth:`LanguageModel.forward` returns, whatever the cell.

    Attributes:
        logits: ``(B, T, V)`` next-token scores.
        state: the recurrent state after the last step (carry it to continue the text).
        outputs: ``(B, T, H)`` the top recurrent layer's outputs before dropout (for AR/TAR and the cache).
    """

    logits: torch.Tensor
    state: State
    outputs: torch.Tensor


class LanguageModel(nn.Module):
    """A recurrent character-level language model.

    ``ids (B, T) -> encoder -> RNN/GRU/LSTM stack (T, B, H) -> dropout -> Linear(H, V) -> logits (B, T, V)``

    Args:
        vocab_size: ``V``.
        cell: ``"rnn"`` (tanh), ``"gru"`` or ``"lstm"``.
        impl: ``"torch"`` uses torch.nn's recurrent layers; ``"scratch"`` rnnlab.nn's, written from the
            gate equations. Both have the same parameters, so their state_dicts are interchangeable.
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
    ):
        super().__init__()
        if bidirectional:
            raise RnnlabError(BIDIRECTIONAL_REFUSAL)
        if encoder != "embedding" and (embedding_dropout or input_dropout):
            raise RnnlabError("--embedding-dropout and --input-dropout need --encoder embedding")
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
        rnn = layer(input_size, hidden_size, num_layers, dropout=dropout if num_layers > 1 else 0.0, **kwargs)
        self.rnn = WeightDrop(rnn, p=weight_drop) if weight_drop > 0 else rnn
        drop = LockedDropout if variational else Dropout
        self.embedding_dropout = embedding_dropout
        self.input_drop = drop(input_dropout)
        self.drop = drop(dropout)
        self.decoder = nn.Linear(hidden_size, vocab_size)
        if tie_weights:
            self.decoder.weight = self.embedding.weight

    @classmethod
    def from_config(cls, cfg: ModelConfig, vocab_size: int) -> LanguageModel:
        return cls(
            vocab_size,
            cell=cfg.cell,
            impl=cfg.impl,
            hidden_size=cfg.hidden_size,
            num_layers=cfg.num_layers,
            dropout=cfg.dropout,
            encoder=cfg.encoder,
            embedding_dim=cfg.embedding_dim,
            tie_weights=cfg.tie_weights,
            bidirectional=cfg.bidirectional,
            embedding_dropout=cfg.embedding_dropout,
            input_dropout=cfg.input_dropout,
            weight_drop=cfg.weight_drop,
            variational=cfg.variational,
        )

    def init_state(self, batch_size: int) -> State:
        """The zero start state for ``batch_size`` rows."""
        return zero_state(self.rnn, batch_size)

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

    def forward(self, ids: torch.Tensor, state: State | None = None) -> LMOutput:
        """Score the next token at every position.

        Args:
            ids: ``(B, T)`` int64 token ids.
            state: the state to start from (``None``: zeros).

        Returns:
            :class:`LMOutput` with ``(B, T, V)`` logits.
        """
        x = self.encode(ids.t())  # (T, B, E) or (T, B) ids; time-major: the recurrence walks dim 0
        output, state = self.rnn(x, state)  # (T, B, H)
        logits = self.decoder(self.drop(output).transpose(0, 1))  # (B, T, V)
        return LMOutput(logits, state, output.transpose(0, 1))
