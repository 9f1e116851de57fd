#!/usr/bin/env node
// Runs the adversarial suite (and the related tests named below) with vitest's JSON reporter and
// prints, per attack class, how many tests ran and how many held. Each test tries many inputs
// (generated spellings, flood members, forged cookies); the inputs per class are in each file's
// header comment. Usage: node test/adversarial/tally.mjs [--related]
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

const ROOT = new URL("../..", import.meta.url).pathname;
const CLASSES = {
  "test/adversarial/host-origin.test.ts": "DNS rebinding / foreign origin",
  "test/adversarial/rebinding.browser.test.ts": "DNS rebinding / foreign origin",
  "test/adversarial/policy-spelling.test.ts": "policy bypass by spelling",
  "test/adversarial/access-spelling.test.ts": "tool access bypass by spelling",
  "test/adversarial/approval-replay.test.ts": "approval replay and self-approval",
  "test/adversarial/sql-evasion.test.ts": "SQL classifier evasion",
  "test/adversarial/chain-tamper.test.ts": "tampering with chained rows",
  "test/adversarial/poison-flood.test.ts": "one caller breaks recording (NUL, surrogates)",
  "test/adversarial/console-login.test.ts": "console login (CSRF, state, redirect, cookies, fixation)",
  "test/adversarial/floods.test.ts": "resource exhaustion floods",
  // Related tests outside the suite, with --related.
  "test/recorder-bounds.test.ts": "one caller breaks recording (NUL, surrogates)",
  "test/before-auth.test.ts": "resource exhaustion floods",
  "test/metrics.test.ts": "resource exhaustion floods",
  "test/identity.test.ts": "identity and session hijack",
};

const related = process.argv.includes("--related");
const files = Object.keys(CLASSES).filter((f) => related || f.startsWith("test/adversarial/"));
const dir = mkdtempSync(join(tmpdir(), "cs-tally-"));
const out = join(dir, "report.json");
spawnSync("npx", ["vitest", "run", "--config", "test/vitest.config.ts", "--reporter=json", `--outputFile=${out}`, ...files], { cwd: ROOT, stdio: ["ignore", "ignore", "inherit"] });
const report = JSON.parse(readFileSync(out, "utf8"));
rmSync(dir, { recursive: true, force: true });

const rows = new Map();
for (const file of report.testResults) {
  const cls = CLASSES[relative(ROOT, file.name)] ?? relative(ROOT, file.name);
  const row = rows.get(cls) ?? { tests: 0, held: 0 };
  for (const t of file.assertionResults) {
    row.tests++;
    if (t.status === "passed") row.held++;
  }
  rows.set(cls, row);
}
console.log("| attack class | tests | held |\n| --- | ---: | ---: |");
for (const [cls, r] of rows) console.log(`| ${cls} | ${r.tests} | ${r.held} |`);
const total = [...rows.values()].reduce((a, r) => ({ tests: a.tests + r.tests, held: a.held + r.held }), { tests: 0, held: 0 });
console.log(`| total | ${total.tests} | ${total.held} |`);
process.exitCode = total.tests === total.held ? 0 : 1;
