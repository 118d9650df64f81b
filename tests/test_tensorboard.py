"""`rnnlab train --tensorboard`: the event file holds what metrics.jsonl holds, plus histograms and text."""

import json
import sys

import pytest

from rnnlab.cli import main

pytest.importorskip("tensorboard", reason="tensorboard is not installed (pip install 'rnnlab[tensorboard]')")

TEXT = "分开 不分开 我不能再想 我不要再想 我不 我不 我不能\n爱情来的太快就像龙卷风\n" * 30
TINY = ["--hidden-size", "16", "--embedding-dim", "8", "--batch-size", "4", "--num-steps", "8",
        "--max-steps", "20", "--eval-every", "5", "--monitor-every", "5", "--sample-length", "30",
        "--max-time", "none", "--quiet", "--preset", "default"]  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tb")
    (root / "c.txt").write_text(TEXT, encoding="utf-8")
    assert main(["train", str(root / "c.txt"), "--out", str(root / "run"), "--tensorboard", *TINY]) == 0
    return root / "run"


@pytest.fixture(scope="module")
def events(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert len(files) == 1
    acc = EventAccumulator(str(files[0]), size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
    return acc.Reload()


def records(run, event):
    lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == event]


def test_scalars_equal_the_metrics_log(run, events):
    val = records(run, "val")
    assert len(val) == 4
    logged = [(e.step, e.value) for e in events.Scalars("val/loss")]
    assert logged == [(r["step"], pytest.approx(r["loss"], rel=1e-5)) for r in val]
    train = records(run, "train")
    assert [e.value for e in events.Scalars("train/lr")] == pytest.approx([r["lr"] for r in train])
    for tag in ("train/loss", "train/ppl", "train/bpc", "val/ppl", "val/bpc", "test/loss"):
        assert tag in events.Tags()["scalars"], tag
    grads = records(run, "grad")
    clip = [e.value for e in events.Scalars("grad/clip_frac")]
    assert clip == pytest.approx([r["clip_frac"] for r in grads])
    assert any(t.startswith("grad/grad_norm/") for t in events.Tags()["scalars"])


def test_weight_histograms_and_samples(run, events):
    tags = events.Tags()
    assert "weights/decoder.weight" in tags["histograms"]
    histos = events.Histograms("weights/decoder.weight")
    assert [h.step for h in histos] == [r["step"] for r in records(run, "val")]
    assert histos[-1].histogram_value.num > 0
    samples = records(run, "sample")
    assert samples
    texts = events.Tensors("sample/no prefix/text_summary")  # add_text's tag
    assert len(texts) == len(samples)
    last = texts[-1].tensor_proto.string_val[0].decode("utf-8")
    assert samples[-1]["text"] in last


def test_off_by_default_writes_nothing(tmp_path):
    (tmp_path / "c.txt").write_text(TEXT, encoding="utf-8")
    flags = [a if a != "20" else "5" for a in TINY]  # --max-steps 5
    assert main(["train", str(tmp_path / "c.txt"), "--out", str(tmp_path / "run"), *flags]) == 0
    assert not (tmp_path / "run" / "tensorboard").exists()


def test_missing_tensorboard_is_one_line_and_no_run(tmp_path, monkeypatch, capsys):
    for name in ("tensorboard", "torch.utils.tensorboard"):
        monkeypatch.setitem(sys.modules, name, None)  # import now raises ImportError
    (tmp_path / "c.txt").write_text(TEXT, encoding="utf-8")
    out = tmp_path / "run"
    assert main(["train", str(tmp_path / "c.txt"), "--out", str(out), "--tensorboard", *TINY]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        'rnnlab: error: --tensorboard needs the tensorboard package: pip install "rnnlab[tensorboard]"'
    ]
    assert not out.exists()
