"""The inspect page's style and script: the text coloured by one unit, the picker, the hover probe.

The script reads one JSON block (``<script type="application/json" id="data">``, see
:func:`rnnlab.inspect.page.page_data`) and is driven by the URL fragment, so a link or a headless
browser can choose what is shown: ``#unit=L:U`` colours the text by unit ``U`` of layer ``L`` (its
``h``), ``&signal=c`` (or ``i, f, o, r, z``) by another of its signals, ``&pos=N`` opens the probe at
character ``N``. Picking from the list or clicking a row of the feature table sets the fragment.
"""

# Local fonts only: a @font-face or stylesheet link would be a network fetch.
CSS = """
:root { --ink: #1d2330; --muted: #5b6475; --line: #dde2ea; --paper: #f5f7fa; --accent: #2f5fb3; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--paper); color: var(--ink);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", "Noto Sans", "DejaVu Sans",
  "Noto Sans CJK SC", "WenQuanYi Zen Hei", sans-serif; }
main { max-width: 1160px; margin: 0 auto; padding: 24px; }
header { border-bottom: 3px solid var(--accent); margin-bottom: 18px; }
h1 { margin: 0 0 6px; font-size: 26px; } h1 span { color: var(--muted); font-weight: 400; }
h2 { margin: 0 0 10px; font-size: 19px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 18px;
  margin-bottom: 16px; }
.note { color: var(--muted); }
.controls { display: flex; flex-wrap: wrap; gap: 8px 18px; align-items: center; margin-bottom: 10px; }
#legend { display: inline-flex; align-items: center; gap: 6px; color: var(--muted); font-size: 13px; }
#legend i { display: inline-block; width: 140px; height: 12px; border: 1px solid var(--line); }
#text { white-space: pre-wrap; word-break: break-all; max-height: 62vh; overflow: auto; padding: 10px;
  font: 15px/1.6 "DejaVu Sans Mono", Menlo, Consolas, "WenQuanYi Zen Hei Mono", monospace;
  border: 1px solid var(--line); border-radius: 4px; }
#text span.at { outline: 2px solid var(--ink); }
#probe { min-height: 3.2em; margin-top: 10px; padding: 8px 10px; background: var(--paper);
  border-radius: 4px; font-size: 14px; }
#probe b { font-family: "DejaVu Sans Mono", Menlo, monospace; }
#probe .next { display: inline-block; margin-right: 12px; }
table { border-collapse: collapse; width: 100%; }
td, th { text-align: left; vertical-align: top; padding: 4px 10px 4px 0;
  border-bottom: 1px solid var(--line); }
th { color: var(--muted); font-weight: 600; }
tr[data-hash] { cursor: pointer; } tr[data-hash]:hover { background: var(--paper); }
button.unit { font: 13px "DejaVu Sans Mono", Menlo, monospace; margin: 0 4px 3px 0; padding: 1px 6px;
  border: 1px solid var(--line); border-radius: 10px; background: #fff; cursor: pointer; }
tr.chosen, button.unit.chosen { background: #e6edf8; }
footer { color: var(--muted); font-size: 12px; text-align: center; padding: 8px; }
"""

