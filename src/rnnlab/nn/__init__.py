"""Building blocks with torch.nn's interface: recurrent cells and layers written from the gate equations,
the parallel-scan cells minGRU and minLSTM, dropout, batch norm, the RNN regularisers, the recurrent
state protocol, and the Kneser-Ney n-gram model a network may build on."""

from rnnlab.nn.batchnorm import BatchNorm
from rnnlab.nn.cells import (
    GRUCell,
    LSTMCell,
    RNNCell,
    gru_step,
    lstm_step,
    rnn_relu_step,
    rnn_tanh_step,
)
from rnnlab.nn.dropout import Dropout, dropout
from rnnlab.nn.layers import GRU, LAYERS, LSTM, RNN, recurrent_layer
from rnnlab.nn.minblock import MinBlockStack
from rnnlab.nn.minrnn import MinGRU, MinLSTM
from rnnlab.nn.ngram import (
    DenseKneserNey,
    FoldKneserNey,
    KneserNeyLM,
    NGramCounts,
    NGramFit,
    OrderScore,
    OrderSelection,
    fit_ngram,
    select_order,
)
from rnnlab.nn.regularizers import LockedDropout, WeightDrop, ar_tar_penalty, embedding_dropout
from rnnlab.nn.rnnbase import RNNBase
from rnnlab.nn.state import (
    State,
    detach_state,
    repeat_rows,
    select_rows,
    state_from_tensors,
    state_tensors,
    zero_state,
)

__all__ = [
    "GRU",
    "LAYERS",
    "LSTM",
    "RNN",
    "BatchNorm",
    "DenseKneserNey",
    "Dropout",
    "FoldKneserNey",
    "GRUCell",
    "KneserNeyLM",
    "LSTMCell",
    "LockedDropout",
    "MinBlockStack",
    "MinGRU",
    "MinLSTM",
    "NGramCounts",
    "NGramFit",
    "OrderScore",
    "OrderSelection",
    "RNNBase",
    "RNNCell",
    "State",
    "WeightDrop",
    "ar_tar_penalty",
    "detach_state",
    "dropout",
    "embedding_dropout",
    "fit_ngram",
    "gru_step",
    "lstm_step",
    "recurrent_layer",
    "repeat_rows",
    "rnn_relu_step",
    "rnn_tanh_step",
    "select_order",
    "select_rows",
    "state_from_tensors",
    "state_tensors",
    "zero_state",
]
