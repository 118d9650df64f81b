"""Weight averaging: an exponential moving average of the trained weights, scored and kept in their place.

After each applied step, every trainable parameter ``w`` moves its average ``a`` towards it::

    a <- d_t · a + (1 − d_t) · w,      d_t = min(decay, (1 + t) / (10 + t))

where ``t`` counts the updates so far. ``d_t`` warms up (as TensorFlow's ``ExponentialMovingAverage``
with ``num_updates``): early in a run the average follows the weights closely instead of dragging
their random start along. With ``d_t = decay`` throughout it is torch's
``AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay))`` (the tests check it).

The average smooths the noise of the last steps, which a high learning rate or a mid-run best model
(early stopping, over-fitting) leaves in the weights (Polyak & Juditsky 1992; AWD-LSTM's averaged SGD,
Merity et al. 2018). Validation scores it, and the best model saved is the average; training goes on
from the weights themselves.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


class WeightAverage:
    """The moving average of ``model``'s trainable parameters (``decay`` in [0, 1); 0 keeps none)."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.decay = decay
        self._start()

    def _start(self) -> None:
        """The average starts at the weights, with no updates counted."""
        self.average, self.updates = [p.detach().clone() for p in self.params], 0

    def update(self) -> None:
        """Move the average towards the weights (after an applied optimiser step)."""
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        with torch.no_grad():
            for a, p in zip(self.average, self.params):
                a.lerp_(p.detach(), 1.0 - d)

    @contextlib.contextmanager
    def swapped_in(self) -> Iterator[None]:
        """The model holds the average inside the block, its own weights again after it."""
        own = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for p, a in zip(self.params, self.average):
                p.copy_(a)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, w in zip(self.params, own):
                    p.copy_(w)

    def state_dict(self) -> dict:
        return {"average": [a.clone() for a in self.average], "updates": self.updates}

    def load_state_dict(self, state: dict | None) -> None:
        """Restore; None (a checkpoint from before averaging was kept) starts it from the weights."""
        if state is None:
            self._start()
            return
        if len(state["average"]) != len(self.params):
            raise ValueError(f"{len(state['average'])} averaged tensors for {len(self.params)} parameters")
        self.average = [a.to(p.device, p.dtype).clone() for a, p in zip(state["average"], self.params)]
        self.updates = int(state["updates"])
