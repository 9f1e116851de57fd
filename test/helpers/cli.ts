// Runs the built countersign CLI (dist/, kept current by the test run's global setup) as a user
// runs the installed binary, and collects its exit code and output.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { BUILT_CLI } from "./built.js";
import { ROOT } from "./postgres.js";

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 50_000): Promise<CliResult> {
  if (!existsSync(BUILT_CLI)) throw new Error(`${BUILT_CLI} is missing: run npm run build first`);
  return runNode([BUILT_CLI, ...args], env, timeoutMs);
}

/** Runs node with `args` from the project root, with a minimal environment, collecting its output. */
function runNode(args: string[], env: Record<string, string>, timeoutMs: number): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => (stdout += String(b)));
    child.stderr.on("data", (b: Buffer) => (stderr += String(b)));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", reject);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
