"""`rnnlab inspect`: recorded states equal the model's forward, features and correlations are right, a
trained model's quote unit is found, and the page renders and recolours in headless Chromium."""

import hashlib
import json
import random
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import last_json, tiny_run_argv
from test_report import CHROMIUM, Tags, chromium_or_skip

from rnnlab.cli import main
from rnnlab.errors import RnnlabError
from rnnlab.inspect import FEATURES, inspect_run, parse_features, pearson, rank_units, record
from rnnlab.inspect import features as F
from rnnlab.inspect.activations import record_layers
from rnnlab.inspect.page import page_tracks
from rnnlab.model import LanguageModel
from rnnlab.rundir import RunDir


def quoted_text(chars: int, seed: int) -> str:
    """Lower-case words with runs of UPPER-CASE words in double quotes: after a space inside quotes the
    next letter is upper case, so a model must remember that it is inside."""
    rng, parts, inside = random.Random(seed), [], False
    while sum(map(len, parts)) < chars:
        words = [
            "".join(rng.choice("abcdefgh") for _ in range(rng.randint(1, 4)))
            for _ in range(rng.randint(2, 5))
        ]
        parts.append('"' + " ".join(words).upper() + '" ' if inside else " ".join(words) + " ")
        inside = not inside
    return "".join(parts)[:chars]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, corpus_file):
    """Tiny runs on the shared corpus (2 layers, residual; word-level; one without its model), and a
    16-unit LSTM trained on quoted text (and one trained for a single step)."""
    root = tmp_path_factory.mktemp("inspect")
    assert main(tiny_run_argv(corpus_file, root / "tiny", num_layers=2, max_steps=10)) == 0
    assert main(tiny_run_argv(corpus_file, root / "words", tokens="word", max_steps=2)) == 0
    shutil.copytree(root / "tiny", root / "nomodel", ignore=shutil.ignore_patterns("model.safetensors"))
    (root / "quotes.txt").write_text(quoted_text(12_000, 0), encoding="utf-8")
    (root / "held.txt").write_text(quoted_text(3_000, 1), encoding="utf-8")
    quotes = dict(hidden_size=16, num_steps=32, batch_size=8, eval_every=300, ngram="off", seed=0)
    assert main(tiny_run_argv(root / "quotes.txt", root / "quotes", max_steps=300, **quotes)) == 0
    assert main(tiny_run_argv(root / "quotes.txt", root / "untrained", max_steps=1, **quotes)) == 0
    return root


# --- correlation ----------------------------------------------------------------------------------------


def test_pearson_is_numpys_corrcoef():
    rng = np.random.default_rng(0)
    series, features = rng.normal(size=(6, 200)), rng.normal(size=(200, 3))
    features[:, 1] = 0.7 * series[2] + 0.3 * features[:, 1]  # one strong relation among the noise
    expected = np.corrcoef(series, features.T)[:6, 6:]  # (N, K) block of the joint matrix
    np.testing.assert_allclose(pearson(series, features), expected, rtol=1e-12, atol=1e-12)


def test_constant_units_and_features_give_no_nan():
    series = np.stack([np.zeros(50), np.arange(50.0)])  # a dead unit and a ramp
    r = pearson(series, np.stack([np.arange(50.0), np.ones(50)], axis=1))
    assert r.tolist() == [[0.0, 0.0], [pytest.approx(1.0), 0.0]]
    signals = {"h": series[None].transpose(0, 2, 1)}  # (L=1, T=50, H=2)
    ramp, flat = rank_units(signals, ["ramp", "flat"], np.stack([np.arange(50.0), np.full(50, 3.0)], 1))
    assert (ramp.units[0].unit, ramp.units[0].corr, ramp.constant) == (1, pytest.approx(1.0), None)
    assert (flat.units, flat.constant, flat.control) == ((), 3.0, None)


