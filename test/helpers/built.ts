// The built CLI (dist/), which the tests run as a user runs the installed binary. The test run's
// global setup rebuilds it first when a source is newer than the last build, so a test never
// runs yesterday's code and no test pays for compiling the sources through tsx.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./postgres.js";

export const BUILT_CLI = join(ROOT, "dist", "gateway", "cli.js");

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === "node_modules") continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith(".ts")) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/** Compiles gateway/ and bot/ into dist/ when a source changed since the last build. */
export function ensureBuilt(log: (line: string) => void = () => {}): void {
  const sources = Math.max(newestSource(join(ROOT, "gateway")), newestSource(join(ROOT, "bot")), statSync(join(ROOT, "tsconfig.json")).mtimeMs);
  // tsc rewrites every output, so the CLI's mtime is the last build's time (npm ci's `prepare` too).
  if (existsSync(BUILT_CLI) && statSync(BUILT_CLI).mtimeMs >= sources) return;
  log("compiling gateway/ and bot/ into dist/ for the tests that run the built CLI …");
  execFileSync(process.execPath, [join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", join(ROOT, "tsconfig.json")], { cwd: ROOT, stdio: "inherit" });
}
