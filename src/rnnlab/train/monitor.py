"""The gradient monitor: norms per layer, clipping rate, update ratios and dL/dh_t, every N steps."""

from __future__ import annotations

import re

import torch
from torch import Tensor, nn

from rnnlab.nn import MinBlockStack, RNNBase
from rnnlab.train.clipping import clip_grad_norm, clip_grad_value, grads_of, norm_of, total_grad_norm
from rnnlab.train.metrics import json_number

_LAYER_PARAM = re.compile(
    # _raw: a WeightDrop-wrapped weight
    r"^(?:(?P<module>.+)\.)?(?:weight|bias)_(?:ih|hh)_l(?P<layer>\d+)(?:_reverse)?(?:_raw)?$"
)


def parameter_group(name: str) -> str:
    """The monitor's group of a parameter: a recurrent layer, or else the owning module's path.

    ``rnn.weight_hh_l1`` and ``rnn.bias_ih_l1_reverse`` -> ``rnn.l1``; ``embedding.weight`` ->
    ``embedding``; ``decoder.bias`` -> ``decoder``.
    """
    match = _LAYER_PARAM.match(name)
    if match:
        return f"{match['module']}.l{match['layer']}" if match["module"] else f"l{match['layer']}"
    return name.rsplit(".", 1)[0] if "." in name else name


def _recurrent_module(model: nn.Module) -> nn.Module | None:
    return next((m for m in model.modules() if isinstance(m, (nn.RNNBase, RNNBase, MinBlockStack))), None)


