"""`--cell mingru|minlstm`: the language model, the CLI and everything around a run work with the
parallel-scan cells as they do with the classic ones."""

import json

import pytest
import torch
from conftest import last_json, metric_records, metrics_without_timing, tiny_run_argv
from torch.testing import assert_close

from rnnlab.cli import main
from rnnlab.config import ModelConfig
from rnnlab.errors import RnnlabError
from rnnlab.inspect.activations import record
from rnnlab.model import LanguageModel
from rnnlab.rundir import RunDir
from rnnlab.train.loop import INTERRUPTED, Trainer

MIN_CELLS = ["mingru", "minlstm"]


def _model(cell: str, encoder: str = "embedding", layers: int = 2) -> LanguageModel:
    torch.manual_seed(0)
    cfg = ModelConfig(
        cell=cell, hidden_size=12, num_layers=layers, embedding_dim=6, encoder=encoder, ngram="off"
    )
    return LanguageModel.from_config(cfg, vocab_size=9).double().eval()


@pytest.mark.parametrize("encoder", ["embedding", "onehot"])
@pytest.mark.parametrize("cell", MIN_CELLS)
def test_whole_windows_and_single_steps_give_the_same_logits(cell, encoder):
    model, ids = _model(cell, encoder), torch.randint(9, (3, 20), generator=torch.Generator().manual_seed(1))
    whole = model(ids)
    state, pieces = None, []
    for start, stop in ((0, 7), (7, 8), (8, 20)):  # a window, one step (the step path), the rest
        out = model(ids[:, start:stop], state)
        state = out.state
        pieces.append(out.logits)
    assert_close(torch.cat(pieces, dim=1), whole.logits)
    assert_close(
        torch.cat([p.flatten() for p in _parts(state)]), torch.cat([p.flatten() for p in _parts(whole.state)])
    )
    assert model.init_state(3)[0].shape == (2, 3, 12)  # (h, past): h of each layer first


def _parts(state):
    return list(state) if isinstance(state, tuple) else [state]


def test_weight_drop_is_refused_with_a_reason():
    with pytest.raises(RnnlabError, match=r"--weight-drop .* has none"):
        ModelConfig(cell="mingru", weight_drop=0.3)


@pytest.mark.parametrize("cell", MIN_CELLS)
def test_inspect_records_each_layers_state_and_update_gate(cell):
    model = _model(cell).float()
    rec = record(model, torch.randint(9, (50,), generator=torch.Generator().manual_seed(2)))
    assert rec.mode == ("MinGRUBlock" if cell == "mingru" else "MinLSTMBlock")
    assert set(rec.signals) == {"h", "z"} and rec.signals["h"].shape == (2, 50, 12)
    assert ((rec.signals["z"] > 0) & (rec.signals["z"] < 1)).all()
    assert rec.forward_diff < 1e-4  # the recording's stack output is the model's own, window by window


@pytest.mark.parametrize("cell", MIN_CELLS)
def test_a_min_cell_run_trains_generates_evaluates_inspects_and_exports(tmp_path, corpus_file, capsys, cell):
    run = tmp_path / "run"
    argv = tiny_run_argv(corpus_file, run, cell=cell, ngram="off", max_steps=10, monitor_every=5, json=True)
    assert main(argv) == 0
    summary = last_json(capsys.readouterr().out)
    assert summary["steps"] == 10 and summary["best_val_loss"] < 10
    assert any("dldh" in r for r in metric_records(run, "grad"))  # the gradient monitor reads the stack
    twice = []
    for _ in range(2):
        assert main(["generate", str(run), "--prefix", "the ", "--length", "30", "--seed", "4"]) == 0
        twice.append(capsys.readouterr().out)
    assert twice[0] == twice[1] and len(twice[0]) > 30
    assert main(["evaluate", str(run), "--json"]) == 0
    assert last_json(capsys.readouterr().out)["loss"] == pytest.approx(summary["test_loss"])
    assert main(["inspect", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["features"]
    onnx = pytest.importorskip("onnxruntime")
    assert main(["export", str(run), "--onnx", str(tmp_path / "m.onnx")]) == 0
    session = onnx.InferenceSession(str(tmp_path / "m.onnx"))
    model, _ = RunDir(run).load_model()
    state = model.init_state(1)
    feeds = {
        "ids": torch.tensor([3]).numpy(),
        **{i.name: s.numpy() for i, s in zip(session.get_inputs()[1:], _parts(state))},
    }
    logits = session.run(None, feeds)[0]
    with torch.no_grad():
        expected = model(torch.tensor([[3]]), state).logits[0]
    assert_close(torch.from_numpy(logits), expected, atol=1e-4, rtol=1e-4)


def test_a_residual_min_cell_run_resumes_exactly(tmp_path, corpus_file, monkeypatch):
    flags = {
        "cell": "mingru",
        "batch_size": 8,
        "num_steps": 12,
        "max_steps": 20,
        "eval_every": 4,
        "dropout": 0.2,
        "num_layers": 2,
    }
    assert main(tiny_run_argv(corpus_file, tmp_path / "whole", **flags)) == 0
    original = Trainer._train_step

    def stop_at_9(self, X, Y, starts):
        original(self, X, Y, starts)
        if self.state.step == 9:
            self.stop_request = INTERRUPTED

    with monkeypatch.context() as m:
        m.setattr(Trainer, "_train_step", stop_at_9)
        assert main(tiny_run_argv(corpus_file, tmp_path / "cut", **flags)) == 130
    assert main(["train", "--resume", str(tmp_path / "cut"), "--quiet"]) == 0
    assert metrics_without_timing(tmp_path / "cut") == metrics_without_timing(tmp_path / "whole")


@pytest.mark.parametrize(
    ("parts", "state_parts", "modules"),
    [("conv,mlp,norm", 2, {"conv", "mlp", "norm"}), ("mlp", 1, {"mlp"}), ("none", 1, set())],
)
def test_min_block_switches_the_parts_around_the_cell(parts, state_parts, modules):
    cfg = ModelConfig(cell="mingru", hidden_size=8, embedding_dim=4, ngram="off", min_block=parts)
    model = LanguageModel.from_config(cfg, vocab_size=5)
    block = model.rnn.blocks[0]
    present = {name for name in ("conv", "mlp") if getattr(block, name) is not None}
    present |= {"norm"} if not isinstance(block.norm, torch.nn.Identity) else set()
    assert present == modules and len(_parts(model.init_state(2))) == state_parts
    with pytest.raises(RnnlabError, match="--min-block"):
        ModelConfig(cell="mingru", min_block="conv,attention")