SCRIPT = r"""
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
function bytes(b64) {
  const s = atob(b64), a = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) a[i] = s.charCodeAt(i);
  return a;
}
const chars = Array.from(D.text), T = D.chars, K = D.k;
const acts = new Int8Array(bytes(D.acts).buffer);  // (tracks, T): round(127 * value / scale)
const idBytes = bytes(D.top_ids).buffer;
const topIds = D.id_bytes === 2 ? new Uint16Array(idBytes) : new Uint32Array(idBytes);  // (T, K)
const topP = bytes(D.top_probs);  // (T, K): round(255 * probability)
const GATES = new Set(["i", "f", "o", "r", "z"]);
const key = (s, l, u) => s + " " + l + ":" + u;
function hashKey(fragment) {  // "unit=L:U&signal=S" -> "S L:U" (h when no signal); null without a unit
  const p = new URLSearchParams(fragment);
  return p.get("unit") ? (p.get("signal") || "h") + " " + p.get("unit") : null;
}
const index = new Map(D.tracks.map((t, n) => [key(t[0], t[1], t[2]), n]));

function mix(a, b, t) {
  return "rgb(" + a.map((x, j) => Math.round(x + (b[j] - x) * t)).join(",") + ")";
}
const WHITE = [255, 255, 255], RED = [214, 39, 40], BLUE = [31, 119, 180], GREEN = [27, 120, 55];
const SIGNED = [], GATE = [];  // colour of each q in -127..127
for (let q = -127; q <= 127; q++) {
  const t = q / 127;
  SIGNED.push(t >= 0 ? mix(WHITE, RED, t) : mix(WHITE, BLUE, -t));
  GATE.push(mix(WHITE, GREEN, Math.max(t, 0)));
}

const box = document.getElementById("text"), probe = document.getElementById("probe");
const spans = [], frag = document.createDocumentFragment();
chars.slice(0, T).forEach((ch, i) => {
  const s = document.createElement("span");
  s.textContent = ch;
  s.dataset.i = i;
  spans.push(s);
  frag.appendChild(s);
});
box.appendChild(frag);

const pick = document.getElementById("pick");
const notes = new Map();  // track -> "feature r" labels from the feature table
document.querySelectorAll("button.unit").forEach((b) => {
  const k = hashKey(b.dataset.hash);
  notes.set(k, (notes.has(k) ? notes.get(k) + ", " : " — ") + b.dataset.label);
});
D.tracks.forEach((t, n) => {
  const o = document.createElement("option");
  o.value = n;
  o.textContent = t[0] + " · layer " + t[1] + " · unit " + t[2] + (notes.get(key(t[0], t[1], t[2])) || "");
  pick.appendChild(o);
});
pick.addEventListener("change", () => {
  const t = D.tracks[pick.value];
  location.hash = "unit=" + t[1] + ":" + t[2] + (t[0] === "h" ? "" : "&signal=" + t[0]);
});

let current = 0, at = -1;
function value(n, i) { return acts[n * T + i] / 127 * D.tracks[n][3]; }
function apply(n) {
  current = n;
  const t = D.tracks[n], gate = GATES.has(t[0]), palette = gate ? GATE : SIGNED, off = n * T;
  for (let i = 0; i < spans.length; i++) spans[i].style.backgroundColor = palette[acts[off + i] + 127];
  pick.value = n;
  document.body.dataset.track = key(t[0], t[1], t[2]);
  const bar = document.createElement("i");
  bar.style.background = "linear-gradient(to right, " +
    (gate ? [GATE[127], GATE[254]] : [SIGNED[0], SIGNED[127], SIGNED[254]]).join(", ") + ")";
  document.getElementById("legend").replaceChildren((gate ? "0" : (-t[3]).toFixed(3)) + " ", bar,
    " " + t[3].toFixed(3));
  document.querySelectorAll(".chosen").forEach((e) => e.classList.remove("chosen"));
  document.querySelectorAll("[data-hash]").forEach((e) => {
    if (hashKey(e.dataset.hash) === document.body.dataset.track) e.classList.add("chosen");
  });
  if (at >= 0) show(at);
}
function shown(ch) { return ch === "\n" ? "↵" : ch === " " ? "␣" : ch === "\t" ? "⇥" : ch; }
function show(i) {
  if (at >= 0) spans[at].classList.remove("at");
  at = i;
  spans[i].classList.add("at");
  const t = D.tracks[current];
  probe.textContent = "";
  const head = document.createElement("div");
  const ch = Object.assign(document.createElement("b"), {textContent: shown(chars[i])});
  head.append("position " + i + " ", ch,
    " · " + t[0] + " " + t[1] + ":" + t[2] + " = " + value(current, i).toFixed(3) + " · next:");
  probe.append(head);
  for (let j = 0; j < K; j++) {
    const s = document.createElement("span");
    s.className = "next";
    s.append(Object.assign(document.createElement("b"), {textContent: shown(D.tokens[topIds[i * K + j]])}),
      " " + (topP[i * K + j] / 2.55).toFixed(1) + "%");
    probe.append(s);
  }
}
box.addEventListener("mouseover", (e) => {
  if (e.target.dataset.i !== undefined) show(+e.target.dataset.i);
});
document.getElementById("features").addEventListener("click", (e) => {
  const hit = e.target.closest("[data-hash]");
  if (hit) location.hash = hit.dataset.hash;
});

function fromHash() {
  const p = new URLSearchParams(location.hash.slice(1)), want = hashKey(location.hash.slice(1));
  const missing = document.getElementById("missing");
  missing.textContent = want && !index.has(want) ? "(" + want + " is not on this page)" : "";
  apply(want && index.has(want) ? index.get(want) : D.start);
  const pos = parseInt(p.get("pos"), 10);
  if (pos >= 0 && pos < spans.length) {
    show(pos);
    spans[pos].scrollIntoView({block: "nearest"});
  }
}
window.addEventListener("hashchange", fromHash);
fromHash();
"""
