// The live page of `streams ui`. It loads the run once (/api/run), then applies what the
// server sends over server-sent events (/events): stream states, the run's phase, new log
// lines, journal entries. Everything from the run is put in with textContent (the `el`
// helper); the only markup inserted is the server's SVG (escaped in Rust) and highlight.js's
// output (which escapes the text it is given).
"use strict";

const TOKEN = document.querySelector('meta[name="streams-token"]').content;
const LOG_KEEP = 1000;

let run = null;          // the /api/run document
let selected = null;     // the stream shown in the detail pane
let lastPhase = null;    // to notify on a change only
const told = new Set();  // the run's ends the person was told of (phase and outcome or stream)
const toldParked = new Set(); // the streams parked now that the person was told of
let looked = false;      // the page had its first look at the run (which tells nothing)
let pending = [];        // events that came before the document
const logs = new Map();  // stream -> {task, lines, end}

// ---------------------------------------------------------------------------------------------
// Small helpers

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function $(id) { return document.getElementById(id); }

function stateClass(word) { return "st-" + String(word).replace(/ /g, "-"); }

function badge(word) { return el("span", { class: "badge " + stateClass(word) }, word); }

function duration(ms) {
  if (ms < 1000) return ms + "ms";
  if (ms < 60000) return (ms / 1000).toFixed(1) + "s";
  if (ms < 3600000) return Math.floor(ms / 60000) + "m" + String(Math.floor(ms / 1000) % 60).padStart(2, "0") + "s";
  return Math.floor(ms / 3600000) + "h" + String(Math.floor(ms / 60000) % 60).padStart(2, "0") + "m";
}

function short(id) { return id ? String(id).slice(0, 10) : ""; }

async function getJson(url) {
  const response = await fetch(url, { credentials: "same-origin" });
  const body = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

// Server-rendered SVG (escaped in Rust), parsed as SVG, never as HTML.
async function loadSvg(url, target) {
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) return;
  const doc = new DOMParser().parseFromString(await response.text(), "image/svg+xml");
  const svg = doc.documentElement;
  if (svg.nodeName !== "svg") return;
  target.replaceChildren(document.importNode(svg, true));
}

function streamOf(name) { return run && run.streams.find((s) => s.name === name); }

// ---------------------------------------------------------------------------------------------
// The whole run

// Loads overlap (each phase change starts one): only the latest one's answer is applied, so
// an older answer arriving late never shows the run as it was before.
let loads = 0;

async function loadRun() {
  const load = ++loads;
  let doc;
  try {
    doc = await getJson("/api/run");
  } catch (e) {
    if (load !== loads) return;
    run = null;
    $("content").hidden = true;
    $("empty").hidden = false;
    $("empty").replaceChildren(el("p", {}, e.message));
    $("run-title").textContent = "";
    $("run-actions").replaceChildren();
    return;
  }
  if (load !== loads) return;
  run = doc;
  $("empty").hidden = true;
  $("content").hidden = false;
  document.title = "streams " + run.run.id + ": " + run.status.phase;
  $("run-title").textContent = "run " + run.run.id + " of plan " + run.run.plan;
  $("facts").textContent = "base " + short(run.run.base) + " · " + run.run.integration_branch +
    " at " + short(run.run.integration_tip);
  setPhase(run.status.phase, run.outcome, run.status.parked.length ? run.status.parked[0].stream : null);
  // A stream that parked reaches the page by its `stream` event or by a load like this one,
  // whichever comes first; the other finds the person told.
  for (const s of run.streams) {
    if (s.word !== "parked") toldParked.delete(s.name);
    else if (!toldParked.has(s.name)) {
      toldParked.add(s.name);
      if (looked) notifyParked(s.name);
    }
  }
  looked = true;
  for (const s of run.streams) {
    if (!logs.has(s.name) || logs.get(s.name).task !== s.log_task) {
      logs.set(s.name, { task: s.log_task, lines: s.log_tail.slice(), end: 0 });
    }
  }
  renderBoard();
  renderConflict();
  loadJournal();
  await Promise.all([loadSvg("/graph.svg", $("graph")).then(wireGraph), loadSvg("/timeline.svg", $("timeline"))]);
  const wanted = decodeURIComponent(location.hash.slice(1));
  // The stream to show: the one chosen, else the one that needs the person.
  const needs = run.streams.find((s) => s.word === "conflict" || s.word === "parked") || run.streams.find((s) => s.word === "failed");
  if (selected && streamOf(selected)) select(selected);
  else if (wanted && streamOf(wanted)) select(wanted);
  else if (needs) select(needs.name);
  const queued = pending;
  pending = [];
  for (const [name, data] of queued) apply(name, data);
}

