// Runs the countersign CLI from the sources (as a user would run the installed binary) and
// collects its exit code and output.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./postgres.js";

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 50_000): Promise<CliResult> {
  return runNode(["--import", "tsx", "gateway/cli.ts", ...args], env, timeoutMs);
}

/** The built CLI (dist/, as installed: `npm run build` first), without recompiling through tsx. */
export function runBuiltCli(args: string[], env: Record<string, string> = {}, timeoutMs = 50_000): Promise<CliResult> {
  const cli = join(ROOT, "dist", "gateway", "cli.js");
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run npm run build first`);
  return runNode([cli, ...args], env, timeoutMs);
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