def test_rank_units_orders_by_absolute_correlation():
    rng = np.random.default_rng(1)
    feature = rng.normal(size=400)
    h = rng.normal(size=(2, 400, 4))  # (L, T, H)
    h[1, :, 2] = -feature + 0.1 * rng.normal(size=400)  # the best unit is anti-correlated
    h[0, :, 3] = feature + 0.8 * rng.normal(size=400)
    (scores,) = rank_units({"h": h}, ["f"], feature[:, None], top=3)
    assert [(u.layer, u.unit) for u in scores.units[:2]] == [(1, 2), (0, 3)]
    assert scores.units[0].corr < -0.99 and scores.control < 0.3


# --- features -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("feature", "text", "expected"),
    [
        (F.inside_quotes, 'a "b c" d', [0, 0, 1, 1, 1, 1, 0, 0, 0]),
        (F.inside_quotes, "说「你『好』」了", [0, 1, 1, 1, 1, 1, 0, 0]),
        (F.inside_quotes, "”x“y", [0, 0, 1, 1]),  # a stray closer is ignored
        (F.bracket_depth, "f(a[b]{c}))x", [0, 1, 1, 2, 2, 1, 2, 2, 1, 0, 0, 0]),
        (F.line_position, "ab\ncd\n\ne", [0, 1, 2, 0, 1, 2, 0, 0]),
        (F.word_start, "hi  you_2 x.y", [1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1]),
        (F.digit, "a1٣b", [0, 1, 1, 0]),
        (F.upper, "aBÉ1", [0, 1, 1, 0]),
        (F.whitespace, "a b\n\tc", [0, 1, 0, 1, 1, 0]),
        (F.cjk, "ab分開かな한。！x", [0, 0, 1, 1, 1, 1, 1, 1, 1, 0]),
    ],
)
def test_feature_on_hand_made_text(feature, text, expected):
    assert feature(text).tolist() == expected


def test_user_regex_features():
    features = parse_features(["vowel=[aeiou]", "the=\\bthe\\b"])
    assert list(features) == [*FEATURES, "vowel", "the"]
    assert features["the"]("the other the").tolist() == [1, 1, 1] + [0] * 7 + [1, 1, 1]
    for spec, message in [("x=(", "does not compile"), ("novalue", "NAME=REGEX"), ("digit=1", "taken")]:
        with pytest.raises(RnnlabError, match=message):
            parse_features([spec])


# --- recording ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", ["torch", "scratch"])
@pytest.mark.parametrize(
    ("cell", "options"),
    [("lstm", {}), ("gru", {}), ("rnn", {}), ("lstm", {"encoder": "onehot"}), ("gru", {"weight_drop": 0.5})],
)
def test_recorded_states_are_the_models_forward(impl, cell, options):
    torch.manual_seed(0)
    model = LanguageModel(11, cell, impl, hidden_size=6, num_layers=2, embedding_dim=5, **options).double()
    ids = torch.randint(11, (40,))
    _, signals = record_layers(model.eval(), ids)
    out = model(ids[None])
    torch.testing.assert_close(signals["h"][-1], out.outputs[0], rtol=0, atol=1e-12)  # the top layer
    final = out.state if cell == "lstm" else (out.state,)  # every layer's last h (and c)
    for name, state in zip(("h", "c"), final, strict=False):
        torch.testing.assert_close(signals[name][:, -1], state[:, 0], rtol=0, atol=1e-12)
    if cell == "lstm":  # the gates are consistent with the states they made: h = o * tanh(c)
        torch.testing.assert_close(signals["h"], signals["o"] * torch.tanh(signals["c"]))


@pytest.mark.parametrize(
    ("cell", "gates"), [("lstm", {"i": 1.0, "f": 2.0, "o": 4.0}), ("gru", {"r": 1.0, "z": 2.0})]
)
def test_gates_come_in_torchs_order(cell, gates):
    model = LanguageModel(5, cell, hidden_size=3, embedding_dim=4).eval()
    chunks = 4 if cell == "lstm" else 3
    with torch.no_grad():
        for p in model.rnn.parameters():
            p.zero_()
        model.rnn.bias_ih_l0.copy_(torch.arange(1.0, chunks + 1).repeat_interleave(3))  # chunk k = k + 1
    _, signals = record_layers(model, torch.tensor([0, 1, 2]))
    for name, preactivation in gates.items():
        torch.testing.assert_close(signals[name], torch.full((1, 3, 3), preactivation).sigmoid())


