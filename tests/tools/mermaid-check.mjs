// Parses every ```mermaid block of a Markdown file with Mermaid itself and prints what Mermaid
// understood, as JSON on stdout: for a gantt chart its bars (section, name, start, end, tags),
// for a flowchart its nodes and edges. Exits 1 with Mermaid's message when a block does not
// parse, or a chart's dates do not resolve. Used by tests/integration/ci.rs; no network.
//
//   node tests/tools/mermaid-check.mjs report.md
import { readFileSync } from "node:fs";
import DOMPurify from "dompurify";

// Mermaid sanitises labels with DOMPurify, which needs a DOM that node has not; parsing does
// not depend on sanitising, so stand-ins do (rendering is GitHub's business, not this check's).
if (typeof DOMPurify.addHook !== "function") {
  DOMPurify.addHook = () => {};
  DOMPurify.removeHook = () => {};
  DOMPurify.removeHooks = () => {};
  DOMPurify.sanitize = (text) => text;
}
const { default: mermaid } = await import("mermaid");

const text = readFileSync(process.argv[2], "utf8");
const blocks = [...text.matchAll(/```mermaid\n([\s\S]*?)```/g)].map((m) => m[1]);
const charts = [];
for (const block of blocks) {
  try {
    await mermaid.parse(block);
    const diagram = await mermaid.mermaidAPI.getDiagramFromText(block);
    const db = diagram.db;
    if (diagram.type === "gantt") {
      charts.push({
        type: "gantt",
        bars: db.getTasks().map((t) => ({
          section: t.section,
          name: t.task.trim(),
          start: t.startTime.getTime(),
          end: t.endTime.getTime(),
          done: Boolean(t.done),
          crit: Boolean(t.crit),
          active: Boolean(t.active),
        })),
      });
    } else if (diagram.type.startsWith("flowchart")) {
      charts.push({
        type: "flowchart",
        nodes: [...db.getVertices().values()].map((v) => ({
          id: v.id,
          label: v.text,
          classes: v.classes,
        })),
        edges: db.getEdges().map((e) => ({ from: e.start, to: e.end })),
      });
    } else {
      charts.push({ type: diagram.type });
    }
  } catch (error) {
    console.error(`mermaid could not read this chart: ${error.message ?? error}\n${block}`);
    process.exit(1);
  }
}
console.log(JSON.stringify(charts));