// A change of phase reaches the page two ways: the `phase` event and a load of the whole run.
// A load started by one event can answer after the run moved on (a continue that ends in
// 200 ms), so whichever source shows an end first tells the person, and the other finds it
// told. The page's first look tells nothing: the person saw that already.
function setPhase(phase, outcome, halted) {
  const word = phase === "halted" ? "conflict" : phase === "finished" ? outcome : phase;
  const b = $("outcome");
  b.className = "badge " + stateClass(word);
  b.textContent = phase === "finished" ? outcome : phase;
  const banner = $("banner");
  if (phase === "halted" && halted) {
    banner.hidden = false;
    banner.className = stateClass("conflict");
    banner.textContent = "The run is halted: a conflict in stream " + halted +
      " waits for you. Resolve it in the resolution workspace below, then continue.";
  } else if (phase === "running" && halted) {
    // Parked while the rest runs: the person can start on it now.
    banner.hidden = false;
    banner.className = stateClass("parked");
    banner.textContent = "Stream " + halted + " is parked on a conflict; the rest of the run goes on. " +
      "Resolve it in its resolution workspace below; continue it once the run halts.";
  } else if (phase === "interrupted") {
    banner.hidden = false;
    banner.className = stateClass("interrupted");
    banner.textContent = "The run was interrupted; resume it to go on.";
  } else {
    banner.hidden = true;
  }
  renderRunActions(phase, halted);
  const ends = ["halted", "finished", "aborted", "interrupted"].includes(phase);
  const key = phase === "halted" ? phase + "|" + halted : phase + "|" + outcome;
  if (ends && lastPhase !== null && lastPhase !== phase && !told.has(key)) {
    told.add(key);
    notifyPerson(phase, outcome, halted);
  }
  // Running again (a continue, a resume): the next end is news even if it ends the same way.
  if (phase === "running") told.clear();
  lastPhase = phase;
}

function notifyPerson(phase, outcome, halted) {
  const title = phase === "halted" ? "streams: the run is halted" : "streams: the run " + (phase === "finished" ? "ended: " + outcome : "is " + phase);
  const body = phase === "halted" ? "A conflict in " + halted + " waits for you." : (run ? "run " + run.run.id : "");
  raiseNotification(title, body);
}

// A stream parked on a conflict while the rest of the run goes on.
function notifyParked(stream) {
  raiseNotification("streams: " + stream + " is parked on a conflict", "Resolve it while the rest of the run goes on.");
}

function raiseNotification(title, body) {
  if ("Notification" in window && Notification.permission === "granted") {
    try { new Notification(title, { body }); } catch (e) { /* some browsers only notify from a worker */ }
  }
}

// ---------------------------------------------------------------------------------------------
// Actions: each runs the `streams` command itself, after the person confirms

