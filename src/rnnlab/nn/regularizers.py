"""AWD-LSTM's recurrent regularisers: locked and embedding dropout, weight drop, AR/TAR.

Merity, Keskar & Socher 2018, "Regularizing and optimizing LSTM language models" (AWD-LSTM) combine
them: :class:`LockedDropout` on the embeddings and between layers, :func:`embedding_dropout` on the
embedding matrix, :class:`WeightDrop` on the hidden-to-hidden weights and :func:`ar_tar_penalty` on the
top layer's outputs. Every mask is drawn with :func:`rnnlab.nn.dropout.dropout` (inverted dropout), so
each regulariser keeps the expectation in ``train()`` and is the identity in ``eval()``.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

from torch import Tensor, nn

from rnnlab.nn.dropout import _check_p, dropout


class LockedDropout(nn.Module):
    """Variational dropout (Gal & Ghahramani 2016): one mask per sequence, shared by every time step.

    Ordinary dropout draws a fresh mask at each step, so the same hidden unit is on at ``t`` and off at
    ``t + 1``; here unit ``h`` of sequence ``b`` is either dropped for the whole window or scaled by
    ``1 / (1 - p)`` for the whole window. Identity in ``eval()``.

    Args:
        p: probability of dropping a (sequence, unit) pair, in ``[0, 1]``.
        batch_first: input is ``(B, T, H)`` instead of the time-major ``(T, B, H)``.

    Shape: ``(T, B, H)`` (or ``(B, T, H)``) in and out; the mask is ``(1, B, H)`` (``(B, 1, H)``).
    """

    def __init__(self, p: float = 0.5, batch_first: bool = False) -> None:
        super().__init__()
        self.p = _check_p(p)
        self.batch_first = batch_first

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        if x.dim() != 3:
            raise ValueError(
                f"LockedDropout expects (T, B, H) or (B, T, H) input, got shape {tuple(x.shape)}"
            )
        time_dim = 1 if self.batch_first else 0
        mask_shape = list(x.shape)
        mask_shape[time_dim] = 1  # one mask, broadcast over time
        mask = dropout(x.new_ones(mask_shape), self.p)  # 0 or 1 / (1 - p)
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}" + (", batch_first=True" if self.batch_first else "")


def embedding_dropout(embed_weight: Tensor, p: float, training: bool = True) -> Tensor:
    """Drop whole words: zero rows of the ``(V, E)`` embedding matrix, scale the rest by ``1 / (1 - p)``.

    Gal & Ghahramani 2016 (dropout on the word embeddings), as used by AWD-LSTM: a dropped id embeds to
    the zero vector at every position of the batch, so the model cannot lean on any single id. Use it
    as ``F.embedding(ids, embedding_dropout(embedding.weight, p, self.training))``; one mask per call.

    Returns:
        ``(V, E)``: ``embed_weight`` itself when not training or ``p == 0``, else the masked matrix
        (gradients reach ``embed_weight`` through the kept rows).
    """
    if not training or _check_p(p) == 0:
        return embed_weight
    mask = dropout(embed_weight.new_ones(embed_weight.size(0), 1), p)  # (V, 1): one draw per row
    return embed_weight * mask


def ar_tar_penalty(
    hidden: Tensor, alpha: float, beta: float, dropped_hidden: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Activation and temporal activation regularisation (Merity et al. 2017, "Revisiting activation
    regularization for language RNNs"), as AWD-LSTM adds them to the loss.

    * AR  = ``alpha · mean((m ⊙ h)²)``: keeps the outputs small; on the *dropped* outputs
      (``dropped_hidden``, what the decoder reads) when given, else on ``hidden``.
    * TAR = ``beta · mean((h_t − h_{t−1})²)``: keeps the outputs slow; always on the raw ``hidden``.

    Means run over every element (B, T, H), or over the B·(T−1)·H differences; ``T == 1`` has no
    difference and gives ``TAR = 0``.

    Args:
        hidden: ``(B, T, H)`` top recurrent layer's outputs (``LMOutput.outputs``).
        alpha, beta: the coefficients (AWD-LSTM uses 2 and 1).
        dropped_hidden: ``(B, T, H)`` the same outputs after dropout, or None.

    Returns:
        ``(ar, tar)``, two 0-dim tensors, to be logged separately and added to the loss.
    """
    if hidden.dim() != 3:
        raise ValueError(f"ar_tar_penalty expects (B, T, H) hidden, got shape {tuple(hidden.shape)}")
    target = hidden if dropped_hidden is None else dropped_hidden
    ar = alpha * target.pow(2).mean()
    if hidden.size(1) < 2:
        return ar, hidden.new_zeros(())
    tar = beta * (hidden[:, 1:] - hidden[:, :-1]).pow(2).mean()  # (B, T-1, H) differences
    return ar, tar


RAW = "_raw"