def test_top_predictions_are_the_models_own(runs):
    ins = inspect_run(runs / "tiny", chars=60)
    run = RunDir(runs / "tiny")
    model, _ = run.load_model()
    ids = torch.as_tensor(run.load_vocab().encode(ins.text).astype(np.int64))
    with torch.no_grad():
        logits = model(ids[None]).logits[0]  # the n-gram's share included: a residual model
    assert ins.recording.top_ids[:, 0].tolist() == logits.argmax(-1).tolist()
    np.testing.assert_allclose(ins.recording.top_probs[:, 0], logits.softmax(-1).max(-1).values, rtol=1e-5)
    assert ins.recording.forward_diff < 1e-5 and record(model, ids).signals["h"].shape == (2, 60, 16)


# --- a unit that learnt where the quotes are ------------------------------------------------------------


def test_inspect_finds_the_unit_that_tracks_quotes(runs):
    ins = inspect_run(runs / "quotes", runs / "held.txt")
    scores = ins.scores[list(FEATURES).index("inside_quotes")]
    best = scores.units[0]
    assert abs(best.corr) > 0.75 and scores.control < 0.3, scores  # 0.89 and 0.06 as measured
    inside = F.inside_quotes(ins.text)
    states = np.concatenate([ins.recording.signals[s][0].T for s in ("h", "c")])  # (2H, T)
    shuffled = np.random.default_rng(0).permutation(inside)
    assert np.abs(pearson(states, shuffled[:, None])).max() < 0.15  # the control: no text, no unit
    spaces = np.array([ch == " " for ch in ins.text])  # the same character in and out: only memory tells
    assert np.abs(pearson(states[:, spaces], inside[spaces, None])).max() > 0.75  # 0.88
    untrained = inspect_run(runs / "untrained", runs / "held.txt").recording.signals
    states = np.concatenate([untrained[s][0].T for s in ("h", "c")])
    assert np.abs(pearson(states[:, spaces], inside[spaces, None])).max() < 0.6  # 0.48: training made it


# --- the command ----------------------------------------------------------------------------------------


def test_json_and_human_output(runs, capsys, tmp_path):
    page = tmp_path / "tiny.html"
    argv = ["inspect", str(runs / "tiny"), "--chars", "80", "--feature", "vowel=[aeiou]", "--out", str(page)]
    assert main([*argv, "--json"]) == 0
    doc = last_json(capsys.readouterr().out)
    assert (doc["chars"], doc["layers"], doc["hidden_size"], doc["cell"]) == (80, 2, 16, "lstm")
    assert doc["page"] == str(page) and page.is_file() and doc["forward_diff"] < 1e-5
    assert [f["feature"] for f in doc["features"]] == [*FEATURES, "vowel"]
    for f in doc["features"]:
        if f["constant"] is None:
            assert len(f["units"]) == 5 and set(f["units"][0]) == {"layer", "unit", "signal", "corr"}
            corrs = [abs(u["corr"]) for u in f["units"]]
            assert corrs == sorted(corrs, reverse=True) and f["units"][0]["signal"] in ("h", "c")
        else:
            assert f["units"] == [] and f["control"] is None
    assert {f["feature"]: f["constant"] for f in doc["features"]}["digit"] == 0.0  # no digits in the corpus
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "digit: constant on this text (0)" in out and out.strip().endswith(f"page: {page}")


