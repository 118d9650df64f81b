"""Checkpoints: safetensors + JSON round trips, atomic writes, and refusal of anything unsafe."""

import json
import pickle

import pytest
import torch

from rnnlab.errors import RnnlabError
from rnnlab.io import atomic_write_text, load_tensors
from rnnlab.model import LanguageModel
from rnnlab.rundir import load_model_weights, save_model
from rnnlab.train.checkpoint import flatten_state, load_checkpoint, save_checkpoint, unflatten_state


def _optimizer_state():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1, betas=(0.8, 0.9))
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    return opt.state_dict()


def test_flatten_round_trip_keeps_int_keys_tuples_and_inf():
    state = {"optimizer": _optimizer_state(), "best": float("inf"), "t": (1, "a"), "none": None}
    tensors = {}
    doc = json.loads(json.dumps(flatten_state(state, tensors)))
    back = unflatten_state(doc, tensors)
    assert back["best"] == float("inf") and back["t"] == (1, "a") and back["none"] is None
    assert set(back["optimizer"]["state"]) == {0, 1}
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.8, 0.9)
    torch.testing.assert_close(
        back["optimizer"]["state"][0]["exp_avg"], state["optimizer"]["state"][0]["exp_avg"]
    )


def test_checkpoint_round_trip_and_old_files_removed(tmp_path):
    save_checkpoint(tmp_path, 1, {"w": torch.ones(2), "step": 1})
    save_checkpoint(tmp_path, 2, {"w": torch.zeros(2), "step": 2})
    back = load_checkpoint(tmp_path)
    assert back["step"] == 2 and torch.equal(back["w"], torch.zeros(2))
    assert [p.name for p in tmp_path.glob("checkpoint-*")] == ["checkpoint-000000002.safetensors"]


def test_crash_mid_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, 1, {"w": torch.ones(3)})

    def torn_write(tensors, path, metadata=None):
        with open(path, "wb") as f:
            f.write(b"\x08\x00\x00\x00partial")  # a process killed halfway through its write
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("rnnlab.io.save_file", torn_write)
    with pytest.raises(RnnlabError, match="previous file is kept"):
        save_checkpoint(tmp_path, 2, {"w": torch.zeros(3)})
    assert torch.equal(load_checkpoint(tmp_path)["w"], torch.ones(3))
    assert not list(tmp_path.glob(".*tmp"))  # no temp files left behind


def test_atomic_text_write_crash(tmp_path, monkeypatch):
    path = tmp_path / "config.json"
    atomic_write_text(path, "old")
    monkeypatch.setattr("os.replace", lambda *a: (_ for _ in ()).throw(OSError(5, "I/O error")))
    with pytest.raises(RnnlabError):
        atomic_write_text(path, "new")
    assert path.read_text() == "old"


def test_tampered_or_truncated_checkpoints_are_refused(tmp_path):
    save_checkpoint(tmp_path, 3, {"w": torch.arange(10.0)})
    tensor_file = next(tmp_path.glob("checkpoint-*.safetensors"))
    data = bytearray(tensor_file.read_bytes())
    data[-4:] = b"\x00\x00\x80\x7f"  # hand-edit one number
    tensor_file.write_bytes(bytes(data))
    with pytest.raises(RnnlabError, match="checksum"):
        load_checkpoint(tmp_path)
    tensor_file.write_bytes(bytes(data[:20]))
    with pytest.raises(RnnlabError, match="not a readable safetensors file"):
        load_tensors(tensor_file)
    (tmp_path / "checkpoint.json").write_text('{"format": "rnnlab-checkpoint", "version": 99}')
    with pytest.raises(RnnlabError, match="version 99"):
        load_checkpoint(tmp_path)


class _Marker:
    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.path}",))


def test_pickle_payload_is_refused_never_run(tmp_path):
    marker = tmp_path / "pwned"
    payload = _Marker()
    payload.path = marker
    evil = tmp_path / "model.safetensors"
    evil.write_bytes(pickle.dumps(payload))
    with pytest.raises(RnnlabError, match="never unpickles"):
        load_model_weights(evil, LanguageModel(5, hidden_size=4, embedding_dim=4))
    assert not marker.exists()


def test_model_weights_round_trip_with_tied_weights(tmp_path):
    a = LanguageModel(7, hidden_size=8, embedding_dim=8, tie_weights=True)
    save_model(tmp_path / "m.safetensors", a, {"step": 5})
    b = LanguageModel(7, hidden_size=8, embedding_dim=8, tie_weights=True)
    assert load_model_weights(tmp_path / "m.safetensors", b) == {"step": 5}
    for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), k
    with pytest.raises(RnnlabError, match="does not fit this model's config"):
        load_model_weights(tmp_path / "m.safetensors", LanguageModel(7, hidden_size=9, embedding_dim=8))