class WeightDrop(nn.Module):
    """DropConnect (Wan et al. 2013) on a recurrent layer's hidden-to-hidden weights (AWD-LSTM).

    Each named weight ``W`` becomes a parameter ``W_raw``; before every forward of the wrapped layer,
    ``W`` is set to ``dropout(W_raw, p)`` in ``train()`` (one mask for the whole sequence, elements of
    the matrix zeroed, the rest scaled by ``1 / (1 - p)``) and to ``W_raw`` itself in ``eval()``, and
    set back to ``W_raw`` after it. Gradients reach ``W_raw`` through the mask. Because the dropped
    matrix is fixed across time steps, the layer still runs as one call (cuDNN on a GPU).

    Works with ``torch.nn.RNN/GRU/LSTM`` and with ``rnnlab.nn.RNN/GRU/LSTM``: both read each weight by
    attribute name. torch.nn's layers also cache their weights in ``_flat_weights`` (and weak
    references to them in ``_flat_weight_refs``), which the C++ kernel reads; :func:`_assign` refreshes
    both, so the dropped matrix is what the kernel uses and torch does not re-flatten (on CUDA, torch
    warns once that the weights are not one contiguous chunk: expected, as with AWD-LSTM's code).

    Reads of attributes the wrapper lacks fall through to the layer (``hidden_size``, ``num_layers``,
    ``mode``, ``init_state``...), so :func:`rnnlab.nn.state.zero_state` works on the wrapper.

    State dict: the wrapped layer sits under ``module.`` and the dropped weights are stored under their
    ``_raw`` names (``rnn.module.weight_hh_l0_raw``); :func:`plain_state_dict` and
    :func:`wrapped_state_dict` translate to and from the unwrapped layer's names.

    Args:
        module: the recurrent layer; its weights are re-registered in place.
        weights: names of the weights to drop; None means every ``weight_hh_l*`` (all hidden-to-hidden).
        p: DropConnect probability, in ``[0, 1]`` (AWD-LSTM uses 0.5).
    """

    def __init__(self, module: nn.Module, weights: Sequence[str] | None = None, p: float = 0.5) -> None:
        super().__init__()
        self.p = _check_p(p)
        if weights is None:
            weights = [
                name for name, _ in module.named_parameters(recurse=False) if name.startswith("weight_hh")
            ]
        self.weights = tuple(weights)
        if not self.weights:
            raise ValueError(f"WeightDrop: no weights to drop in {type(module).__name__}")
        for name in self.weights:
            param = module._parameters.get(name)
            if param is None:
                raise ValueError(f"WeightDrop: {type(module).__name__} has no parameter {name!r}")
            _rename_parameter(module, name, name + RAW)  # the same tensor, in the same place
            _assign(module, name, param)
        self.module = module

    def forward(self, *args, **kwargs):
        """The wrapped layer's forward, run with the dropped weights; returns what the layer returns."""
        for name in self.weights:
            raw = getattr(self.module, name + RAW)
            _assign(self.module, name, dropout(raw, self.p, self.training))
        try:
            return self.module(*args, **kwargs)
        finally:
            # Between calls the layer holds its raw weights: .to(), deepcopy and pickling see parameters.
            self._hold_raw()

    def _hold_raw(self) -> None:
        for name in self.weights:
            _assign(self.module, name, getattr(self.module, name + RAW))

    def _apply(self, fn, recurse: bool = True):
        # .to() / .double() may replace a parameter by a new object; point the layer at the new one.
        result = super()._apply(fn, recurse)
        self._hold_raw()
        return result

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "module":
                raise
            return getattr(self.module, name)

    def extra_repr(self) -> str:
        return f"weights={list(self.weights)}, p={self.p}"


def _rename_parameter(module: nn.Module, old: str, new: str) -> None:
    """Rename a parameter in place, keeping the registration (and so the state_dict) order."""
    items = list(module._parameters.items())
    module._parameters.clear()
    module._parameters.update((new if key == old else key, value) for key, value in items)


def _assign(module: nn.Module, name: str, value: Tensor) -> None:
    """Make ``module.<name>`` read ``value`` as a plain attribute (never a registered parameter).

    ``object.__setattr__`` skips ``Module.__setattr__``, which would register a Parameter a second time;
    torch.nn.RNNBase's ``_flat_weights`` cache (what its kernel reads) and ``_flat_weight_refs`` (what
    it compares to decide to rebuild the cache) are updated by hand.
    """
    object.__setattr__(module, name, value)
    names = getattr(module, "_flat_weights_names", None)
    if names is not None and name in names:
        index = names.index(name)
        module._flat_weights[index] = value
        refs = getattr(module, "_flat_weight_refs", None)
        if refs is not None and len(refs) == len(names):
            refs[index] = weakref.ref(value)


def _plain_names(model: nn.Module) -> dict[str, str]:
    """``{wrapped state_dict key: the key without WeightDrop}`` for every key of ``model``."""
    renames: dict[str, str] = {}
    for prefix, sub in model.named_modules():
        if isinstance(sub, WeightDrop):
            head = prefix + "." if prefix else ""
            raws = {name + RAW: name for name in sub.weights}
            for key in sub.module.state_dict():
                renames[head + "module." + key] = head + raws.get(key, key)
    return {key: renames.get(key, key) for key in model.state_dict()}


def plain_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """``model.state_dict()`` under the names it would have without its WeightDrop wrappers.

    ``rnn.module.weight_hh_l0_raw`` -> ``rnn.weight_hh_l0``, ``rnn.module.bias_ih_l0`` -> ``rnn.bias_ih_l0``,
    so an unwrapped model (and the checkpoints of one) loads it. The order of keys is kept.
    """
    state = model.state_dict()
    return {plain: state[key] for key, plain in _plain_names(model).items()}


def wrapped_state_dict(model: nn.Module, state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """The inverse of :func:`plain_state_dict`: plain names -> ``model``'s WeightDrop names, to load."""
    to_wrapped = {plain: key for key, plain in _plain_names(model).items()}
    return {to_wrapped.get(key, key): value for key, value in state_dict.items()}
