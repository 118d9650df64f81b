"""`rnnlab train --tensorboard`: the event file holds what metrics.jsonl holds, plus histograms and text."""

import sys

import pytest
from conftest import metric_records, tiny_run_argv

from rnnlab.cli import main

pytest.importorskip("tensorboard", reason="tensorboard is not installed (pip install 'rnnlab[tensorboard]')")

# 20 steps: 5 validations (step 0, where the residual network is still its n-gram, then every 5 steps;
# each with a sample and weight histograms) and 4 gradient readings; batches of 4 x 8 end no epoch
# (which would add a validation) before step 63.
SETTINGS = {"max_steps": 20, "eval_every": 5, "monitor_every": 5, "batch_size": 4, "num_steps": 8}


@pytest.fixture(scope="module")
def run(tmp_path_factory, corpus_file):
    run = tmp_path_factory.mktemp("tb") / "run"
    assert main(tiny_run_argv(corpus_file, run, tensorboard=True, **SETTINGS)) == 0
    return run


@pytest.fixture(scope="module")
def events(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert len(files) == 1
    acc = EventAccumulator(str(files[0]), size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
    return acc.Reload()


def test_scalars_equal_the_metrics_log(run, events):
    val = metric_records(run, "val")
    assert [r["step"] for r in val] == [0, 5, 10, 15, 20]
    logged = [(e.step, e.value) for e in events.Scalars("val/loss")]
    assert logged == [(r["step"], pytest.approx(r["loss"], rel=1e-5)) for r in val]
    train = metric_records(run, "train")
    # metrics.jsonl keeps 6 decimals (rnnlab.train.metrics), TensorBoard a float32: equal to 1e-6.
    assert [e.value for e in events.Scalars("train/lr")] == pytest.approx([r["lr"] for r in train], abs=1e-6)
    for tag in ("train/loss", "train/ppl", "train/bpc", "val/ppl", "val/bpc", "test/loss"):
        assert tag in events.Tags()["scalars"], tag
    grads = metric_records(run, "grad")
    assert len(grads) == 4
    clip = [e.value for e in events.Scalars("grad/clip_frac")]
    assert clip == pytest.approx([r["clip_frac"] for r in grads], abs=1e-6)
    assert any(t.startswith("grad/grad_norm/") for t in events.Tags()["scalars"])


def test_weight_histograms_and_samples(run, events):
    tags = events.Tags()
    assert "weights/decoder.weight" in tags["histograms"]
    histos = events.Histograms("weights/decoder.weight")
    assert [h.step for h in histos] == [r["step"] for r in metric_records(run, "val")]
    assert histos[-1].histogram_value.num > 0
    samples = metric_records(run, "sample")
    assert samples
    texts = events.Tensors("sample/no prefix/text_summary")  # add_text's tag
    assert len(texts) == len(samples)
    last = texts[-1].tensor_proto.string_val[0].decode("utf-8")
    assert samples[-1]["text"] in last


def test_off_by_default_writes_nothing(tmp_path, corpus_file):
    assert main(tiny_run_argv(corpus_file, tmp_path / "run", **{**SETTINGS, "max_steps": 5})) == 0
    assert (tmp_path / "run" / "metrics.jsonl").is_file() and not (tmp_path / "run" / "tensorboard").exists()


def test_missing_tensorboard_is_one_line_and_no_run(tmp_path, corpus_file, monkeypatch, capsys):
    for name in ("tensorboard", "torch.utils.tensorboard"):
        monkeypatch.setitem(sys.modules, name, None)  # import now raises ImportError
    out = tmp_path / "run"
    assert main(tiny_run_argv(corpus_file, out, tensorboard=True, **SETTINGS)) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        'rnnlab: error: --tensorboard needs the tensorboard package: pip install "rnnlab[tensorboard]"'
    ]
    assert not out.exists()
