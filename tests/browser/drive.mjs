// Drives Debian's chromium (headless, through playwright-core from tests/tools) through one
// scenario of the web view's tests (tests/integration/web.rs), against a real `streams ui`
// serving a real run. Usage:
//
//   node drive.mjs SCENARIO JSON
//
// JSON holds the scenario's inputs (the page's address, the streams to expect, where to keep
// screenshots, ...). The script prints one JSON line of findings on stdout and exits 0, or
// prints why on stderr and exits 1. Every wait has a deadline; nothing sleeps blindly.

import { createRequire } from "node:module";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "..", "tools", "package.json"));
const { chromium } = require("playwright-core");

const [scenario, json] = process.argv.slice(2);
const args = JSON.parse(json || "{}");
const WAIT = 60_000;

const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--no-first-run", "--disable-sync",
  // Containers give /dev/shm little room; chromium then crashes its renderer without this.
  "--disable-dev-shm-usage",
];

function fail(message) {
  process.stderr.write(message + "\n");
  process.exit(1);
}

async function launch(options = {}) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "streams-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: args.chromium || "/usr/bin/chromium",
    headless: true,
    args: FLAGS,
    viewport: { width: 1360, height: 900 },
    ...options,
  });
  const page = context.pages()[0] || (await context.newPage());
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  return { context, page, errors, profile };
}

async function shot(page, name, options = {}) {
  if (!args.screenshots) return;
  fs.mkdirSync(args.screenshots, { recursive: true });
  await page.screenshot({ path: path.join(args.screenshots, name + ".png"), ...options });
}

// The state word of each stream in the graph, as the page shows it now.
async function graphStates(page) {
  return page.$$eval("#graph .node", (nodes) => Object.fromEntries(nodes.map((n) => [
    n.getAttribute("data-stream"), n.querySelector(".state").textContent,
  ])));
}

async function waitGraph(page, expect) {
  await page.waitForFunction((expect) => {
    const nodes = [...document.querySelectorAll("#graph .node")];
    const states = Object.fromEntries(nodes.map((n) => [n.getAttribute("data-stream"), n.querySelector(".state").textContent]));
    return Object.entries(expect).every(([name, word]) => states[name] === word);
  }, expect, { timeout: WAIT });
}