def snapshot(root: Path) -> dict:
    files = (p for p in sorted(root.rglob("*")) if p.is_file())
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["{root}/nowhere"], "nowhere does not exist"),
        (["{root}"], "not an rnnlab run directory"),
        (["{root}/nomodel"], "has no model.safetensors"),
        (["{root}/words"], "reads character-level runs"),
        (["{tiny}", "--text", "{root}/nope.txt"], "--text: corpus file"),
        (["{tiny}", "--text", "{root}"], "is a directory"),
        (["{tiny}", "--text", "{tiny}/model.safetensors"], "looks binary"),
        (["{tiny}", "--feature", "x=("], "--feature regex '(' does not compile"),
        (["{tiny}", "--feature", "nameonly"], "expected NAME=REGEX"),
        (["{tiny}", "--chars", "0"], "--chars: must be >= 1"),
        (["{tiny}", "--out", "{root}"], "is a directory"),
        (["{tiny}", "--out", "{root}/nowhere/p.html"], "p.html: directory"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(runs, capsys, extra, message):
    before = snapshot(runs)
    argv = [a.format(root=runs, tiny=runs / "tiny") for a in extra]
    assert main(["inspect", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert snapshot(runs) == before


def test_the_library_checks_chars_too(runs):
    with pytest.raises(RnnlabError, match="--chars must be an integer >= 1"):
        inspect_run(runs / "tiny", chars=0)


# --- the page -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def page(runs):
    out = runs / "quotes.html"
    assert main(["inspect", str(runs / "quotes"), "--text", str(runs / "held.txt"), "--out", str(out)]) == 0
    return out


def test_page_is_self_contained_and_small(runs, page):
    text = page.read_text(encoding="utf-8")
    tags = Tags(text).tags
    assert not [a for _, a in tags for k in ("src", "href", "srcset", "action") if a.get(k)]  # no fetches
    assert not re.search(r"@import|url\(|https?://", text)
    assert [t for t, _ in tags if t in ("link", "iframe", "object", "embed")] == []
    blob = re.search(r'<script type="application/json" id="data">(.*?)</script>', text, re.S).group(1)
    data = json.loads(blob)
    assert data["chars"] == 3000 and len(data["tracks"]) == 16 * 5  # every signal of every unit fits
    values = len(data["tracks"]) * data["chars"]  # int8, as base64: 4 characters per 3 values
    assert len(text.encode()) < values * 4 / 3 + 100_000  # the rest: text, predictions, markup, script
    ins = inspect_run(runs / "quotes", runs / "held.txt", chars=100)
    featured = {(u.signal, u.layer, u.unit) for s in ins.scores for u in s.units}
    assert set(page_tracks(ins, budget=100 * 3)) <= featured  # a full page keeps the table's units


def dump_dom(page: Path, fragment: str, tmp: Path) -> tuple[str, list[str]]:
    """The page's DOM after its script ran in headless Chromium at ``page#fragment``, and the console."""
    profile = tmp / f"profile-{hashlib.sha1(fragment.encode()).hexdigest()[:8]}"
    cmd = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--dump-dom",
        f"{page.resolve().as_uri()}#{fragment}",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, [line for line in done.stderr.splitlines() if re.search(r"CONSOLE[:(]", line)]


def colours(dom: str) -> np.ndarray:
    """``(T, 3)`` the background of each character of the coloured text."""
    found = re.findall(r'<span data-i="\d+"[^>]*?style="background-color: rgb\((\d+), (\d+), (\d+)\)', dom)
    return np.array(found, dtype=float)


def test_chromium_colours_the_text_by_the_unit_picked(runs, page, tmp_path):
    chromium_or_skip()
    ins = inspect_run(runs / "quotes", runs / "held.txt")
    best = ins.scores[list(FEATURES).index("inside_quotes")].units[0]
    chosen = f"unit={best.layer}:{best.unit}" + ("" if best.signal == "h" else f"&signal={best.signal}")
    dom, console = dump_dom(page, chosen + "&pos=7", tmp_path)
    assert console == [] and f'data-track="{best.signal} {best.layer}:{best.unit}"' in dom
    rgb = colours(dom)
    assert rgb.shape == (3000, 3)
    warmth = (rgb[:, 0] - rgb[:, 2]) * np.sign(best.corr)  # red above zero, blue below
    inside = F.inside_quotes(ins.text).astype(bool)
    assert warmth[inside].mean() - warmth[~inside].mean() > 60  # the quotes stand out in colour
    assert len(re.findall(r'<span class="next">', dom)) == 5 and "position 7 " in dom  # the probe
    other = (best.unit + 1) % 16
    dom, console = dump_dom(page, f"unit=0:{other}&signal=f", tmp_path)
    assert console == [] and f'data-track="f 0:{other}"' in dom
    assert colours(dom).shape == (3000, 3) and not np.array_equal(colours(dom), rgb)
