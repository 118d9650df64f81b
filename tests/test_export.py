"""rnnlab export: the ONNX one-step model gives PyTorch's logits and states, step after step."""

import json
import sys

import numpy as np
import pytest
import torch
from conftest import tiny_run_argv

from rnnlab.cli import main
from rnnlab.data import Vocab
from rnnlab.rundir import RunDir

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

# What is exported is all that matters: 3 steps, no baseline, no gradient readings, no samples; a network
# alone (a residual model's n-gram cannot travel in ONNX: tests/test_residual.py checks the refusal).
QUICK = {"max_steps": 3, "no_baseline": True, "monitor_every": 0, "sample_length": 0, "ngram": "off"}
MODELS = {
    "lstm-torch-embedding-2layers-wdrop": ["--cell", "lstm", "--num-layers", "2", "--weight-drop", "0.3"],
    "lstm-scratch-onehot": ["--cell", "lstm", "--impl", "scratch", "--encoder", "onehot"],
    "gru-torch-onehot": ["--cell", "gru", "--encoder", "onehot"],
    "gru-scratch-embedding-2layers": ["--cell", "gru", "--impl", "scratch", "--num-layers", "2"],
    "rnn-torch-embedding": ["--cell", "rnn"],
}


def export_run(corpus, root, name: str, flags: list[str]):
    run, onnx_file = root / name, root / f"{name}.onnx"
    assert main(tiny_run_argv(corpus, run, *flags, **QUICK)) == 0
    assert main(["export", str(run), "--onnx", str(onnx_file)]) == 0
    return RunDir.open(run), onnx_file


@pytest.mark.parametrize("name", list(MODELS))
def test_onnx_steps_match_pytorch(corpus_file, tmp_path, name, capsys):
    run, onnx_file = export_run(corpus_file, tmp_path, name, MODELS[name])
    model, _ = run.load_model()
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    state_names = [i.name for i in session.get_inputs()][1:]
    assert state_names == (["h", "c"] if "lstm" in name else ["h"])
    L, H = model.rnn.num_layers, model.rnn.hidden_size
    g = torch.Generator().manual_seed(0)
    for batch in (1, 3):
        ids = torch.randint(len(run.load_vocab()), (batch,), generator=g)
        state = [torch.randn(L, batch, H, generator=g) * (batch > 1) for _ in state_names]
        ref_state = tuple(state) if len(state) > 1 else state[0]
        for _ in range(5):  # each step feeds both paths their own previous state
            with torch.no_grad():
                out = model(ids[:, None], ref_state)
            feed = {"ids": ids.numpy(), **{n: s.numpy() for n, s in zip(state_names, state)}}
            got = session.run(None, feed)
            ref = [out.logits[:, 0], *(out.state if isinstance(out.state, tuple) else (out.state,))]
            assert got[0].shape == (batch, model.vocab_size)
            for r, o in zip(ref, got):
                np.testing.assert_allclose(o, r.numpy(), atol=1e-5, rtol=1e-5)
            state, ref_state = [torch.from_numpy(o) for o in got[1:]], out.state
            ids = out.logits[:, 0].argmax(-1)


def test_vocabulary_travels_with_the_file(corpus_file, tmp_path, capsys):
    run, onnx_file = export_run(corpus_file, tmp_path, "vocab-run", MODELS["rnn-torch-embedding"])
    vocab = run.load_vocab()
    meta = {p.key: p.value for p in onnx.load(str(onnx_file)).metadata_props}
    assert Vocab.from_dict(json.loads(meta["rnnlab.vocab"])) == vocab
    assert json.loads(meta["rnnlab.model"])["cell"] == "rnn" and meta["rnnlab.state"] == "h"
    assert Vocab.load(onnx_file.with_name("vocab-run.vocab.json")) == vocab
    assert "wrote" in capsys.readouterr().out
    # A second export to the same file is refused, the first one kept.
    before = onnx_file.read_bytes()
    assert main(["export", str(run.path), "--onnx", str(onnx_file)]) == 2
    assert "already exists" in capsys.readouterr().err and onnx_file.read_bytes() == before


def test_missing_extra_is_one_line_with_the_install_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    assert main(["export", str(tmp_path / "nowhere"), "--onnx", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err
    assert 'pip install "rnnlab[onnx]"' in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.onnx").exists()
