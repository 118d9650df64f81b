"""The recurrent state protocol: a tensor (RNN, GRU) or a tuple of tensors (LSTM's (h, c)).

Every tensor has shape ``(num_layers * num_directions, batch, hidden)``. The loop, the evaluator and the
sampler use only these functions, so none of them needs to know which cell made the state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

State = torch.Tensor | tuple[torch.Tensor, ...]


def map_state(fn: Callable[[torch.Tensor], torch.Tensor], state: State | None) -> State | None:
    """Apply ``fn`` to every tensor of ``state`` (``None`` stays ``None``)."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(fn(s) for s in state)
    return fn(state)


def zero_state(rnn: torch.nn.Module, batch_size: int, device=None, dtype=None) -> State:
    """The all-zero start state of ``rnn`` (a torch.nn or rnnlab.nn RNN/GRU/LSTM, or a layer with its own
    ``init_state``, as rnnlab.nn.MinBlockStack) for ``batch_size`` rows."""
    if hasattr(rnn, "init_state"):  # rnnlab.nn's layers (through a WeightDrop too)
        return rnn.init_state(batch_size, device, dtype)
    param = next(rnn.parameters())
    shape = (rnn.num_layers * (2 if rnn.bidirectional else 1), batch_size, rnn.hidden_size)
    h = torch.zeros(shape, device=device or param.device, dtype=dtype or param.dtype)
    return (h, torch.zeros_like(h)) if rnn.mode == "LSTM" else h


def detach_state(state: State | None) -> State | None:
    """Cut the graph behind the state: the next window backpropagates into its own steps only."""
    return map_state(torch.Tensor.detach, state)


def select_rows(state: State | None, rows) -> State | None:
    """Keep the batch rows ``rows`` (an index or boolean mask) of every state tensor."""
    return map_state(lambda s: s[:, rows], state)


def repeat_rows(state: State | None, times: int) -> State | None:
    """Repeat a one-row state ``times`` times along the batch (one prefix, many samples)."""
    return map_state(lambda s: s.expand(-1, times, -1).contiguous(), state)


def state_tensors(state: State | None) -> list[torch.Tensor]:
    """The state as a flat list of tensors (for checkpoints)."""
    if state is None:
        return []
    return list(state) if isinstance(state, tuple) else [state]


def state_from_tensors(tensors: Sequence[torch.Tensor]) -> State | None:
    """Inverse of :func:`state_tensors`."""
    if not tensors:
        return None
    return tuple(tensors) if len(tensors) > 1 else tensors[0]