class GradientMonitor:
    """Gradient readings every ``every`` steps, whatever the cell; near-free on the other steps.

    A sampled step's :meth:`record` holds: ``norm_before`` / ``norm_after`` (global L2 norm around
    clipping), ``clip_frac`` (fraction of steps clipped since the last record) and ``clip_frac_total``,
    ``grad_norm/<group>`` and ``update_ratio/<group>`` (‖Δw‖/‖w‖ of the optimizer step) per
    :func:`parameter_group`, and ``dldh``: T floats, ``dldh[t] = mean_b ‖∂ℓ_{T-1}/∂x_t‖``, how much of
    the window's last loss term reaches step t (Pascanu et al. 2013's ‖∂E_t/∂h_k‖). It is read at the
    recurrent stack's input x_t, where a zero tensor is added on sampled steps: fused layers (torch.nn,
    cuDNN) never expose ∂ℓ/∂h_t, and the stack's (B, T, H) output only receives the decoder's local
    gradient, flat in t. Forward hooks on the recurrent module add that tensor and keep its output, so
    the model needs no changes. ``dldh`` costs one extra backward pass on sampled steps and is absent
    when the stack reads integer ids (one-hot ``impl="scratch"``) or there is no recurrent module.

    A training step calls, in this order (all cheap no-ops on unsampled steps, except the clip count,
    which adds one 0-dim tensor to a counter)::

        monitor.begin_step(step)             # before forward
        out = model(X); loss = ...
        norm = monitor.backward(loss, max_norm)   # probe, backward, norms, clip: the pre-clip norm
        if guard.check(loss, norm).action == "step":
            optimizer.step(); monitor.after_step()
        record = monitor.record()            # a flat JSON-able dict on sampled steps, else None

    Args:
        model: the model being trained.
        every: sample steps whose number is a multiple of this.
        recurrent: the module whose input is probed (default: the first torch.nn / rnnlab.nn RNN layer).
    """

    def __init__(self, model: nn.Module, every: int = 100, recurrent: nn.Module | None = None):
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.model, self.every = model, every
        self.groups: dict[str, list[Tensor]] = {}
        for name, p in model.named_parameters():
            if p.requires_grad:
                self.groups.setdefault(parameter_group(name), []).append(p)
        self.recurrent = recurrent if recurrent is not None else _recurrent_module(model)
        self._hooks = []
        if self.recurrent is not None:
            self._hooks = [
                self.recurrent.register_forward_pre_hook(self._probe, with_kwargs=True),
                self.recurrent.register_forward_hook(self._keep_output),
            ]
        self._sampling = self._armed = False
        self._delta: Tensor | None = None
        self._output: Tensor | None = None
        self._weights: dict[str, list[Tensor]] | None = None
        self._record: dict = {}
        self._clipped: Tensor | None = None
        self._clipped_total: Tensor | None = None
        self._clip_steps = self._clip_steps_total = 0

    def close(self) -> None:
        """Remove the hooks from the recurrent module."""
        for hook in self._hooks:
            hook.remove()
        self._hooks = []

    def begin_step(self, step: int, force: bool = False) -> bool:
        """Start step ``step`` (1-based); returns whether it is sampled (``force``: sample it anyway)."""
        self._sampling = self._armed = force or step % self.every == 0
        self._delta = self._output = self._weights = None
        self._record = {"step": step} if self._sampling else {}
        return self._sampling

    def _probe(self, module: nn.Module, args: tuple, kwargs: dict):
        if not self._armed or not args or not torch.is_grad_enabled() or not args[0].is_floating_point():
            return None
        self._armed = False  # probe one forward only; evaluation forwards stay untouched
        self._delta = torch.zeros_like(args[0], requires_grad=True)
        return (args[0] + self._delta, *args[1:]), kwargs

    def _keep_output(self, module: nn.Module, args: tuple, output) -> None:
        if self._delta is not None and self._output is None:
            self._output = output[0] if isinstance(output, tuple) else output  # (T, B, D*H)

    def backward(
        self, loss: Tensor, clip_norm: float | None = None, clip_value: float | None = None
    ) -> Tensor:
        """The backward half of a step, in the order the readings need: the dL/dh_t probe, backward,
        the per-group norms, clipping (each element to ``clip_value``, then the global norm to
        ``clip_norm``; None: not that one) and the clip count. Returns the global gradient norm before
        norm clipping (Pascanu et al. 2013)."""
        self.before_backward(loss)
        loss.backward()
        self.after_backward()
        params = list(self.model.parameters())
        if clip_value is not None:
            clip_grad_value(params, clip_value)
        norm = clip_grad_norm(params, clip_norm) if clip_norm is not None else total_grad_norm(params)
        self.after_clip(norm, clip_norm)
        return norm

    def before_backward(self, loss: Tensor) -> None:
        """Measure ``dldh`` from the scalar ``loss`` (one extra backward pass, sampled steps only)."""
        delta, output, self._delta, self._output = self._delta, self._output, None, None
        self._armed = False  # never probe a later forward (evaluation) of the same step
        if delta is None or output is None or output.dim() != delta.dim() or not output.requires_grad:
            return
        time_dim = 1 if getattr(self.recurrent, "batch_first", False) else 0
        # The last step's output feeds only the last loss term: ∂L/∂o_{T-1} is ℓ_{T-1}'s gradient there.
        (upstream,) = torch.autograd.grad(loss, output, retain_graph=True, allow_unused=True)
        if upstream is None:
            return
        (dx,) = torch.autograd.grad(
            output.select(time_dim, -1),
            delta,
            grad_outputs=upstream.select(time_dim, -1),
            retain_graph=True,
            allow_unused=True,
        )
        if dx is not None:
            per_step = torch.linalg.vector_norm(dx.float(), dim=-1).mean(dim=1 - time_dim)  # (T,)
            self._record["dldh"] = [json_number(v) for v in per_step.tolist()]

    @torch.no_grad()
    def after_backward(self) -> None:
        """Per-group gradient norms and the global norm before clipping; snapshot the weights."""
        if not self._sampling:
            return
        device = next(iter(self.groups.values()))[0].device
        norms = [norm_of(grads_of(params), 2.0, device).float() for params in self.groups.values()]
        values = torch.stack([norm_of(norms, 2.0), *norms]).tolist()  # one sync for all groups
        self._record["norm_before"] = json_number(values[0])
        self._record.update({f"grad_norm/{n}": json_number(v) for n, v in zip(self.groups, values[1:])})
        self._weights = {n: [p.detach().clone() for p in params] for n, params in self.groups.items()}

    @torch.no_grad()
    def after_clip(self, total_norm: Tensor | None = None, max_norm: float | None = None) -> None:
        """Count clipping (``total_norm``: the pre-clip norm; skip both when not clipping by norm)."""
        if total_norm is not None and max_norm is not None:
            hit = (total_norm.detach() > max_norm).float()  # stays a tensor: no GPU sync unless sampled
            self._clipped = hit if self._clipped is None else self._clipped + hit
            self._clipped_total = hit if self._clipped_total is None else self._clipped_total + hit
            self._clip_steps, self._clip_steps_total = self._clip_steps + 1, self._clip_steps_total + 1
        if self._sampling:
            self._record["norm_after"] = json_number(float(total_grad_norm(self.model.parameters())))

    @torch.no_grad()
    def after_step(self) -> None:
        """‖Δw‖/‖w‖ per group for the update just applied (call only when the step was taken)."""
        if self._weights is None:
            return
        ratios = [
            norm_of([p - w for p, w in zip(self.groups[n], old)], 2.0).float()
            / norm_of(old, 2.0).float().clamp_min(1e-12)
            for n, old in self._weights.items()
        ]
        ratios = torch.stack(ratios).tolist()
        self._record.update({f"update_ratio/{n}": json_number(v) for n, v in zip(self._weights, ratios)})
        self._weights = None

    def state_dict(self) -> dict:
        """The clipping counters (what a resumed run needs to log the same clip fractions)."""
        return {
            "clipped": float(self._clipped) if self._clipped is not None else 0.0,
            "clip_steps": self._clip_steps,
            "clipped_total": float(self._clipped_total) if self._clipped_total is not None else 0.0,
            "clip_steps_total": self._clip_steps_total,
        }

    def load_state_dict(self, state: dict) -> None:
        # Plain floats: adding the next step's 0-dim tensor (on any device) makes them tensors again.
        self._clipped = float(state["clipped"]) if state["clip_steps"] else None
        self._clipped_total = float(state["clipped_total"]) if state["clip_steps_total"] else None
        self._clip_steps, self._clip_steps_total = int(state["clip_steps"]), int(state["clip_steps_total"])

    def record(self) -> dict | None:
        """The sampled step's readings as a flat JSON-able dict (then reset), or None on other steps."""
        if not self._sampling:
            return None
        record = dict(self._record)
        if self._clip_steps:
            record["clip_frac"] = float(self._clipped) / self._clip_steps
            record["clip_frac_total"] = float(self._clipped_total) / self._clip_steps_total
        self._clipped, self._clip_steps = None, 0
        self._sampling, self._record, self._weights = False, {}, None
        return record
