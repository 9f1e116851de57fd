// Which test files are end-to-end and which are unit tests, decided by what a file uses rather
// than by a list to keep up to date. A file is end-to-end when it starts a gateway (in process or
// the built CLI), spawns a process (an MCP server, pg_dump, tsc, a Python client) or drives a
// browser; every other file is a unit test: it exercises gateway/ modules directly, with at most
// its own database. `npm test` runs both; `npm run test:unit` and `npm run test:e2e` one each.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";

export const ROOT = new URL("..", import.meta.url).pathname;

const E2E_MARKERS = [
  /helpers\/(gateway|cli|built|process|upstreams|python)\.js/,
  /\bstartGateway\b/,
  /node:child_process/,
  /StdioClientTransport/,
  /playwright|chromium/,
];

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === "soak" || e.name === "node_modules" ? [] : testFiles(path);
    return e.name.endsWith(".test.ts") ? [relative(ROOT, path)] : [];
  });
}

export function isEndToEnd(file: string): boolean {
  const text = readFileSync(join(ROOT, file), "utf8");
  return E2E_MARKERS.some((m) => m.test(text));
}

/** Test files (paths relative to the repository root) of one suite, sorted. */
export function suiteFiles(suite: "unit" | "e2e"): string[] {
  return testFiles(join(ROOT, "test"))
    .filter((f) => isEndToEnd(f) === (suite === "e2e"))
    .sort();
}