const ACTIONS = {
  continue: { label: (s) => s ? "Continue " + s : "Continue", primary: true, text: (s) => "Record the resolution of " + (s || "the parked stream") + " in its resolution workspace, on the integration as it is now, and resume the run, as `streams continue` does." },
  skip: { label: (s) => "Skip " + s, text: (s) => "Leave stream " + s + "'s unintegrated work out of the run (its branch is kept) and resume, as `streams skip` does." },
  abort: { label: "Abort run", danger: true, text: () => "Stop the run and put the integration branch back where the run found it; stream branches are kept, as `streams abort` does." },
  resume: { label: "Resume", primary: true, text: () => "Pick up the interrupted run, as `streams resume` does." },
  retry: { label: (s) => "Retry " + s, text: (s) => "Run stream " + s + " again on top of what is integrated, as `streams retry` does." },
  stop: { label: (s) => "Stop " + s, danger: true, text: (s) => "Stop stream " + s + "'s agent and let the rest of the run go on; its work is kept and `streams retry " + s + "` continues it, as `streams stop` does." },
  merge: { label: "Merge into my branch", primary: true, text: () => "Take the integration branch into the branch checked out in your repository (a fast-forward), as `streams merge` does." },
};

function actionButton(action, stream) {
  const spec = ACTIONS[action];
  const label = typeof spec.label === "function" ? spec.label(stream) : spec.label;
  return el("button", {
    type: "button",
    class: spec.primary ? "primary" : spec.danger ? "danger" : null,
    "data-action": action,
    "data-stream": stream || null,
    onclick: () => confirmAction(action, stream),
  }, label);
}

function renderRunActions(phase, halted) {
  const bar = $("run-actions");
  const buttons = [];
  if (phase === "halted") {
    buttons.push(actionButton("continue", halted));
    if (halted) buttons.push(actionButton("skip", halted));
    buttons.push(actionButton("abort"));
  } else if (phase === "running") {
    buttons.push(actionButton("abort"));
  } else if (phase === "interrupted") {
    buttons.push(actionButton("resume"), actionButton("abort"));
  } else if (phase === "finished") {
    buttons.push(actionButton("merge"));
  }
  bar.replaceChildren(...buttons);
}

function confirmAction(action, stream) {
  const dialog = $("confirm");
  $("confirm-text").textContent = ACTIONS[action].text(stream);
  $("confirm-command").textContent = "streams " + action + (stream ? " " + stream : "");
  $("confirm-cancel").onclick = () => dialog.close();
  $("confirm-run").onclick = () => { dialog.close(); runAction(action, stream); };
  dialog.showModal();
}

let actionId = null;

async function runAction(action, stream) {
  const box = $("action-log");
  box.hidden = false;
  box.classList.remove("failed");
  $("action-command").textContent = "streams " + action + (stream ? " " + stream : "");
  $("action-result").textContent = "starting…";
  $("action-output").textContent = "";
  let outcome;
  try {
    const response = await fetch("/api/action", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-Streams-Token": TOKEN },
      body: JSON.stringify({ action, stream: stream || null }),
    });
    outcome = await response.json().catch(() => ({ error: response.statusText }));
    if (!response.ok) throw new Error(outcome.error || response.statusText);
  } catch (e) {
    box.classList.add("failed");
    $("action-result").textContent = "refused";
    $("action-output").textContent = e.message;
    return;
  }
  actionId = outcome.id;
  $("action-command").textContent = outcome.command;
  $("action-output").textContent = outcome.output.join("\n");
  showActionEnd(outcome.running, outcome.exit);
}

function showActionEnd(running, exit) {
  const box = $("action-log");
  if (running) {
    $("action-result").textContent = "running…";
  } else if (exit === 0) {
    $("action-result").textContent = "done";
  } else {
    box.classList.add("failed");
    $("action-result").textContent = "ended with exit code " + exit;
  }
}

// ---------------------------------------------------------------------------------------------
// The board: streams grouped by what they need

const GROUPS = [
  // A stopped stream waits for `streams retry`.
  ["Needs you", ["conflict", "parked", "failed", "stopped"]],
  ["Working", ["running", "setting up", "waiting", "active", "pending"]],
  ["Done", ["integrated", "skipped", "aborted"]],
];

