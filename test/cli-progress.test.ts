// Progress bars on long CLI work (sealing, verify, digest, migrate): drawn on stderr when it is a
// terminal, never when the output is piped, never with --json. The terminal is a real
// pseudo-terminal (util-linux `script`), the CLI the built one, the database real and seeded.
import { spawn } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { stringify } from "yaml";
import { createDb, type Db } from "../gateway/store/client.js";
import { runCli } from "./helpers/cli.js";
import { adminQuery, adminUrl, createTestDatabase, ROOT, withDatabase, type TestDatabase } from "./helpers/postgres.js";

let db: TestDatabase;
let prisma: Db;
let dir: string;
let file: string;
/** Records to seal: several sealing batches (1,000 rows each). */
const SEEDED = 2500;
const CLEAR_LINE = "\r\x1b[2K";

beforeAll(async () => {
  db = await createTestDatabase();
  prisma = createDb(db.url, { poolSize: 2 });
  dir = mkdtempSync(join(tmpdir(), "cs-cli-progress-"));
  const keyFile = join(dir, "checkpoint.pem");
  writeFileSync(keyFile, generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }));
  file = join(dir, "countersign.yaml");
  writeFileSync(file, stringify({
    version: 1,
    database: { url: { env: "DATABASE_URL" } },
    audit: { checkpoint: { keys: [{ id: "test", privateKey: { file: keyFile } }] } },
    connections: [{ name: "local", access: { anonymous: true }, upstream: { type: "stdio", command: process.execPath } }],
  }));
  // Queued for sealing by the database's trigger as they commit.
  await prisma.event.createMany({ data: Array.from({ length: SEEDED }, (_, i) => ({ type: "gateway", reason: "seeded", detail: { i } })) });
}, 60_000);
afterAll(async () => {
  await prisma?.$disconnect();
  await db?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Runs the built CLI with stdout and stderr on a pseudo-terminal; returns what the terminal showed. */
function runInTerminal(args: string[], databaseUrl = db.url): Promise<{ code: number | null; screen: string }> {
  const quote = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, join(ROOT, "dist", "gateway", "cli.js"), ...args].map(quote).join(" ");
  return new Promise((resolve, reject) => {
    const child = spawn("script", ["-qec", command, "/dev/null"], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", TERM: "xterm", COLUMNS: "120", DATABASE_URL: databaseUrl },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let screen = "";
    child.stdout.on("data", (b: Buffer) => (screen += String(b)));
    child.stderr.on("data", (b: Buffer) => (screen += String(b)));
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code, screen }));
  });
}

/** The current ISO week, e.g. 2026-W49 (the digest of a week not over is shown, not stored). */
function currentIsoWeek(now = new Date()): string {
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  const day = d.getUTCDay() || 7;
  d.setUTCDate(d.getUTCDate() + 4 - day);
  const yearStart = Date.UTC(d.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((d.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${d.getUTCFullYear()}-W${String(week).padStart(2, "0")}`;
}

const bar = (title: string) => new RegExp(`${title} \\[[#-]+\\] \\d+/\\d+`);

it("checkpoint (sealing) and verify draw a bar on a terminal, and clear it before their result", async () => {
  const sealing = await runInTerminal(["checkpoint", "--config", file]);
  expect(sealing.code, sealing.screen).toBe(0);
  expect(sealing.screen).toMatch(bar("sealing the queued records"));
  expect(sealing.screen).toContain(`${SEEDED}/${SEEDED}`);
  expect(sealing.screen).toContain(CLEAR_LINE);
  expect(sealing.screen).toMatch(/checkpoint #\d+: seq \d+/);

  const verify = await runInTerminal(["verify", "--config", file]);
  expect(verify.code, verify.screen).toBe(0);
  expect(verify.screen).toMatch(bar("verifying the audit chain"));
  // The result comes after the bar was cleared, on a clean line.
  expect(verify.screen.slice(verify.screen.lastIndexOf(CLEAR_LINE) + CLEAR_LINE.length)).toMatch(/^OK: /);
}, 120_000);

it("verify, checkpoint and digest draw nothing when their output is piped, and nothing with --json", async () => {
  await prisma.event.createMany({ data: Array.from({ length: 1200 }, (_, i) => ({ type: "gateway", reason: "seeded-again", detail: { i } })) });
  const piped = [
    await runCli(["checkpoint", "--config", file], { DATABASE_URL: db.url }),
    await runCli(["verify", "--config", file], { DATABASE_URL: db.url }),
    await runCli(["digest", "--week", currentIsoWeek(), "--config", file], { DATABASE_URL: db.url }),
  ];
  for (const r of piped) {
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr + r.stdout).not.toContain("\x1b");
    expect(r.stderr).not.toMatch(/\[[#-]{10,}\]/);
  }
  for (const args of [["verify", "--json"], ["checkpoint", "--json"], ["digest", "--week", currentIsoWeek(), "--format", "json"]]) {
    const r = await runInTerminal([...args, "--config", file]);
    expect(r.code, r.screen).toBe(0);
    expect(r.screen, args.join(" ")).not.toContain(CLEAR_LINE);
    expect(r.screen, args.join(" ")).not.toMatch(/\[[#-]{10,}\]/);
  }
}, 120_000);

it("digest draws the bar on a terminal while it verifies the week's chain", async () => {
  const r = await runInTerminal(["digest", "--week", currentIsoWeek(), "--config", file]);
  expect(r.code, r.screen).toBe(0);
  expect(r.screen).toMatch(bar("verifying the audit chain"));
  expect(r.screen).toContain(CLEAR_LINE);
}, 120_000);

it("migrate draws the bar on a terminal, not with --json", async () => {
  const names = [`t_progress_mig_${process.pid}_a`, `t_progress_mig_${process.pid}_b`];
  for (const n of names) await adminQuery(`CREATE DATABASE ${n}`);
  try {
    const tty = await runInTerminal(["migrate", "--config", file], withDatabase(adminUrl(), names[0]!));
    expect(tty.code, tty.screen).toBe(0);
    expect(tty.screen).toMatch(bar("migrations"));
    expect(tty.screen).toContain(CLEAR_LINE);
    const json = await runInTerminal(["migrate", "--json", "--config", file], withDatabase(adminUrl(), names[1]!));
    expect(json.code, json.screen).toBe(0);
    expect(json.screen).toContain('"applied"');
    expect(json.screen).not.toContain(CLEAR_LINE);
    expect(json.screen).not.toMatch(bar("migrations"));
  } finally {
    for (const n of names) await adminQuery(`DROP DATABASE IF EXISTS ${n} WITH (FORCE)`);
  }
}, 120_000);
