"""ONNX export: a trained LanguageModel as a one-step model (ids + state in, logits + state out).

::

    ids (B,) int64 ─┐                                  ┌─► logits (B, V)
    h   (L, B, H)  ─┼─► OneStep: LanguageModel, T = 1 ─┼─► h_new (L, B, H)
    c   (L, B, H)  ─┘   (LSTM only)                    └─► c_new (L, B, H)   (LSTM only)

The batch axis is dynamic; feed ``h_new``/``c_new`` back as ``h``/``c`` to continue the text, start from
zeros. The vocabulary travels with the file twice: in the graph's ``metadata_props`` (key
``rnnlab.vocab``, the vocab.json document) and beside it as ``FILE.vocab.json``, so either the file
alone or a reader that cannot see metadata can map ids to text.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, replace
from pathlib import Path

import torch
from torch import nn

from rnnlab import __version__
from rnnlab.config import ModelConfig
from rnnlab.data.vocab import Vocab
from rnnlab.errors import RnnlabError
from rnnlab.io import atomic_write
from rnnlab.model import LanguageModel
from rnnlab.nn.regularizers import plain_state_dict
from rnnlab.nn.state import state_from_tensors, state_tensors

OPSET = 17  # onnxruntime >= 1.16 runs it; LSTM/GRU/RNN have been ONNX ops since opset 7


class OneStep(nn.Module):
    """One step of a LanguageModel on flat tensors: ``(ids (B,), *state) -> (logits (B, V), *state)``.

    ``state`` is ``h`` (RNN, GRU, minGRU/minLSTM blocks), ``h, c`` (LSTM) or ``h, past`` (minGRU/minLSTM
    blocks with their causal convolution), each ``(num_layers, B, width)``: flat tensors, because an
    exported graph's inputs and outputs cannot be tuples.
    """

    def __init__(self, model: LanguageModel):
        super().__init__()
        self.model = model
        default = ("h", "c") if model.rnn.mode == "LSTM" else ("h",)
        self.state_names = getattr(model.rnn, "state_names", default)

    def forward(self, ids: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(ids[:, None], state_from_tensors(state))  # (B, 1) in, (B, 1, V) out
        return (out.logits[:, 0], *state_tensors(out.state))


NGRAM_REFUSAL = (
    "this run's model is a residual over an n-gram (--ngram residual), whose count tables and lookups "
    "an ONNX graph cannot carry; train with --ngram off to export a network on its own"
)


def one_step_model(cfg: ModelConfig, model: LanguageModel) -> OneStep:
    """A :class:`OneStep` over an inference copy of ``model``, float32 on the CPU, in eval mode.

    The copy has no WeightDrop wrapper: in eval the wrapper is the identity, but the tracer records
    its swap of the raw weights wrongly (the exported logits then differ). The from-scratch layers run
    their reference loop (plain tensor ops) instead of the hand-written BPTT Function.
    """
    plain = LanguageModel.from_config(replace(cfg, weight_drop=0.0), model.vocab_size)
    plain.load_state_dict(plain_state_dict(model))
    plain = plain.float().cpu().eval()
    plain.rnn.fast = False  # only the scratch layers read it
    return OneStep(plain)


def require_onnx():
    """The ``onnx`` module (the exporter writes through it), or a one-line error saying how to get it."""
    try:
        import onnx
    except ImportError as e:
        raise RnnlabError('ONNX export needs the onnx extra: pip install "rnnlab[onnx]"') from e
    return onnx


def onnx_path_problem(path: str | Path) -> str | None:
    """Why ``path`` (or its vocabulary file) cannot be written as a new export, or None."""
    path = Path(path)
    for target in (path, vocab_path(path)):
        if target.is_dir():
            return f"--onnx {target} is a directory; give a file name such as model.onnx"
        if target.exists():
            return f"{target} already exists; rnnlab never overwrites it: remove it or pick another --onnx"
    if not path.parent.is_dir():
        return f"directory {path.parent} does not exist; create it first"
    return None


def vocab_path(path: str | Path) -> Path:
    """``model.onnx`` -> ``model.vocab.json``: the vocabulary written beside an export."""
    path = Path(path)
    return path.with_name(path.stem + ".vocab.json") if path.suffix else Path(f"{path}.vocab.json")


def export_onnx(cfg: ModelConfig, model: LanguageModel, vocab: Vocab, path: str | Path) -> Path:
    """Write ``model`` as a one-step ONNX graph to ``path`` and its vocabulary beside it.

    Args:
        cfg: the model's config (recorded in the metadata; it also rebuilds the inference copy).
        model: the trained model.
        vocab: its vocabulary (``len(vocab)`` must be the model's ``V``).
        path: the ``.onnx`` file; neither it nor :func:`vocab_path` of it may exist.

    Returns:
        The vocabulary file's path.

    Raises:
        RnnlabError: the onnx package is missing, the model is a residual over an n-gram, or ``path``
            cannot be written (see :func:`onnx_path_problem`).
    """
    onnx = require_onnx()
    problem = NGRAM_REFUSAL if cfg.ngram != "off" else onnx_path_problem(path)
    if problem:
        raise RnnlabError(problem)
    step = one_step_model(cfg, model)
    names = step.state_names
    inputs = ["ids", *names]
    outputs = ["logits", *(f"{n}_new" for n in names)]
    example = (torch.zeros(1, dtype=torch.int64), *state_tensors(step.model.init_state(1)))
    batch_axes = {n: {0: "batch"} for n in ("ids", "logits")} | {
        n: {1: "batch"} for n in (*inputs[1:], *outputs[1:])
    }

    def write(tmp: str) -> None:
        # The TorchScript exporter (dynamo=False): offline, under a second, and it handles the varargs
        # state; torch.export (the dynamo path) fails on this graph in torch 2.13. It warns that it is
        # legacy, and about LSTM batch sizes (moot: the state is an input).
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                step, example, tmp, input_names=inputs, output_names=outputs,
                dynamic_axes=batch_axes, opset_version=OPSET, dynamo=False,
            )  # fmt: skip
        graph = onnx.load(tmp)
        meta = {
            "rnnlab.version": __version__,
            "rnnlab.vocab": json.dumps(vocab.to_dict(), ensure_ascii=False),
            "rnnlab.model": json.dumps(asdict(cfg)),
            "rnnlab.state": ",".join(names),
        }
        for key, value in meta.items():
            graph.metadata_props.add(key=key, value=value)
        graph.doc_string = (
            f"rnnlab one-step {cfg.cell} language model: ids (batch,) int64 and state "
            f"{', '.join(names)} (num_layers, batch, width) in; logits (batch, V) and the new state out"
        )
        onnx.save(graph, tmp)

    atomic_write(path, write)
    vocab_file = vocab_path(path)
    vocab.save(vocab_file)
    return vocab_file