function renderBoard() {
  const board = $("board");
  const sections = [];
  for (const [title, words] of GROUPS) {
    const members = run.streams.filter((s) => words.includes(s.word));
    if (!members.length) continue;
    sections.push(el("h3", {}, title + " (" + members.length + ")"));
    for (const s of members) sections.push(boardRow(s));
  }
  board.replaceChildren(...sections);
}

// What a row says when the agent has printed nothing (yet).
const FALLBACK = {
  pending: "waiting to start",
  running: "its agent runs (no output yet)",
  "setting up": "its workspace's setup runs",
  waiting: "its work waits for integration",
  conflict: "its integration conflicts: see below",
};

function boardRow(s) {
  const done = s.tasks.filter((t) => t.status === "committed" || t.status === "integrated").length;
  return el("button", {
    type: "button",
    class: "row" + (s.name === selected ? " selected" : ""),
    "data-stream": s.name,
    onclick: () => select(s.name),
  },
  el("span", { class: "top" }, el("span", { class: "name" }, s.name), badge(s.word),
    el("span", { class: "tasks" }, done + "/" + s.tasks.length + " tasks")),
  el("span", { class: "activity", title: s.reason || s.activity || null },
    // Why it stopped matters more than what it last said.
    (s.word === "failed" || s.word === "skipped" ? s.reason || s.activity : s.activity || s.reason) ||
      FALLBACK[s.word] || ""));
}

function wireGraph() {
  for (const node of document.querySelectorAll("#graph .node")) {
    node.addEventListener("click", () => select(node.getAttribute("data-stream")));
    node.classList.toggle("selected", node.getAttribute("data-stream") === selected);
  }
}

// ---------------------------------------------------------------------------------------------
// One stream

async function select(name) {
  selected = name;
  history.replaceState(null, "", "#" + encodeURIComponent(name));
  for (const row of document.querySelectorAll("#board .row")) {
    row.classList.toggle("selected", row.getAttribute("data-stream") === name);
  }
  for (const node of document.querySelectorAll("#graph .node")) {
    node.classList.toggle("selected", node.getAttribute("data-stream") === name);
  }
  renderDetail();
  try {
    const log = await getJson("/api/stream/" + encodeURIComponent(name) + "/log");
    logs.set(name, { task: log.task, lines: log.lines, end: log.end });
    if (selected === name) renderLog();
  } catch (e) { /* no log yet */ }
  loadDiff(name);
}

