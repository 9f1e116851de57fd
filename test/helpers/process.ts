// Runs the gateway as a child process from the current sources (`countersign start`), for tests
// that kill it, signal it, or watch it exit.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { stringify } from "yaml";
import { BUILT_CLI } from "./built.js";
import { ROOT } from "./postgres.js";

export const LOGGING_SERVER = new URL("../fixtures/logging-server.mjs", import.meta.url).pathname;

/** A stdio upstream config for the logging server, which appends what it receives to `logFile`. */
export function loggingServerStdio(logFile: string) {
  return { type: "stdio", command: process.execPath, args: [LOGGING_SERVER], env: { MCP_MESSAGE_LOG: logFile } };
}

/** How many tools/call requests carrying `marker` the logging server received (what reached the upstream). */
export function forwardedCalls(logFile: string, marker: string): number {
  const log = existsSync(logFile) ? readFileSync(logFile, "utf8") : "";
  return log.split("\n").filter((l) => l.includes('"tools/call"') && l.includes(marker)).length;
}

/** A connection to the logging server that anyone may call (these tests are not about identity). */
export function loggingConnection(name: string, logFile: string) {
  return { name, access: { anonymous: true }, upstream: loggingServerStdio(logFile) };
}

/** Writes a gateway configuration file (YAML) listening on a free loopback port. */
export function writeGatewayConfig(file: string, config: Record<string, unknown>): string {
  const full = {
    version: 1,
    server: { host: "127.0.0.1", port: 0 },
    database: { migrateOnStart: false },
    log: { level: "warn" },
    ...config,
  };
  writeFileSync(file, stringify(full));
  return file;
}

export interface GatewayProcess {
  child: ChildProcess;
  pid: number;
  /** e.g. http://127.0.0.1:41234 */
  url: string;
  mcpUrl(connection: string): string;
  output(): string;
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const READY = "Countersign ready at ";

/** Gateways still running; killed if this process exits first, so none outlives the test run. */
const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

export async function startGatewayProcess(configFile: string, databaseUrl: string, opts: { timeoutMs?: number; nodeArgs?: string[] } = {}): Promise<GatewayProcess> {
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), BUILT_CLI, "start", "--config", configFile], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: databaseUrl, NODE_ENV: "test" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stderr!.on("data", (d: Buffer) => {
    err += d.toString();
    if (err.length > 200_000) err = err.slice(-100_000);
  });
  running.add(child);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("exit", (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the gateway did not report ready within ${opts.timeoutMs ?? 30_000} ms:\n${out}${err}`));
    }, opts.timeoutMs ?? 30_000);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const line = out.split("\n").find((l) => l.startsWith(READY));
      if (line) {
        clearTimeout(timer);
        resolve(line.slice(READY.length).split(/\s/)[0]!);
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`the gateway exited (code ${code}, signal ${signal}) before it was ready:\n${out}${err}`));
    });
  });
  return {
    child,
    pid: child.pid!,
    url,
    mcpUrl: (c) => `${url}/mcp/${c}`,
    output: () => out + err,
    exited,
  };
}

/** SIGKILLs the process (if still running) and waits for it to be gone. */
export async function killGateway(gw: GatewayProcess | undefined): Promise<void> {
  if (!gw) return;
  if (gw.child.exitCode === null && gw.child.signalCode === null) gw.child.kill("SIGKILL");
  await gw.exited;
}

/** Whether `pid` runs (a zombie, dead but not yet reaped by an init that may never reap it, does not). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  try {
    // Field 3 of /proc/<pid>/stat is the state; the command name before it may hold spaces.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return !existsSync("/proc/self/stat"); // no procfs: trust kill(0)
  }
}

/** Waits until none of `pids` runs; returns those still running after `timeoutMs`. */
export async function waitForPidsGone(pids: number[], timeoutMs = 10_000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let alive = pids.filter(pidAlive);
  while (alive.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    alive = alive.filter(pidAlive);
  }
  return alive;
}

/** Last resort for a failed test: SIGKILL whatever of `pids` still runs (only pids we recorded). */
export function killPids(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      /* already gone */
    }
  }
}

/** A loopback port the OS says is free right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
