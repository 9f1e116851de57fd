// Shared by the benchmark and the conformance run: statistics over high-resolution timings, and
// the real processes both of them measure (server-everything, a gateway child, a fresh database).
// Every child started here is tracked and killed when this process exits, however it exits.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { stringify } from "yaml";
import { migrateDatabase } from "../../gateway/store/migrate.js";
import { adminQuery, adminUrl, withDatabase } from "../helpers/postgres.js";

export const ROOT = new URL("../..", import.meta.url).pathname;
export const EVERYTHING = join(ROOT, "node_modules/@modelcontextprotocol/server-everything/dist/index.js");
export const GATEWAY_CLI = join(ROOT, "dist/gateway/cli.js");

// ── statistics ────────────────────────────────────────────────────────────────────────────────

/** Nearest-rank percentile of an ascending array (p in 0..100). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Latencies are collected as nanoseconds from process.hrtime.bigint(), converted once here. */
export class LatencySamples {
  #ns: number[] = [];

  add(ns: bigint): void {
    this.#ns.push(Number(ns));
  }

  merge(other: LatencySamples): void {
    for (const v of other.#ns) this.#ns.push(v);
  }

  get count(): number {
    return this.#ns.length;
  }

  /** p50/p90/p99 in milliseconds. */
  summary(): { p50: number; p90: number; p99: number } {
    const sorted = Float64Array.from(this.#ns).sort();
    const ms = (p: number) => percentile(sorted, p) / 1e6;
    return { p50: ms(50), p90: ms(90), p99: ms(99) };
  }
}

export const fmt2 = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : "n/a");

export function renderTable(head: string[], rows: string[][], alignRight: boolean[] = []): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const cell = (c: string, i: number) => (alignRight[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!));
  const line = (cells: string[]) => cells.map(cell).join("  ").trimEnd();
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

// ── processes ─────────────────────────────────────────────────────────────────────────────────

const children = new Set<ChildProcess>();
const cleanups: Array<() => void> = [];

function killAllChildren(): void {
  // SIGTERM, not SIGKILL: a gateway child then stops its own stdio children on the way out.
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGTERM");
  for (const f of cleanups.splice(0)) {
    try {
      f();
    } catch {
      // best effort at exit
    }
  }
}
process.on("exit", killAllChildren);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    killAllChildren();
    process.exit(130);
  });
}

/** Runs `fn` when this process exits (temporary files). */
export function onExit(fn: () => void): void {
  cleanups.push(fn);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface Child {
  name: string;
  proc: ChildProcess;
  /** The last lines of output, for error messages. */
  tail(): string;
  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts a child and resolves once a line of its stdout or stderr matches `ready` (with the
 * match). Output is always consumed (a full pipe would stall the child) and the last lines kept.
 */
export async function startChild(
  name: string,
  command: string,
  args: string[],
  opts: { env: NodeJS.ProcessEnv; ready: RegExp; timeoutMs?: number; cwd?: string },
): Promise<{ child: Child; match: RegExpMatchArray }> {
  const proc = spawn(command, args, { cwd: opts.cwd ?? ROOT, env: opts.env, stdio: ["ignore", "pipe", "pipe"] });
  children.add(proc);
  proc.on("exit", () => children.delete(proc));
  const lines: string[] = [];
  const keep = (line: string) => {
    lines.push(line);
    if (lines.length > 40) lines.shift();
  };
  const tail = () => lines.join("\n");
  const child: Child = {
    name,
    proc,
    tail,
    stop: async (graceMs = 5000) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise<void>((r) => proc.once("exit", () => r()));
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  const match = await new Promise<RegExpMatchArray>((resolve, reject) => {
    let done = false;
    const finish = (err: Error | undefined, m?: RegExpMatchArray) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) {
        proc.kill("SIGKILL");
        reject(err);
      } else resolve(m!);
    };
    const timer = setTimeout(() => finish(new Error(`${name} did not become ready within ${opts.timeoutMs ?? 30_000} ms:\n${tail()}`)), opts.timeoutMs ?? 30_000);
    for (const stream of [proc.stdout!, proc.stderr!]) {
      createInterface({ input: stream }).on("line", (line) => {
        keep(line);
        const m = opts.ready.exec(line);
        if (m) finish(undefined, m);
      });
    }
    proc.once("error", (err) => finish(new Error(`${name} could not start: ${err.message}`)));
    proc.once("exit", (code, signal) => finish(new Error(`${name} exited (${signal ?? code}) before it was ready:\n${tail()}`)));
  });
  return { child, match };
}

/** server-everything in Streamable HTTP mode on a free port; its endpoint is `${url}`. */
export async function startEverythingHttp(node = process.execPath): Promise<{ child: Child; url: string }> {
  const port = await freePort();
  const { child } = await startChild("server-everything", node, [EVERYTHING, "streamableHttp"], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", PORT: String(port) },
    ready: /listening on port/i,
  });
  return { child, url: `http://127.0.0.1:${port}/mcp` };
}