function renderDetail() {
  const s = streamOf(selected);
  const pane = $("detail");
  if (!s) {
    pane.replaceChildren(el("p", { class: "muted" }, "Choose a stream to see its tasks, log and diff."));
    return;
  }
  const parts = [el("h2", {}, s.name, badge(s.word),
    el("span", { class: "muted" }, "+" + s.insertions + "/−" + s.deletions + " in " + s.files.length + " file(s)"))];
  if (s.cost) parts.push(el("p", { class: "muted" }, "cost: " + JSON.stringify(s.cost)));
  if (s.reason) parts.push(el("p", { class: "reason" }, s.reason));
  parts.push(el("p", { class: "muted" }, "branch ", el("code", {}, s.branch),
    s.depends_on.length ? " · after " + s.depends_on.join(", ") : ""));
  const actions = [];
  if (run.status.phase === "halted" && run.status.parked.some((p) => p.stream === s.name)) {
    actions.push(actionButton("continue", s.name), actionButton("skip", s.name));
  }
  if (run.status.phase === "running" && (s.word === "running" || s.word === "setting up")) {
    actions.push(actionButton("stop", s.name));
  }
  if (run.status.phase === "finished" && ["failed", "skipped", "stopped"].includes(s.word)) {
    actions.push(actionButton("retry", s.name));
  }
  if (actions.length) parts.push(el("div", { class: "actions" }, actions));
  parts.push(el("h3", {}, "Tasks"));
  parts.push(el("ol", { class: "tasks" }, s.tasks.map((t) => el("li", {},
    t.text, " — ", badge(t.status === "committed" || t.status === "integrated" ? t.status : t.status),
    " ", el("span", { class: "muted" }, t.attempts + " attempt(s), " + duration(t.time_ms)),
    t.reason ? el("div", { class: "reason" }, t.reason) : null))));
  if (s.rejections.length) {
    parts.push(el("h3", {}, "Refused files"));
    parts.push(el("ul", { class: "plain" }, s.rejections.map((r) => el("li", {},
      "task " + r.task + ": ",
      el("code", {}, r.paths.map((p) => p.path + (p.owner ? " (owned by " + p.owner + ")" : " (owned by no stream)")).join(", ")),
      "; its work is kept on ", el("code", {}, r.kept)))));
  }
  if (s.kept.length) {
    parts.push(el("h3", {}, "Work kept aside"));
    parts.push(el("ul", { class: "plain" }, s.kept.map((k) => el("li", {}, el("code", {}, k.name), " at ", el("code", {}, short(k.commit))))));
  }
  if (s.checks.length) {
    parts.push(el("h3", {}, "Checks"));
    parts.push(el("ul", { class: "plain" }, s.checks.map((c) => el("li", {}, c.kind + ": ",
      badge(c.outcome === "ok" ? "ok" : "failed"), " ", el("span", { class: "muted" }, duration(c.time_ms)),
      c.reason ? el("span", { class: "reason" }, " " + c.reason) : null))));
  }
  if (s.conflict) {
    parts.push(el("h3", {}, "Conflict"));
    parts.push(el("p", {}, "in ", el("code", {}, s.conflict.files.join(", ")),
      s.conflict.resolution ? ", resolved by " + short(s.conflict.resolution) : "",
      s.conflict.resolve_in ? el("span", {}, "; resolve in ", el("code", {}, s.conflict.resolve_in)) : null));
  }
  if (s.notes.length) {
    parts.push(el("h3", {}, "Notes"));
    parts.push(el("ul", { class: "plain" }, s.notes.map((n) => el("li", {}, n))));
  }
  parts.push(el("h3", { id: "log-title" }, "Log"));
  parts.push(el("pre", { class: "log", id: "log" }));
  parts.push(el("h3", { class: "diff-head" }, "Diff ",
    el("button", { type: "button", class: "small" + (diffMode === "unified" ? " on" : ""), "data-mode": "unified", onclick: () => setDiffMode("unified") }, "unified"),
    el("button", { type: "button", class: "small" + (diffMode === "split" ? " on" : ""), "data-mode": "split", onclick: () => setDiffMode("split") }, "side by side")));
  parts.push(el("div", { id: "diff" }, el("p", { class: "muted" }, "loading…")));
  pane.replaceChildren(...parts);
  renderLog();
}

function renderLog() {
  const pre = $("log");
  if (!pre) return;
  const log = logs.get(selected);
  const s = streamOf(selected);
  $("log-title").textContent = log && log.task ? "Log of task " + log.task + " of " + (s ? s.tasks.length : "?") : "Log";
  pre.textContent = log && log.lines.length ? log.lines.join("\n") : "(nothing yet)";
  pre.scrollTop = pre.scrollHeight;
}

// How diffs are shown: "unified" or "split" (side by side), kept for the next visit.
let diffMode = localStorage.getItem("streams-diff-mode") === "split" ? "split" : "unified";
let shownDiff = null; // [stream, diff] last drawn

function setDiffMode(mode) {
  diffMode = mode;
  localStorage.setItem("streams-diff-mode", mode);
  for (const b of document.querySelectorAll(".diff-head button")) b.classList.toggle("on", b.getAttribute("data-mode") === mode);
  if (shownDiff && shownDiff[0] === selected) drawDiff(shownDiff[0], shownDiff[1]);
}

async function loadDiff(name) {
  let diff;
  try {
    diff = await getJson("/api/stream/" + encodeURIComponent(name) + "/diff");
  } catch (e) {
    diff = { files: [], error: e.message };
  }
  drawDiff(name, diff);
}

