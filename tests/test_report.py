"""`rnnlab report`: a self-contained page (no fetches, pictures inline) that headless Chromium renders."""

import base64
import os
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from conftest import last_json, metric_records, tiny_run_argv

from rnnlab.cli import main
from rnnlab.report.build import TEMPERATURES

SECTIONS = ("summary", "learning-curves", "fit", "heatmap", "gradients", "samples", "config")
CHROMIUM = Path("/usr/bin/chromium")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory, corpus_file):
    """Two tiny runs: one with the gradient monitor on, one with it off."""
    root = tmp_path_factory.mktemp("report")
    monitored = tiny_run_argv(corpus_file, root / "run", hidden_size=32, max_steps=40, monitor_every=10)
    assert main(monitored) == 0  # hidden 32: the page's config table must show it
    assert main(tiny_run_argv(corpus_file, root / "quiet", max_steps=10, monitor_every=0)) == 0
    return root


@pytest.fixture(scope="module")
def page(runs):
    assert main(["report", str(runs / "run"), "--length", "80"]) == 0
    return runs / "run" / "report.html"


class Tags(HTMLParser):
    """Every start tag with its attributes, and the ids in the page."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def ids(self) -> set[str]:
        return {a["id"] for _, a in self.tags if "id" in a}


def test_page_is_self_contained(page):
    text = page.read_text(encoding="utf-8")
    tags = Tags(text).tags
    links = [v for _, a in tags for k, v in a.items() if k in ("src", "href", "srcset", "action") and v]
    # nothing fetched, from anywhere (a link to the run's own inspect page, beside it, is no fetch)
    assert not [v for v in links if not v.startswith("data:") and v != "inspect.html"], links
    assert not re.search(r"@import|url\(|https?://", text)
    assert not [t for t, _ in tags if t in ("script", "link", "iframe", "object", "embed")]
    images = [a["src"] for t, a in tags if t == "img"]
    assert len(images) == 2  # learning curves and the dL/dh_t heatmap
    for src in images:
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert png.startswith(PNG_MAGIC) and len(png) > 10_000


def test_page_has_every_section_and_the_runs_numbers(runs, page):
    text = page.read_text(encoding="utf-8")
    assert set(SECTIONS) <= Tags(text).ids()
    (test,) = metric_records(runs / "run", "test")
    (baseline,) = metric_records(runs / "run", "baseline")
    assert f"ppl {test['ppl']:.2f}" in text and f"val ppl {baseline['val_ppl']:.2f}" in text
    assert f"({baseline['val_loss']:.4f} nats)" in text  # the baseline line under the curves
    for label, _ in TEMPERATURES:
        assert f"<h3>{label}</h3>" in text
    assert text.count('<pre class="sample">') == len(TEMPERATURES)
    assert "Fit verdict" in text and "Gradient verdict" in text and "Remedies" in text
    assert '"hidden_size"' not in text and "<th>hidden_size</th><td>32</td>" in text  # config as a table


def test_run_without_monitor_says_so(runs, tmp_path):
    out = tmp_path / "quiet.html"
    assert main(["report", str(runs / "quiet"), "--out", str(out), "--length", "20"]) == 0
    tags = Tags(out.read_text(encoding="utf-8"))
    assert "no-monitor" in tags.ids()
    assert len([a for t, a in tags.tags if t == "img"]) == 1  # learning curves only
    assert not (runs / "quiet" / "report.html").exists()  # --out was honoured


def test_existing_report_is_regenerated(page, capsys):
    page.write_text("stale", encoding="utf-8")
    assert main(["report", str(page.parent), "--length", "10", "--json"]) == 0
    assert last_json(capsys.readouterr().out) == {"report": str(page)}
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


# --- headless Chromium ---------------------------------------------------------------------------------


def chromium_or_skip() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("RNNLAB_REQUIRE_CHROMIUM") == "1":
        pytest.fail(f"RNNLAB_REQUIRE_CHROMIUM=1 but {CHROMIUM} is missing (apt-get install chromium)")
    pytest.skip(f"headless Chromium not installed at {CHROMIUM} (apt-get install chromium)")


def render(html: Path, tmp: Path) -> tuple[np.ndarray, list[str]]:
    """Screenshot ``html`` in headless Chromium: the pixels (H, W, 3) uint8 and the console's lines."""
    shot = tmp / f"{html.stem}.png"
    cmd = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp / ('profile-' + html.stem)}", "--enable-logging=stderr", "--v=0",
        f"--screenshot={shot}", "--window-size=1200,2000", html.resolve().as_uri(),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    from matplotlib.image import imread

    pixels = (imread(shot)[..., :3] * 255).round().astype(np.uint8)
    console = [line for line in done.stderr.splitlines() if re.search(r"CONSOLE[:(]", line)]
    return pixels, console


def looks_rendered(pixels: np.ndarray) -> bool:
    """Many colours (text, plots, badges) and a fair share of ink, not an almost white page."""
    colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
    ink = (pixels.min(axis=-1) < 200).mean()
    return colours > 500 and ink > 0.03


def test_chromium_renders_the_report_without_console_errors(page, tmp_path):
    chromium_or_skip()
    pixels, console = render(page, tmp_path)
    assert pixels.shape == (2000, 1200, 3)
    assert console == []
    assert looks_rendered(pixels)


def test_the_chromium_checks_catch_a_broken_page(tmp_path):
    chromium_or_skip()
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><p>x</p><script>window.notAFunction();</script>", encoding="utf-8")
    pixels, console = render(broken, tmp_path)
    assert any("Uncaught" in line for line in console), console
    assert not looks_rendered(pixels)  # a near-blank page fails the picture check
