"""From-scratch recurrent building blocks with torch.nn's interface: cells, stacked layers, dropout."""

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
from rnnlab.nn.layers import GRU, LSTM, RNN, RNNBase
from rnnlab.nn.state import State

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "Dropout",
    "GRUCell",
    "LSTMCell",
    "RNNBase",
    "RNNCell",
    "State",
    "dropout",
    "gru_step",
    "lstm_step",
    "rnn_relu_step",
    "rnn_tanh_step",
]