function drawDiff(name, diff) {
  const box = $("diff");
  if (!box || selected !== name) return;
  shownDiff = [name, diff];
  if (!diff.files.length) {
    box.replaceChildren(el("p", { class: "muted" }, diff.error || "no change yet"));
    return;
  }
  box.replaceChildren(...diff.files.map(fileDiff));
  if (diff.truncated) box.append(el("p", { class: "muted" }, "The diff is cut here; `streams diff " + name + "` shows it whole."));
}

function fileDiff(f) {
  const adds = f.lines.filter((l) => l.kind === "add").length;
  const dels = f.lines.filter((l) => l.kind === "del").length;
  const title = f.renamed_from ? f.renamed_from + " → " + f.path : f.path;
  const body = f.binary ? el("p", { class: "muted" }, " binary file")
    : diffMode === "split" ? splitTable(f.lines, f.lang) : diffTable(f.lines, f.lang);
  return el("details", { class: "file", open: true },
    el("summary", {}, el("span", { class: "path" }, title), " ", el("span", { class: "muted" }, "+" + adds + "/−" + dels)), body);
}

// Highlighted lines at most per table: beyond, plain text (a huge diff stays usable).
const HIGHLIGHT_LINES = 3000;

// A line of code, coloured while the table's budget of highlighted lines lasts.
function codeOf(text, lang, budget) {
  const code = el("code", {}, text);
  if (lang && window.hljs && hljs.getLanguage(lang) && budget.left > 0) {
    budget.left--;
    // highlight.js escapes the text; its result is its own markup of spans.
    code.innerHTML = hljs.highlight(text, { language: lang, ignoreIllegals: true }).value;
  }
  return code;
}

function sign(kind) { return kind === "add" ? "+" : kind === "del" ? "−" : ""; }

function diffTable(lines, lang) {
  const table = el("table", { class: "diff" });
  const budget = { left: HIGHLIGHT_LINES };
  for (const l of lines) {
    if (l.kind === "hunk" || l.kind === "meta") {
      table.append(el("tr", { class: l.kind }, el("td", { class: "sign" }), el("td", {}, l.text)));
      continue;
    }
    table.append(el("tr", { class: l.kind },
      el("td", { class: "sign" }, sign(l.kind)),
      el("td", { class: "code" }, codeOf(l.text, lang, budget))));
  }
  return table;
}

// Side by side: the old file left, the new right; removed and added lines of one change face
// each other.
function splitTable(lines, lang) {
  // Fixed layout takes its widths from the columns, not from the first row (a hunk's line).
  const table = el("table", { class: "diff split" },
    el("colgroup", {}, el("col", { class: "sign" }), el("col", {}), el("col", { class: "sign" }), el("col", {})));
  const budget = { left: HIGHLIGHT_LINES };
  const half = (l) => l
    ? [el("td", { class: "sign " + l.kind }, sign(l.kind)), el("td", { class: "code " + l.kind }, codeOf(l.text, lang, budget))]
    : [el("td", { class: "sign empty" }), el("td", { class: "code empty" })];
  let dels = [];
  let adds = [];
  const flush = () => {
    for (let i = 0; i < Math.max(dels.length, adds.length); i++) table.append(el("tr", {}, half(dels[i]), half(adds[i])));
    dels = [];
    adds = [];
  };
  for (const l of lines) {
    if (l.kind === "del") { if (adds.length) flush(); dels.push(l); continue; }
    if (l.kind === "add") { adds.push(l); continue; }
    flush();
    if (l.kind === "hunk" || l.kind === "meta") {
      table.append(el("tr", { class: l.kind }, el("td", { class: "sign" }), el("td", { colspan: "3" }, l.text)));
    } else {
      table.append(el("tr", { class: "context" }, half(l), half(l)));
    }
  }
  flush();
  return table;
}

// ---------------------------------------------------------------------------------------------
// The conflict

