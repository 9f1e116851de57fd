// Time to ready and time to stop of `countersign start` with the embedded PostgreSQL, as a
// newcomer's `npm start` runs it: first start (initdb included), warm start, Ctrl-C (SIGINT to the
// process group), and `countersign migrate` with nothing to do. Medians of a few runs.
// Usage: npm run bench:start [-- --runs 3] [--cli <path to another build's dist/gateway/cli.js>]
// (--cli: to compare builds on the same machine, runs interleaved by hand; the package root is
// the CLI's, two levels up from dist/gateway/.)
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const option = (name: string) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
const CLI = option("--cli") ? resolve(option("--cli")!) : join(fileURLToPath(new URL("../..", import.meta.url)), "dist/gateway/cli.js");
const ROOT = dirname(dirname(dirname(CLI)));
const runs = Number(option("--runs")) || 3;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** Starts the gateway in its own process group (as a shell runs a foreground job); resolves at the ready line. */
async function start(dataDir: string): Promise<{ readyMs: number; stop(): Promise<number> }> {
  const port = await freePort();
  const t0 = performance.now();
  const child = spawn(process.execPath, [CLI, "start"], {
    cwd: ROOT,
    detached: true,
    env: { ...process.env, DATABASE_URL: "", COUNTERSIGN_DATA_DIR: join(dataDir, "postgres"), PORT: String(port), COUNTERSIGN_CONFIG: "" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("Countersign ready at ")) resolve();
    });
    void exited.then((code) => reject(new Error(`exited ${code} before ready:\n${out}`)));
  });
  const readyMs = performance.now() - t0;
  return {
    readyMs,
    async stop() {
      await new Promise((r) => setTimeout(r, Number(process.env.BENCH_SETTLE_MS ?? 0)));
      const t1 = performance.now();
      process.kill(-child.pid!, "SIGINT"); // Ctrl-C: the whole foreground process group
      const code = await exited;
      if (code !== 0) throw new Error(`exit code ${code}:\n${out}`);
      return performance.now() - t1;
    },
  };
}

/** `countersign migrate` against the embedded database of `dataDir` (started and stopped by the command). */
async function migrate(dataDir: string): Promise<number> {
  const t0 = performance.now();
  await new Promise<void>((done, reject) => {
    const child = spawn(process.execPath, [CLI, "migrate"], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: "", COUNTERSIGN_DATA_DIR: join(dataDir, "postgres"), COUNTERSIGN_CONFIG: "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    child.once("exit", (code) => (code === 0 && /no pending migrations/i.test(out) ? done() : reject(new Error(`migrate exited ${code} or had work to do:\n${out}`))));
  });
  return performance.now() - t0;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

const first: number[] = [];
const warm: number[] = [];
const stops: number[] = [];
const migrates: number[] = [];
for (let i = 0; i < runs; i++) {
  const dir = mkdtempSync(join(tmpdir(), "countersign-bench-start-"));
  chmodSync(dir, 0o755); // as root, the embedded server runs as the postgres user
  try {
    const a = await start(dir);
    first.push(a.readyMs);
    stops.push(await a.stop());
    const b = await start(dir);
    warm.push(b.readyMs);
    stops.push(await b.stop());
    migrates.push(await migrate(dir));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
process.stdout.write(
  [
    `countersign start with the embedded PostgreSQL (${CLI}), median of ${runs} run(s):`,
    `  time to ready, first start (initdb): ${fmt(median(first))}   [${first.map(fmt).join(", ")}]`,
    `  time to ready, warm start:           ${fmt(median(warm))}   [${warm.map(fmt).join(", ")}]`,
    `  time to stop (SIGINT to the group):  ${fmt(median(stops))}   [${stops.map(fmt).join(", ")}]`,
    `  countersign migrate, nothing to do:  ${fmt(median(migrates))}   [${migrates.map(fmt).join(", ")}]`,
  ].join("\n") + "\n",
);