/** A new, empty database on the test PostgreSQL with every migration applied; `drop()` removes it. */
export async function createMigratedDatabase(prefix: string): Promise<{ name: string; url: string; drop(): Promise<void> }> {
  const name = `${prefix}_${randomBytes(5).toString("hex")}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  const url = withDatabase(adminUrl(), name);
  let dropped = false;
  const drop = async () => {
    if (dropped) return;
    dropped = true;
    await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  };
  try {
    await migrateDatabase(url);
  } catch (err) {
    await drop().catch(() => {});
    throw err;
  }
  return { name, url, drop };
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (entry.name.endsWith(".ts")) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/** Compiles the gateway when dist/ is missing or older than a source file. */
export function buildGatewayIfStale(say: (line: string) => void): void {
  let built = 0;
  try {
    built = statSync(GATEWAY_CLI).mtimeMs;
  } catch {
    // not built yet
  }
  if (built >= newestMtime(join(ROOT, "gateway"))) return;
  say("dist/ is stale: compiling the gateway (npx tsc -p .)");
  const r = spawnSync("npx", ["tsc", "-p", "."], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
  if (r.status !== 0) throw new Error(`npx tsc -p . failed:\n${r.stdout}${r.stderr}`);
}

export interface GatewayChild {
  child: Child;
  address: string;
  mcpUrl(connection: string): string;
  /** A bearer token from the gateway's dev issuer, when callers authenticate (auth: "dev-issuer"). */
  token?: string;
}

/**
 * The gateway as a user runs it: `node dist/gateway/cli.js start --config <file>` with
 * DATABASE_URL, in its own process, ready when it prints its "Countersign ready at" line.
 * `auth: "dev-issuer"` makes callers authenticate with real JWTs from the built-in dev issuer
 * (the token comes from `countersign token`); `"anonymous"` lets them in without one.
 */
export async function startGatewayChild(opts: {
  databaseUrl: string;
  connections: Array<Record<string, unknown>>;
  auth: "dev-issuer" | "anonymous";
  logLevel?: string;
  nodeArgs?: string[];
}): Promise<GatewayChild> {
  const dir = mkdtempSync(join(tmpdir(), "countersign-run-"));
  onExit(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "countersign.yaml");
  // A fixed port, not 0: token audiences name the public URL, which includes the port.
  const port = await freePort();
  const devIssuer = opts.auth === "dev-issuer";
  writeFileSync(
    file,
    stringify({
      version: 1,
      server: { host: "127.0.0.1", port },
      database: { url: { env: "DATABASE_URL" }, migrateOnStart: false, embeddedDataDir: join(dir, "pg") },
      log: { level: opts.logLevel ?? "info" },
      ...(devIssuer ? { auth: { devIssuer: { enabled: true, keyFile: join(dir, "dev-issuer.jwk") } } } : {}),
      connections: devIssuer ? opts.connections : opts.connections.map((c) => ({ ...c, access: { anonymous: true } })),
    }),
  );
  const env = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", DATABASE_URL: opts.databaseUrl };
  const { child, match } = await startChild("gateway", process.execPath, [...(opts.nodeArgs ?? []), GATEWAY_CLI, "start", "--config", file], {
    env,
    ready: /^Countersign ready at (\S+)/,
  });
  const address = match[1]!;
  let token: string | undefined;
  if (devIssuer) {
    const r = await runToCompletion(process.execPath, [GATEWAY_CLI, "token", "--config", file, "--sub", "bench", "--groups", "bench", "--ttl", "2h"], { env, timeoutMs: 30_000 });
    token = r.stdout.trim().split("\n").pop();
    if (r.code !== 0 || !token) {
      await child.stop();
      throw new Error(`countersign token failed (${r.code}): ${r.output.slice(-500)}`);
    }
  }
  return { child, address, mcpUrl: (c) => `${address}/mcp/${c}`, ...(token ? { token } : {}) };
}

/** A stdio upstream entry that runs server-everything with this Node. */
export function everythingStdioUpstream(): Record<string, unknown> {
  return { type: "stdio", command: process.execPath, args: [EVERYTHING, "stdio"] };
}

/** Runs a command to completion (tracked like every other child), killing it after `timeoutMs`. */
export async function runToCompletion(
  command: string,
  args: string[],
  opts: { env: NodeJS.ProcessEnv; timeoutMs: number; cwd?: string },
): Promise<{ code: number | null; output: string; stdout: string; timedOut: boolean }> {
  const proc = spawn(command, args, { cwd: opts.cwd ?? ROOT, env: opts.env, stdio: ["ignore", "pipe", "pipe"] });
  children.add(proc);
  let output = "";
  let stdout = "";
  proc.stdout!.on("data", (d: Buffer) => {
    output += d.toString();
    stdout += d.toString();
  });
  proc.stderr!.on("data", (d: Buffer) => (output += d.toString()));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill("SIGKILL");
  }, opts.timeoutMs);
  const code = await new Promise<number | null>((resolve, reject) => {
    proc.once("error", reject);
    proc.once("close", (c) => resolve(c));
  }).finally(() => {
    clearTimeout(timer);
    children.delete(proc);
  });
  return { code, output, stdout, timedOut };
}

// ── CPU accounting (Linux /proc) ──────────────────────────────────────────────────────────────

const CLOCK_TICKS_PER_SECOND = 100; // getconf CLK_TCK on Linux

/** CPU time (user + system) a process has used so far, in ms; 0 when it is gone or unreadable. */
export function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** The direct children of a process (e.g. the gateway's stdio servers). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) out.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/**
 * The peer relay the benchmarks compare with: mcp-proxy (npm, 6.x) serving Streamable HTTP in front of
 * a stdio server. It records, masks and checks nothing: what a bare relay costs.
 */
export async function startMcpProxy(upstream: Record<string, unknown>): Promise<{ child: Child; url: string; version: string }> {
  const bin = new URL("../../node_modules/mcp-proxy/dist/bin/mcp-proxy.mjs", import.meta.url).pathname;
  const version = (JSON.parse(readFileSync(new URL("../../node_modules/mcp-proxy/package.json", import.meta.url), "utf8")) as { version: string }).version;
  const port = await freePort();
  const { child } = await startChild(
    "mcp-proxy",
    process.execPath,
    [bin, "--port", String(port), "--host", "127.0.0.1", "--server", "stream", "--", String(upstream.command), ...((upstream.args as string[] | undefined) ?? [])],
    { env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "" }, ready: /starting server on port/i },
  );
  return { child, url: `http://127.0.0.1:${port}/mcp`, version };
}
