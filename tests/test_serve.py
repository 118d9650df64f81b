"""`rnnlab serve`: the JSON API (same text as the CLI, bad input, streaming, concurrency, several runs),
the command line, and the page in a real headless Chromium driven by Playwright."""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import uvicorn
from conftest import tiny_run_argv
from starlette.testclient import TestClient

from rnnlab.cli import main
from rnnlab.generate.beam import beam_text
from rnnlab.rundir import RunDir
from rnnlab.serve import MAX_BODY, MAX_LENGTH, bind, create_app, load_runs

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, corpus_file) -> list[Path]:
    """Two tiny runs: an LSTM on the n-gram (the default) and a plain GRU."""
    root = tmp_path_factory.mktemp("serve")
    assert main(tiny_run_argv(corpus_file, root / "lstm", max_steps=5)) == 0
    assert main(tiny_run_argv(corpus_file, root / "gru", cell="gru", ngram="off", max_steps=5)) == 0
    return [root / "lstm", root / "gru"]


@pytest.fixture(scope="module")
def client(runs) -> TestClient:
    return TestClient(create_app(load_runs(runs)))


def cli_generate(run: Path, capsys, *flags: str) -> str:
    capsys.readouterr()
    assert main(["generate", str(run), *flags]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(
    ("run", "body", "flags"),
    [
        (0, {"prefix": "the ", "length": 60, "seed": 3},
         ["--prefix", "the ", "--length", "60", "--seed", "3"]),
        ("gru", {"prefix": "a ", "length": 40, "seed": 9, "temperature": 1.3, "top_k": 5}, [
            "--prefix", "a ", "--length", "40", "--seed", "9", "--temperature", "1.3", "--top-k", "5"]),
        (1, {"prefix": "分开", "length": 30, "seed": 0, "top_p": 0.9, "temperature": 0},
         ["--prefix", "分开", "--length", "30", "--seed", "0", "--top-p", "0.9", "--temperature", "0"]),
        (0, {"length": 25, "seed": 4}, ["--length", "25", "--seed", "4"]),
    ],
)  # fmt: skip
def test_generate_gives_exactly_what_the_cli_prints(runs, client, capsys, run, body, flags):
    response = client.post("/api/generate", json={**body, "run": run})
    assert response.status_code == 200, response.text
    index = run if isinstance(run, int) else 1
    assert response.json()["text"] + "\n" == cli_generate(runs[index], capsys, *flags)
    assert response.json()["seed"] == body["seed"] and response.json()["run"] == runs[index].name


BAD = [
    (b"not json", 400, "not JSON"),
    (b"[1, 2]", 400, "must be a JSON object"),
    (b'{"prefix": "the", "colour": "red"}', 400, "unknown keys 'colour'"),
    (json.dumps({"length": MAX_LENGTH + 1}).encode(), 400, '"length" must be an integer from 0 to 2000'),
    (b'{"length": -1}', 400, '"length" must be'),
    (b'{"length": "50"}', 400, '"length" must be an integer'),
    (b'{"length": 5.5}', 400, '"length" must be an integer'),
    (b'{"prefix": "the \xce\xa9"}', 400, "not in run 'lstm''s vocabulary: '\u03a9'"),
    (b'{"prefix": 7}', 400, '"prefix" must be a string'),
    (b'{"temperature": -0.5}', 400, '"temperature" must be a number >= 0'),
    (b'{"temperature": NaN}', 400, "NaN is not a JSON number"),
    (b'{"temperature": "hot"}', 400, '"temperature" must be a number'),
    (b'{"top_k": 0}', 400, '"top_k" must be an integer >= 1'),
    (b'{"top_k": 999}', 400, "larger than the vocabulary"),
    (b'{"top_p": 1.5}', 400, '"top_p" must be a number in (0, 1]'),
    (b'{"seed": true}', 400, '"seed" must be an integer'),
    (b'{"seed": 1e30}', 400, '"seed" must be an integer'),
    (b'{"run": 2}', 400, '"run" 2 is out of range'),
    (b'{"run": "nope"}', 400, "\"run\" 'nope' is not served; served: lstm, gru"),
    (b'{"beam": 0}', 400, '"beam" must be an integer from 1 to 16'),
    (b'{"units": [0, 99]}', 400, '"units" [99] are beyond'),
    (b"\xff\xfe", 400, "not JSON"),
]


@pytest.mark.parametrize(("body", "status", "reason"), BAD)
@pytest.mark.parametrize("route", ["/api/generate", "/api/stream"])
def test_bad_input_gets_a_4xx_with_a_one_line_reason_and_the_server_keeps_serving(
    client, route, body, status, reason
):
    response = client.post(route, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert reason in error and "\n" not in error
    assert client.post(route, json={"prefix": "the ", "length": 5, "seed": 1}).status_code == 200


def test_request_size_is_limited_declared_or_not(client):
    big = json.dumps({"prefix": "a" * MAX_BODY}).encode()
    response = client.post("/api/generate", content=big)
    assert response.status_code == 413 and "limit is 16384" in response.json()["error"]
    chunked = client.post("/api/generate", content=iter([big[:9000], big[9000:]]))  # no Content-Length
    assert chunked.status_code == 413 and "over 16384 bytes" in chunked.json()["error"]


def test_wrong_method_and_unknown_path_answer_json(client):
    assert client.get("/api/generate").json() == {"error": "Method Not Allowed"}
    assert client.get("/nowhere").status_code == 404 and "error" in client.get("/nowhere").json()


def events(client, body: dict) -> list[dict]:
    response = client.post("/api/stream", json=body)
    assert response.status_code == 200 and response.headers["content-type"] == "application/x-ndjson"
    return [json.loads(line) for line in response.text.splitlines()]


def test_stream_events_carry_each_token_with_its_top_five(client, runs):
    body = {"prefix": "the ", "length": 40, "seed": 5, "temperature": 1.0}
    start, *tokens, done = events(client, body)
    assert start == {"type": "start", "run": "lstm", "seed": 5, "units": list(range(8)), "prefix": "the "}
    assert done == {"type": "done", "text": client.post("/api/generate", json=body).json()["text"]}
    assert len(tokens) == 40 and "".join(t["text"] for t in tokens) == done["text"][len("the ") :]
    vocab = RunDir(runs[0]).load_vocab()
    for token in tokens:
        assert set(token) == {"type", "text", "top", "act"} and token["type"] == "token"
        probs = [alt["p"] for alt in token["top"]]
        assert len(probs) == 5 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
        assert all(alt["token"] in vocab and alt["token"] != "<unk>" for alt in token["top"])
        assert len(token["act"]) == 8 and all(-1 <= a <= 1 for a in token["act"])
    # At temperature 1 the drawn token is one the model gave weight to: mostly among its top five.
    assert sum(t["text"] in [alt["token"] for alt in t["top"]] for t in tokens) >= 30


def test_stream_units_empty_prefix_and_beam(client, runs):
    start, first, *_ = events(client, {"length": 3, "seed": 1, "units": [15, 2], "run": 1})
    assert start["units"] == [15, 2] and first["act"] is None  # no state before the first character
    beam = {"prefix": "the ", "length": 30, "beam": 3}
    text = client.post("/api/generate", json=beam).json()["text"]
    model, _ = RunDir(runs[0]).load_model()
    assert text == "the " + beam_text(model, RunDir(runs[0]).load_vocab(), "the ", 30, 3)
    assert events(client, beam)[-1] == {"type": "done", "text": text}
    assert client.post("/api/generate", json={**beam, "seed": 1}).json() == {
        "text": text,
        "run": "lstm",
        "seed": None,
    }


def test_runs_are_listed_with_the_defaults_and_limits(client):
    info = client.get("/api/runs").json()
    assert [(r["index"], r["name"], r["cell"], r["residual"]) for r in info["runs"]] == [
        (0, "lstm", "lstm", True),
        (1, "gru", "gru", False),
    ]
    assert info["limits"] == {"max_length": 2000, "max_body_bytes": 16384, "max_beam": 16, "max_units": 16}
    assert info["defaults"]["temperature"] == 0.8 and info["defaults"]["length"] == 200


def test_the_page_is_self_contained(client):
    response = client.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert not re.search(r"https?://|@import|url\(", response.text)
    assert re.findall(r'(?:src|href)="([^"]*)"', response.text) == ["data:,"]


# --- a real server in a thread -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(runs):
    sock = bind("127.0.0.1", 0)
    config = uvicorn.Config(create_app(load_runs(runs)), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def post(url: str, path: str, body: dict) -> http.client.HTTPResponse:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    return conn.getresponse()


def test_concurrent_streams_with_different_seeds_each_get_their_own_text(server):
    """Both requests run at once in the server's thread pool; neither disturbs the other's RNG or state."""
    bodies = [{"prefix": "the ", "length": 600, "seed": seed, "temperature": 1.2} for seed in (11, 12)]
    barrier, texts = threading.Barrier(2), [None, None]

    def stream(i: int) -> None:
        barrier.wait()
        response = post(server, "/api/stream", bodies[i])
        texts[i] = [json.loads(line) for line in response.read().decode().splitlines()][-1]["text"]

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    alone = [json.loads(post(server, "/api/generate", body).read())["text"] for body in bodies]
    assert texts == alone and texts[0] != texts[1]


# --- the command line --------------------------------------------------------------------------------


def test_cli_missing_run_dir_and_port_in_use_are_one_line_errors(runs, tmp_path, capsys):
    assert main(["serve", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rnnlab: error: run directory") and err.count("\n") == 1
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", str(runs[0]), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"port {port} on 127.0.0.1 is in use" in err and err.count("\n") == 1
    assert main(["serve", str(runs[0]), "--port", "70000"]) == 2


def test_cli_serves_until_ctrl_c(runs):
    cmd = [sys.executable, "-m", "rnnlab", "serve", *map(str, runs), "--port", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line).group(0)
        assert "lstm, gru" in line
        with urllib.request.urlopen(url + "api/runs", timeout=30) as response:
            assert len(json.loads(response.read())["runs"]) == 2
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0 and "stopped" in err and "Traceback" not in err


# --- headless Chromium -------------------------------------------------------------------------------


def browser_or_skip():
    """Playwright's sync API, driving the system Chromium (never a downloaded browser)."""
    required = os.environ.get("RNNLAB_REQUIRE_CHROMIUM") == "1"
    if not CHROMIUM.exists():
        if required:
            pytest.fail(f"RNNLAB_REQUIRE_CHROMIUM=1 but {CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"headless Chromium not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright import sync_api
    except ImportError:
        if required:
            pytest.fail("RNNLAB_REQUIRE_CHROMIUM=1 but playwright is missing (pip install -e '.[test]')")
        pytest.skip("playwright not installed (pip install -e '.[test]')")
    return sync_api


ALL_DONE = "() => [...document.querySelectorAll('.column')].every((c) => c.dataset.done === '1')"
RECORD_GROWTH = """() => {
  window.growth = [];
  const out = document.querySelector('.column .out');
  new MutationObserver(() => window.growth.push(out.textContent.length)).observe(out, {childList: true});
}"""


def test_chromium_types_a_prompt_sees_text_stream_in_and_hovers_a_character(server, tmp_path):
    sync_api = browser_or_skip()
    problems: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(server + "/")
        page.locator(".column").nth(1).wait_for()
        page.fill("#length", "400")
        page.fill("#seed", "7")
        page.locator("#prompt").press_sequentially("the ", delay=20)  # key by key, as a person types
        page.evaluate(RECORD_GROWTH)
        page.click("#go")
        page.wait_for_function(ALL_DONE, timeout=60_000)
        shown = [out.text_content() for out in page.locator(".column .out").all()]
        growth = page.evaluate("window.growth")
        page.locator(".column").first.locator(".tok").nth(6).hover()
        panel = page.locator("#hover")
        panel.wait_for(state="visible")
        alternatives = panel.locator(".alt").all_text_contents()
        chosen = panel.locator(".alt.chosen").count()
        units = panel.locator(".unit").count()
        page.screenshot(path=str(tmp_path / "serve.png"))
        browser.close()
    if os.environ.get("RNNLAB_SERVE_SCREENSHOT"):
        shutil.copy(tmp_path / "serve.png", os.environ["RNNLAB_SERVE_SCREENSHOT"])
    bodies = [{"prefix": "the ", "length": 400, "seed": 7, "run": i} for i in range(2)]
    expected = [json.loads(post(server, "/api/generate", body).read())["text"] for body in bodies]
    assert shown == expected  # each column its run's text, as the API gives it
    assert len(set(growth)) >= 3 and growth[-1] == len(shown[0])  # it arrived in pieces, not at once
    assert len(alternatives) == 5 and all(re.search(r"\d+\.\d%$", a) for a in alternatives)
    assert chosen <= 1 and units == 8
    assert problems == []
