"""Each experiment's quick setting shows the direction of its effect; the CLI writes its report."""

import argparse
import json
import math

import pytest

from rnnlab.cli import experiment as experiment_cli
from rnnlab.errors import RnnlabError
from rnnlab.experiments import EXPERIMENTS, adding, bidirectional_leak, copy, products


def by(rows, key):
    return {row[key]: row for row in rows}


def test_products_vanish_explode_and_the_fixes(tmp_path):
    result = products.run(quick=True, out=tmp_path)
    deepest = by(result.rows, "L")[30]
    assert deepest["plain x0.2"] == pytest.approx(0.2**30, rel=1e-6)  # the notes' 1e-21
    assert deepest["plain x5"] == pytest.approx(5.0**30, rel=1e-6)  # and 9e20
    assert 0.1 < deepest["residual x0.2"] < 10  # skips stop the vanishing...
    assert deepest["residual x5"] > 1e15  # ...but not a gain-5 branch
    assert 0.1 < deepest["batchnorm x0.2"] < 10 and 0.1 < deepest["batchnorm x5"] < 10
    assert (tmp_path / "products-quick.png").stat().st_size > 0


@pytest.mark.slow
def test_adding_rnn_fails_where_gated_cells_solve(tmp_path):
    result = adding.run(quick=True, out=tmp_path)
    rows = by(result.rows, "cell")
    assert rows["rnn"]["test loss"] > 0.1 and not rows["rnn"]["solved"]  # stuck near the 0.167 baseline
    assert rows["gru"]["solved"] and rows["lstm"]["solved"]  # test MSE < 0.04
    assert [rows[c]["gradients"] for c in ("rnn", "gru", "lstm")] == ["vanishing", "healthy", "healthy"]
    curves = result.extra["dldh"]
    assert all(len(c[-1]["dldh"]) == 50 for c in curves.values())
    assert (tmp_path / "adding-quick.png").stat().st_size > 0


@pytest.mark.slow
def test_copy_gated_cells_beat_the_memoryless_baseline():
    result = copy.run(quick=True)
    rows = by(result.rows, "cell")
    base = copy.baseline(10)
    assert rows["rnn"]["baseline"] == pytest.approx(10 * math.log(8) / 30)
    assert rows["rnn"]["test loss"] > 0.95 * base  # remembers nothing
    assert min(rows["gru"]["test loss"], rows["lstm"]["test loss"]) < 0.8 * base


@pytest.mark.slow
def test_bidirectional_model_copies_the_answer_and_fails_without_it():
    rows = by(bidirectional_leak.run(quick=True).rows, "model")
    bi, uni = rows["bidirectional"], rows["unidirectional"]
    assert bi["train loss"] < 0.5 * uni["train loss"]  # it reads the next character
    assert bi["held-out, past only"] > bi["held-out, whole window"] + 2  # sampling hides it


def parse(argv):
    parser = argparse.ArgumentParser(prog="rnnlab")
    experiment_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    args.argv = argv
    return args


def test_cli_runs_an_experiment_and_writes_its_report(tmp_path, capsys):
    argv = ["experiment", "products", "--quick", "--out", str(tmp_path)]
    assert experiment_cli.run(parse(argv)) == 0
    assert "plain x0.2" in capsys.readouterr().out
    report = json.loads((tmp_path / "products-quick.json").read_text())
    assert report["command"] == "rnnlab experiment products --quick --out " + str(tmp_path)
    assert report["setting"] == "quick" and len(report["rows"]) == len(products.DEPTHS)
    assert "| L |" in (tmp_path / "products-quick.md").read_text()
    assert (tmp_path / "products-quick.png").is_file()
    with pytest.raises(RnnlabError, match="--steps"):
        experiment_cli.run(parse(["experiment", "products", "--steps", "5", "--out", str(tmp_path)]))
    assert set(EXPERIMENTS) == {"products", "adding", "copy", "bidirectional-leak"}
