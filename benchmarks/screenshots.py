"""Screenshots of `rnnlab inspect`'s page and `rnnlab serve`'s playground, for results/ (the record).

    python benchmarks/screenshots.py RUN_DIR OTHER_RUN_DIR --out results

Needs the system Chromium (/usr/bin/chromium) and Playwright (the test extra). The inspect page opens
at a unit that tracks whitespace in the first run; the playground samples 300 characters from both
runs after "ROMEO:" with seed 7 and hovers the 13th character.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright import sync_api

CHROMIUM = "/usr/bin/chromium"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs=2, type=Path, metavar="RUN_DIR")
    parser.add_argument("--unit", default="0:12", help="the inspect page's unit, LAYER:UNIT (0:12)")
    parser.add_argument("--out", type=Path, default=Path("results"))
    args = parser.parse_args()
    page_file = Path(tempfile.mkdtemp()) / "inspect.html"
    rnnlab = [sys.executable, "-m", "rnnlab"]
    subprocess.run(
        [*rnnlab, "inspect", str(args.runs[0]), "--chars", "3000", "--out", str(page_file)], check=True
    )
    server = subprocess.Popen(
        [*rnnlab, "serve", *map(str, args.runs), "--port", "0"], stderr=subprocess.PIPE, text=True
    )
    url = re.search(r"http://127\.0\.0\.1:\d+/", server.stderr.readline()).group(0)
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{page_file.as_uri()}#unit={args.unit}&pos=200")
            time.sleep(1.5)
            page.screenshot(path=str(args.out / "inspect_page.png"))
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(url)
            page.locator(".column").nth(1).wait_for()
            page.fill("#length", "300")
            page.fill("#seed", "7")
            page.locator("#prompt").press_sequentially("ROMEO:\n", delay=20)
            page.click("#go")
            time.sleep(6)  # both columns stream their 300 characters
            page.locator(".column").first.locator(".tok").nth(12).hover()
            time.sleep(0.5)
            page.screenshot(path=str(args.out / "serve_page.png"))
            browser.close()
    finally:
        server.terminate()
    print(f"wrote {args.out / 'inspect_page.png'} and {args.out / 'serve_page.png'}")


if __name__ == "__main__":
    main()