function renderConflict() {
  $("conflict-section").hidden = !run.conflicts.length;
  $("conflict").replaceChildren(...run.conflicts.map(conflictCard));
}

function conflictCard(c) {
  const parts = [
    el("p", {}, "Stream ", el("strong", {}, c.stream), " conflicts with the integration branch in ",
      el("code", {}, c.files.map((f) => f.path).join(", ")), "."),
    el("p", {}, "Resolve it in ", el("code", { class: "resolution-worktree" }, c.resolution_worktree),
      " (edit the files, remove the markers, `git add` them), then continue."),
    el("div", { class: "actions" }, actionButton("continue"), actionButton("skip", c.stream), actionButton("abort")),
  ];
  for (const f of c.files) {
    parts.push(el("h3", {}, el("code", {}, f.path)));
    parts.push(el("div", { class: "sides" },
      el("div", {}, el("div", { class: "muted" }, "what the integration branch did"), diffTable(f.integration, f.lang)),
      el("div", {}, el("div", { class: "muted" }, "what ", el("strong", {}, c.stream), " did"), diffTable(f.stream, f.lang))));
    parts.push(el("details", { class: "file" }, el("summary", {}, "the file with conflict markers"),
      el("pre", { class: "text" }, f.conflicted)));
  }
  if (c.proposal && c.proposal.refused) {
    parts.push(el("h3", {}, "The resolver's resolution was refused"),
      el("p", { class: "proposal-refused" }, c.proposal.refused));
  } else if (c.proposal) {
    // Accepting is `streams continue STREAM`: the proposal is what the resolution workspace holds.
    const accept = actionButton("continue", c.stream);
    accept.textContent = "Accept the resolution";
    accept.setAttribute("data-accept", "");
    parts.push(el("h3", {}, "Proposed resolution, by ", el("code", {}, c.proposal.resolver)),
      el("p", { class: "muted" }, "It passed streams' checks: no markers, only the conflicted regions changed, the checks and the gate green. Edit it in the resolution workspace first if you like."),
      el("div", { class: "proposal" }, diffTable(c.proposal.diff, null)),
      el("div", { class: "actions proposal-actions" }, accept));
  }
  parts.push(el("details", { class: "file", open: true }, el("summary", {}, "the bundle's README (" + c.bundle + ")"),
    el("pre", { class: "text bundle-readme" }, c.readme)));
  return el("div", { class: "conflict-card", "data-stream": c.stream }, parts);
}

// ---------------------------------------------------------------------------------------------
// Live events

let timelineTimer = null;
function redrawTimeline() {
  if (timelineTimer) return;
  timelineTimer = setTimeout(() => { timelineTimer = null; loadSvg("/timeline.svg", $("timeline")); }, 300);
}