const scenarios = {
  // The graph shows every stream with its state, and follows the run without a reload.
  async live() {
    const { context, page, errors } = await launch();
    await page.goto(args.url);
    await page.waitForSelector("#graph .node", { timeout: WAIT });
    // A mark a reload would wipe.
    await page.evaluate(() => { window.__streamsMark = "same page"; });
    await waitGraph(page, args.first);
    const first = await graphStates(page);
    await page.click(`#board .row[data-stream="${args.select}"]`);
    await page.waitForFunction((text) => document.querySelector("#log") &&
      document.querySelector("#log").textContent.includes(text), args.log_text, { timeout: WAIT });
    await shot(page, "ui-running", { fullPage: true });
    // Let the agents go on.
    fs.writeFileSync(args.release, "go\n");
    await waitGraph(page, args.last);
    const last = await graphStates(page);
    const mark = await page.evaluate(() => window.__streamsMark);
    const navigations = await page.evaluate(() => performance.getEntriesByType("navigation").length);
    // The run's end follows its last stream's integration (reports are written first).
    await page.waitForFunction((word) => document.querySelector("#outcome").textContent === word,
      args.outcome, { timeout: WAIT });
    const badge = await page.textContent("#outcome");
    // Every step the run recorded gets its bar (the timeline is redrawn after each).
    await page.waitForFunction((n) => document.querySelectorAll("#timeline svg rect[class^=bar-]").length >= n,
      args.bars, { timeout: WAIT });
    const bars = await page.$$eval("#timeline svg rect[class^=bar-]", (r) => r.length);
    await shot(page, "ui-finished", { fullPage: true });
    await context.close();
    return { first, last, mark, navigations, badge, bars, errors };
  },

  // report.html with scripts off: the graph is there, drawn in SVG.
  async report() {
    const { context, page, errors } = await launch({ javaScriptEnabled: false });
    await page.goto("file://" + args.file);
    const states = await graphStates(page);
    const scripts = await page.evaluate(() => typeof window.hljs);
    const timeline = await page.$$eval("#timeline svg rect[class^=bar-]", (r) => r.length);
    const visible = await page.isVisible("#graph svg");
    await shot(page, "report-no-js", { fullPage: true });
    await context.close();
    return { states, scripts, timeline, visible, errors };
  },

  // A stream's log as the page shows it, live and as loaded.
  async secret() {
    const { context, page, errors } = await launch();
    await page.goto(args.url);
    await page.waitForSelector(`#board .row[data-stream="${args.select}"]`, { timeout: WAIT });
    await page.click(`#board .row[data-stream="${args.select}"]`);
    await page.waitForFunction((text) => document.querySelector("#log") &&
      document.querySelector("#log").textContent.includes(text), args.log_text, { timeout: WAIT });
    const log = await page.textContent("#log");
    const body = await page.evaluate(() => document.body.innerText);
    await shot(page, "ui-stream-log", { fullPage: true });
    await context.close();
    return { log, body, errors };
  },

  // A halted run: the conflict and the continue button; continue refused while unresolved
  // (with the CLI's words), then accepted once resolved, and the run ends.
  async conflict() {
    const { context, page, errors } = await launch();
    // The browser's notifications, as the page raises them (permission granted, as after a
    // click on "Notify me").
    await context.grantPermissions(["notifications"]);
    await page.addInitScript(() => {
      window.__notes = [];
      window.Notification = class {
        constructor(title, options) { window.__notes.push(title + " | " + ((options && options.body) || "")); }
        static get permission() { return "granted"; }
        static requestPermission() { return Promise.resolve("granted"); }
      };
      // A slow event stream, on demand: the run's `finished` phase event is held back until
      // released, so a load of the whole run can show the end first (as it did in CI once).
      window.__holdEnds = false;
      window.__held = [];
      const add = EventSource.prototype.addEventListener;
      EventSource.prototype.addEventListener = function (name, listener, options) {
        if (name !== "phase") return add.call(this, name, listener, options);
        return add.call(this, name, (event) => {
          let phase = null;
          try { phase = JSON.parse(event.data).phase; } catch (e) { /* the page says why */ }
          if (window.__holdEnds && phase === "finished") window.__held.push(() => listener(event));
          else listener(event);
        }, options);
      };
      window.__releaseEnds = () => {
        window.__holdEnds = false;
        for (const deliver of window.__held.splice(0)) deliver();
      };
    });
    await page.goto(args.url);
    await page.waitForSelector("#conflict-section:not([hidden])", { timeout: WAIT });
    const worktree = await page.textContent("#conflict .resolution-worktree");
    const readme = await page.textContent("#conflict .bundle-readme");
    const sides = await page.$$eval("#conflict table.diff", (t) => t.length);
    await shot(page, "ui-conflict", { fullPage: true });
    const button = '#run-actions button[data-action="continue"]';
    // Unresolved: the CLI refuses, and the page shows its message.
    await page.click(button);
    await page.click("#confirm-run");
    await page.waitForFunction(() => /exit code/.test(document.querySelector("#action-result").textContent), null, { timeout: WAIT });
    const refused = await page.textContent("#action-output");
    // Resolve as a person would, then continue again.
    fs.writeFileSync(path.join(worktree, args.file), args.resolution);
    execFileSync("git", ["-C", worktree, "add", args.file]);
    // The order that once lost the notification: the run's end reaches the page by a load of
    // the whole run (asked for on the `running` event, answered once the run ended) before the
    // `finished` event does. The test's plan holds the run running until the page asked for
    // the run; that load waits until the (held) `finished` event came, so it shows the end.
    await page.evaluate(() => { window.__holdEnds = true; });
    await page.route("**/api/run", async (route) => {
      fs.writeFileSync(args.release, "go\n");
      await page.waitForFunction(() => window.__held.length > 0, null, { timeout: WAIT });
      await route.continue();
    });
    await page.click(button);
    await page.click("#confirm-run");
    await page.waitForFunction((word) => document.querySelector("#outcome").textContent === word, args.outcome, { timeout: WAIT });
    await page.unroute("**/api/run");
    await page.evaluate(() => window.__releaseEnds());
    // The command's own end, as the page reports it.
    await page.waitForFunction(() => /done|exit code/.test(document.querySelector("#action-result").textContent), null, { timeout: WAIT });
    const actionResult = await page.textContent("#action-result");
    // And the badge stays: no older answer puts the run back as it was.
    await page.waitForSelector("#diff details.file", { timeout: WAIT });
    const badge = await page.textContent("#outcome");
    const output = await page.textContent("#action-output");
    const states = await graphStates(page);
    const conflictHidden = await page.isHidden("#conflict-section");
    const notes = await page.evaluate(() => window.__notes);
    await shot(page, "ui-continued", { fullPage: true });
    await context.close();
    return { worktree, readme, sides, refused, output, actionResult, badge, states, conflictHidden, notes, errors };
  },

  // A running stream's Stop button: confirmed, run as `streams stop`, and the stream shows
  // stopped without a reload.
  async stop() {
    const { context, page, errors } = await launch();
    await page.goto(args.url);
    await page.evaluate(() => { window.__streamsMark = "same page"; });
    await waitGraph(page, { [args.stream]: "running" });
    await page.click(`#board .row[data-stream="${args.stream}"]`);
    const button = `#detail button[data-action="stop"][data-stream="${args.stream}"]`;
    await page.waitForSelector(button, { timeout: WAIT });
    await page.click(button);
    const confirm = await page.textContent("#confirm-command");
    await shot(page, "ui-stop-confirm", { fullPage: true });
    await page.click("#confirm-run");
    await waitGraph(page, { [args.stream]: "stopped" });
    await page.waitForFunction(() => /done|exit code/.test(document.querySelector("#action-result").textContent), null, { timeout: WAIT });
    const actionResult = await page.textContent("#action-result");
    const output = await page.textContent("#action-output");
    const badge = await page.textContent(`#board .row[data-stream="${args.stream}"] .top`);
    // No Stop on a stream that no longer runs.
    await page.waitForSelector(button, { state: "detached", timeout: WAIT });
    const mark = await page.evaluate(() => window.__streamsMark);
    await shot(page, "ui-stopped", { fullPage: true });
    await context.close();
    return { confirm, actionResult, output, badge, mark, errors };
  },

  // A stream parks while another still runs: the page tells the person at once and shows the
  // conflict with the run still running; once the held stream is let go, the run halts.
  async parked() {
    const { context, page, errors } = await launch();
    await context.grantPermissions(["notifications"]);
    await page.addInitScript(() => {
      window.__notes = [];
      window.Notification = class {
        constructor(title, options) { window.__notes.push(title + " | " + ((options && options.body) || "")); }
        static get permission() { return "granted"; }
        static requestPermission() { return Promise.resolve("granted"); }
      };
    });
    await page.goto(args.url);
    await page.waitForSelector("#graph .node", { timeout: WAIT });
    await waitGraph(page, args.first);
    fs.writeFileSync(args.release_b, "go\n");
    await waitGraph(page, args.while);
    await page.waitForSelector("#conflict-section:not([hidden])", { timeout: WAIT });
    await page.waitForSelector("#banner:not([hidden])", { timeout: WAIT });
    const whileStates = await graphStates(page);
    const badgeWhile = await page.textContent("#outcome");
    const banner = await page.textContent("#banner");
    const cards = await page.$$eval("#conflict .conflict-card", (c) => c.map((e) => e.getAttribute("data-stream")));
    const notesWhile = await page.evaluate(() => window.__notes.slice());
    await shot(page, "ui-parked-while-running", { fullPage: true });
    fs.writeFileSync(args.release, "go\n");
    await page.waitForFunction(() => document.querySelector("#outcome").textContent === "halted", null, { timeout: WAIT });
    await waitGraph(page, args.last);
    const last = await graphStates(page);
    const notes = await page.evaluate(() => window.__notes);
    await context.close();
    return { whileStates, badgeWhile, banner, cards, notesWhile, last, notes, errors };
  },

  // Names and output holding markup show as text, and nothing of theirs runs.
  async escape() {
    const { context, page, errors } = await launch();
    await page.goto(args.url);
    await page.waitForSelector(`#board .row[data-stream="${args.select}"]`, { timeout: WAIT });
    await page.click(`#board .row[data-stream="${args.select}"]`);
    await page.waitForSelector("#diff details.file", { timeout: WAIT });
    await page.waitForFunction((text) => document.querySelector("#log") &&
      document.querySelector("#log").textContent.includes(text), args.log_text, { timeout: WAIT });
    const paths = await page.$$eval("#diff details.file .path", (p) => p.map((e) => e.textContent));
    const log = await page.textContent("#log");
    const pwned = await page.evaluate(() => window.__pwned === undefined ? null : window.__pwned);
    const injected = await page.evaluate(() => document.querySelectorAll("#detail img, #detail script, #board img, #board script").length);
    await shot(page, "ui-markup-as-text", { fullPage: true });
    // Side by side: a changed line faces its old version.
    await page.click('.diff-head button[data-mode="split"]');
    await page.waitForSelector("#diff table.diff.split", { timeout: WAIT });
    const facing = await page.$$eval("#diff table.diff.split tr", (rows) => rows
      .filter((r) => r.querySelector("td.code.del") && r.querySelector("td.code.add"))
      .map((r) => [r.querySelector("td.code.del").textContent, r.querySelector("td.code.add").textContent]));
    const splitPaths = await page.$$eval("#diff details.file .path", (p) => p.map((e) => e.textContent));
    const injectedSplit = await page.evaluate(() => document.querySelectorAll("#detail img, #detail script").length);
    await shot(page, "ui-side-by-side", { fullPage: true });
    await context.close();
    return { paths, log, pwned, injected, facing, splitPaths, injectedSplit, errors };
  },
};

if (!scenarios[scenario]) fail("no scenario " + scenario);
try {
  const found = await scenarios[scenario]();
  process.stdout.write(JSON.stringify(found) + "\n");
} catch (e) {
  fail(scenario + ": " + (e && e.stack ? e.stack : e));
}
