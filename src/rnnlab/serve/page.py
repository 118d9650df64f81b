"""The playground's one page: inline CSS and script, no fetches but the app's own /api/ routes.

One column per served run: the prompt and the knobs go to every run's ``POST /api/stream`` at once,
each column appends tokens as their events arrive, and hovering a token shows the model's top-5
alternatives at that position and the chosen units' activations.
"""

# Sent with the page: the browser itself refuses anything from elsewhere (scripts, styles, images,
# fonts, connections), so "self-contained" is enforced, not only intended.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'"
)

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>rnnlab playground</title>
<link rel="icon" href="data:,">
<style>
:root { --ink: #1f2937; --muted: #6b7280; --line: #e5e7eb; --accent: #2563eb; --bg: #f6f7f9; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, sans-serif; color: var(--ink); background: var(--bg); }
header { padding: 12px 24px; background: #111827; color: #f9fafb; font-size: 17px; }
header small { color: #9ca3af; margin-left: 8px; }
#controls { display: flex; flex-direction: column; gap: 10px; padding: 16px 24px; background: #fff;
  border-bottom: 1px solid var(--line); }
#prompt { width: 100%; min-height: 64px; padding: 8px; font: 15px/1.4 ui-monospace, monospace;
  border: 1px solid #cbd5e1; border-radius: 6px; resize: vertical; }
.knobs { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-end; }
.knobs label { display: flex; flex-direction: column; gap: 2px; font-size: 12px; color: var(--muted); }
.knobs input { width: 92px; padding: 4px 6px; border: 1px solid #cbd5e1; border-radius: 4px; }
#go { padding: 7px 18px; border: 0; border-radius: 6px; background: var(--accent); color: #fff;
  font-weight: 600; cursor: pointer; }
#go:disabled { opacity: 0.6; cursor: progress; }
#columns { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 16px;
  padding: 16px 24px; }
.column { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.column h2 { margin: 0; font-size: 15px; }
.meta, .status { color: var(--muted); font-size: 12px; }
.status.error { color: #b91c1c; }
.out { min-height: 7em; margin: 8px 0; white-space: pre-wrap; word-break: break-word;
  font: 15px/1.55 ui-monospace, monospace; }
.out .prefix { color: var(--muted); }
.out .tok { cursor: default; border-radius: 2px; }
.out .tok:hover, .out .tok.active { background: #fde68a; }
#hover { position: fixed; z-index: 10; min-width: 250px; padding: 10px 12px; background: #fff;
  border: 1px solid #cbd5e1; border-radius: 8px; box-shadow: 0 6px 20px rgba(0, 0, 0, 0.15);
  font-size: 13px; pointer-events: none; }
#hover h3 { margin: 0 0 6px; font-size: 13px; }
.alt { display: grid; grid-template-columns: 3.2em 1fr 4.2em; gap: 6px; align-items: center; }
.alt code { font: 14px ui-monospace, monospace; }
.alt.chosen { font-weight: 700; }
.bar { height: 9px; background: var(--accent); border-radius: 2px; }
.units { display: flex; gap: 3px; margin-top: 8px; }
.unit { position: relative; width: 14px; height: 40px; background: #f1f5f9; }
.unit i { position: absolute; left: 0; right: 0; }
.unit i.pos { bottom: 50%; background: #16a34a; }
.unit i.neg { top: 50%; background: #dc2626; }
</style>
</head>
<body>
<header><b>rnnlab</b> playground<small id="note"></small></header>
<form id="controls">
  <textarea id="prompt" placeholder="Type a prompt, then Generate (Ctrl+Enter)"></textarea>
  <div class="knobs">
    <label>temperature<input id="temperature" type="number" min="0" step="0.05"></label>
    <label>top-k<input id="top_k" type="number" min="1" step="1" placeholder="off"></label>
    <label>top-p<input id="top_p" type="number" min="0" max="1" step="0.05" placeholder="off"></label>
    <label>length<input id="length" type="number" min="0" step="1"></label>
    <label>seed<input id="seed" type="number" step="1" placeholder="random"></label>
    <label>beam width<input id="beam" type="number" min="1" step="1" placeholder="off"></label>
    <button id="go" type="submit">Generate</button>
  </div>
</form>
<main id="columns"></main>
<div id="hover" hidden></div>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const KNOBS = ["temperature", "top_k", "top_p", "length", "seed", "beam"];
const VISIBLE = { " ": "\u2423", "\\n": "\u23ce", "\\t": "\u21e5" };
const shown = (t) => [...t].map((c) => VISIBLE[c] || c).join("");
const make = (tag, cls, text) => {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  if (text !== undefined) el.textContent = text;
  return el;
};
let runs = [];

async function init() {
  const info = await (await fetch("/api/runs")).json();
  runs = info.runs;
  for (const k of KNOBS) if (info.defaults[k] != null) $(k).value = info.defaults[k];
  $("length").max = info.limits.max_length;
  $("beam").max = info.limits.max_beam;
  $("note").textContent = `${runs.length} run${runs.length > 1 ? "s" : ""}`;
  $("columns").replaceChildren(...runs.map(column));
}

function column(run) {
  const sec = make("section", "column");
  const facts = [run.cell.toUpperCase(), `${run.hidden_size} units`, `${run.vocab_size} ${run.unit}s`];
  if (run.residual) facts.push("n-gram residual");
  sec.append(make("h2", "", run.name), make("div", "meta", facts.join(" \u00b7 ")),
             make("pre", "out"), make("div", "status", "ready"));
  sec.dataset.run = run.index;
  return sec;
}

function request(run) {
  const body = { prefix: $("prompt").value, run };
  for (const k of KNOBS) {
    const raw = $(k).value.trim();
    if (raw !== "") body[k] = Number(raw);
  }
  return body;
}

async function generate(event) {
  event.preventDefault();
  $("go").disabled = true;
  try {
    await Promise.all([...document.querySelectorAll(".column")].map(stream));
  } finally {
    $("go").disabled = false;
  }
}

async function stream(sec) {
  const out = sec.querySelector(".out"), status = sec.querySelector(".status");
  out.replaceChildren();
  sec.tokens = [];
  delete sec.dataset.done;
  status.className = "status";
  status.textContent = "starting\u2026";
  try {
    const res = await fetch("/api/stream", { method: "POST", headers: { "Content-Type": "application/json" },
                                             body: JSON.stringify(request(Number(sec.dataset.run))) });
    if (!res.ok) throw new Error((await res.json().catch(() => ({}))).error || res.statusText);
    const reader = res.body.getReader(), decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buffer.indexOf("\\n")) >= 0) {
        handle(JSON.parse(buffer.slice(0, nl)), sec, out, status);
        buffer = buffer.slice(nl + 1);
      }
    }
  } catch (err) {
    status.className = "status error";
    status.textContent = err.message;
  }
}

function handle(ev, sec, out, status) {
  if (ev.type === "start") {
    out.append(make("span", "prefix", ev.prefix));
    sec.units = ev.units;
    sec.how = ev.seed == null ? "beam search" : `seed ${ev.seed}`;
    status.textContent = `streaming\u2026 (${sec.how})`;
  } else if (ev.type === "token") {
    const span = make("span", "tok", ev.text);
    span.dataset.i = sec.tokens.length;
    sec.tokens.push(ev);
    out.append(span);
  } else if (ev.type === "done") {
    status.textContent = `done: ${sec.tokens.length} tokens, ${sec.how}`;
    sec.dataset.done = "1";
  } else if (ev.type === "error") {
    throw new Error(ev.error);
  }
}

function showHover(span) {
  const sec = span.closest(".column"), ev = sec.tokens[Number(span.dataset.i)], panel = $("hover");
  const title = make("h3", "", `"${shown(ev.text)}" at position ${span.dataset.i}: top ${ev.top.length}`);
  const rows = ev.top.map(({ token, p }) => {
    const row = make("div", token === ev.text.trimStart() || token === ev.text ? "alt chosen" : "alt");
    const bar = make("div", "bar");
    bar.style.width = `${Math.max(1, p * 100)}%`;
    row.append(make("code", "", shown(token)), bar, make("span", "", `${(p * 100).toFixed(1)}%`));
    return row;
  });
  panel.replaceChildren(title, ...rows);
  if (ev.act) {
    const units = make("div", "units");
    ev.act.forEach((a, j) => {
      const cell = make("div", "unit"), bar = make("i", a >= 0 ? "pos" : "neg");
      bar.style.height = `${Math.min(50, Math.abs(a) * 50)}%`;
      cell.title = `unit ${sec.units[j]}: ${a.toFixed(3)}`;
      cell.append(bar);
      units.append(cell);
    });
    panel.append(make("div", "meta", `units ${sec.units.join(", ")} of the top layer`), units);
  }
  const box = span.getBoundingClientRect();
  panel.style.left = `${Math.max(4, Math.min(box.left, innerWidth - 280))}px`;
  panel.style.top = `${box.bottom + 8 + 200 > innerHeight ? box.top - 8 - 200 : box.bottom + 8}px`;
  panel.hidden = false;
  span.classList.add("active");
}

document.addEventListener("mouseover", (e) => {
  const span = e.target.closest && e.target.closest(".tok");
  document.querySelectorAll(".tok.active").forEach((s) => s.classList.remove("active"));
  if (span) showHover(span);
  else $("hover").hidden = true;
});
$("controls").addEventListener("submit", generate);
$("prompt").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) $("controls").requestSubmit();
});
init().catch((err) => { $("note").textContent = `could not list the runs: ${err.message}`; });
</script>
</body>
</html>
"""