function apply(name, data) {
  if (!run && name !== "run" && name !== "resync" && name !== "action") {
    pending.push([name, data]);
    return;
  }
  switch (name) {
    case "run":
    case "resync":
      selected = null;
      loadRun();
      break;
    case "phase":
      setPhase(data.phase, data.outcome, data.halted || null);
      // A halt brings its conflict, an end its final figures: read the run again once.
      loadRun();
      break;
    case "stream": {
      const s = streamOf(data.name);
      if (!s) { loadRun(); break; }
      const parks = data.word === "parked" && !toldParked.has(data.name);
      if (data.word !== "parked") toldParked.delete(data.name);
      s.word = data.word;
      s.reason = data.reason || s.reason;
      for (const node of document.querySelectorAll("#graph .node")) {
        if (node.getAttribute("data-stream") !== data.name) continue;
        node.setAttribute("class", "node " + stateClass(data.word) + (data.name === selected ? " selected" : ""));
        const state = node.querySelector(".state");
        if (state) state.textContent = data.word;
        const tasks = node.querySelector(".tasks");
        if (tasks) tasks.textContent = data.tasks_done + "/" + data.tasks;
      }
      // Task outcomes and figures: the stream's part of the document, read again.
      refreshStream(data.name);
      redrawTimeline();
      if (parks) {
        // The person is told at once, and the conflict comes with the run read again.
        toldParked.add(data.name);
        notifyParked(data.name);
        loadRun();
      }
      break;
    }
    case "timeline":
      redrawTimeline();
      break;
    case "journal":
      addJournal(data);
      break;
    case "log": {
      let log = logs.get(data.stream);
      if (!log || log.task !== data.task) {
        log = { task: data.task, lines: [], end: 0 };
        logs.set(data.stream, log);
      }
      if (data.end <= log.end) break;
      log.end = data.end;
      log.lines.push(...data.lines);
      if (log.lines.length > LOG_KEEP) log.lines.splice(0, log.lines.length - LOG_KEEP);
      const s = streamOf(data.stream);
      if (s && data.lines.length) {
        s.activity = data.lines[data.lines.length - 1];
        for (const row of document.querySelectorAll("#board .row")) {
          if (row.getAttribute("data-stream") === data.stream) row.querySelector(".activity").textContent = s.activity;
        }
      }
      if (data.stream === selected) renderLog();
      break;
    }
    case "action":
      if (data.id === actionId) {
        const out = $("action-output");
        if (data.lines.length) out.textContent += (out.textContent ? "\n" : "") + data.lines.join("\n");
        if (data.exit !== undefined && data.exit !== null) showActionEnd(false, data.exit);
      }
      break;
  }
}

const refreshing = new Set();
// A stream's part of the document, read again when its state changed (its tasks' outcomes,
// commits, files): one stream, not the whole run.
async function refreshStream(name) {
  if (refreshing.has(name)) return;
  refreshing.add(name);
  try {
    const fresh = await getJson("/api/stream/" + encodeURIComponent(name));
    const index = run ? run.streams.findIndex((s) => s.name === name) : -1;
    if (index < 0) return;
    fresh.activity = run.streams[index].activity || fresh.activity;
    run.streams[index] = fresh;
    renderBoard();
    if (selected === name) { renderDetail(); loadDiff(name); }
  } catch (e) { /* the next event tries again */ } finally {
    refreshing.delete(name);
  }
}

async function loadJournal() {
  try {
    const entries = await getJson("/api/journal");
    $("journal").replaceChildren();
    for (const entry of entries) addJournal(entry);
  } catch (e) { /* shown as it comes */ }
}

function addJournal(data) {
  const list = $("journal");
  const e = data.entry || {};
  const step = String(e.step || "").replace(/_/g, " ");
  const who = e.stream ? e.stream + (e.task !== undefined ? " task " + (e.task + 1) : "") : "";
  const time = new Date(data.at).toLocaleTimeString();
  // A budget nearly spent says which and how much (`80 % of the plan budget: 850 tokens of 1000`).
  const what = e.step === "budget_warning" ? " · 80 % of the " + e.budget + " budget: " + e.spent : "";
  list.prepend(el("li", {}, el("time", {}, time), step, who ? " · " + who : "", what));
  while (list.children.length > 200) list.lastChild.remove();
}

function connect() {
  const source = new EventSource("/events");
  const live = $("live");
  source.onopen = () => { live.className = "live on"; live.textContent = "● live"; };
  source.onerror = () => { live.className = "live off"; live.textContent = "○ reconnecting"; };
  for (const name of ["run", "phase", "stream", "timeline", "journal", "log", "action", "resync"]) {
    source.addEventListener(name, (event) => {
      let data = {};
      try { data = JSON.parse(event.data); } catch (e) { return; }
      apply(name, data);
    });
  }
}

$("notify").addEventListener("click", async () => {
  if (!("Notification" in window)) { $("notify").textContent = "no notifications here"; return; }
  const permission = await Notification.requestPermission();
  $("notify").textContent = permission === "granted" ? "Notifications on" : "Notifications blocked";
});

connect();
loadRun();
