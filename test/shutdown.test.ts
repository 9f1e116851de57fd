// Graceful shutdown: SIGTERM on a running gateway lets the in-flight call finish, refuses new
// work, stops the stdio children, records the sessions as closed and the instance as stopped,
// and exits 0.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createDb, type Db } from "../gateway/store/client.js";
import { readEmbeddedConnection, startEmbeddedDatabase } from "../gateway/store/embedded.js";
import { createTestDatabase, ROOT, type TestDatabase } from "./helpers/postgres.js";
import {
  killGateway,
  killPids,
  loggingConnection,
  pidAlive,
  startGatewayProcess,
  waitForPidsGone,
  writeGatewayConfig,
  type GatewayProcess,
} from "./helpers/process.js";

let db: TestDatabase;
let prisma: Db;
let dir: string;
let gateway: GatewayProcess | undefined;
const clients: Client[] = [];

function upstreamEntries(file: string): Array<{ pid: number; started?: boolean; msg?: { method?: string; params?: { name?: string } } }> {
  try {
    return readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
  } catch {
    return [];
  }
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  db = await createTestDatabase();
  prisma = createDb(db.url, { poolSize: 2 });
  dir = mkdtempSync(join(tmpdir(), "countersign-shutdown-"));
});

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => {});
  await killGateway(gateway);
  if (dir) {
    killPids(upstreamEntries(join(dir, "upstream.jsonl")).filter((e) => e.started).map((e) => e.pid));
    rmSync(dir, { recursive: true, force: true });
  }
  await prisma?.$disconnect();
  await db?.drop();
});

/** A request that must be refused while the gateway drains: a 503 CS_ERR_SHUTTING_DOWN, or no connection at all. */
async function refusedDuringDrain(send: () => Promise<Response>): Promise<string> {
  let res: Response;
  try {
    res = await send();
  } catch (err) {
    const code = ((err as { cause?: { code?: string } }).cause?.code ?? "") as string;
    expect(code).toMatch(/ECONNREFUSED|ECONNRESET|UND_ERR_SOCKET/);
    return code;
  }
  const text = await res.text();
  // Either a plain JSON error or an SSE stream carrying the JSON-RPC error for the request (after
  // a priming event, an id with empty data, on 2025-11-25 streams).
  const sse = res.headers.get("content-type")?.includes("text/event-stream");
  const body = JSON.parse(sse ? text.split("\n").filter((l) => l.startsWith("data: ") && l.length > "data: ".length)[0]!.slice("data: ".length) : text);
  expect(body.error?.data?.code).toBe("CS_ERR_SHUTTING_DOWN");
  return `${res.status} ${body.error.data.code}`;
}

it("drains in-flight calls on SIGTERM, refuses new work, stops its children and exits 0", async () => {
  const logFile = join(dir, "upstream.jsonl");
  const configFile = writeGatewayConfig(join(dir, "countersign.yaml"), { connections: [loggingConnection("logging", logFile)] });
  gateway = await startGatewayProcess(configFile, db.url);
  const gw = gateway;

  // Before shutdown: alive and ready, with details.
  const health = await fetch(`${gw.url}/healthz`);
  expect(health.status).toBe(200);
  expect(await health.json()).toEqual({ status: "ok" });
  const ready = await fetch(`${gw.url}/readyz`);
  expect(ready.status).toBe(200);
  const readyBody = (await ready.json()) as Record<string, any>;
  expect(readyBody.status).toBe("ready");
  expect(readyBody.auditStore.healthy).toBe(true);
  expect(readyBody.upstreams.logging).toMatchObject({ kind: "stdio", startable: true });

  // Two sessions: one with a slow call in flight, one idle that will try to call during the drain.
  const busy = new Client({ name: "shutdown-busy", version: "1" });
  const idle = new Client({ name: "shutdown-idle", version: "1" });
  clients.push(busy, idle);
  const busyTransport = new StreamableHTTPClientTransport(new URL(gw.mcpUrl("logging")));
  const idleTransport = new StreamableHTTPClientTransport(new URL(gw.mcpUrl("logging")));
  await busy.connect(busyTransport);
  await idle.connect(idleTransport);
  expect(await idle.callTool({ name: "echo", arguments: { message: "before" } })).toMatchObject({ content: [{ text: "Echo: before" }] });
  const sessionIds = [busyTransport.sessionId!, idleTransport.sessionId!];

  const slow = busy.callTool({ name: "slow", arguments: { ms: 4000, message: "in flight" } }, undefined, { timeout: 30_000 });
  slow.catch(() => {}); // awaited below; a failure before that point must not surface as unhandled
  await waitFor("the slow call to reach the upstream", () => upstreamEntries(logFile).some((e) => e.msg?.params?.name === "slow"));
  const childPids = upstreamEntries(logFile).filter((e) => e.started).map((e) => e.pid);
  expect(childPids).toHaveLength(2);

  gw.child.kill("SIGTERM");
  await waitFor("the gateway to start draining", () => gw.output().includes("SIGTERM"));

  // During the drain: a new session and a new call on an existing session are both refused.
  const headers = { "content-type": "application/json", accept: "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18" };
  const newSession = await refusedDuringDrain(() =>
    fetch(gw.mcpUrl("logging"), {
      method: "POST",
      headers,
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "late", version: "1" } } }),
    }),
  );
  const newCall = await refusedDuringDrain(() =>
    fetch(gw.mcpUrl("logging"), {
      method: "POST",
      headers: { ...headers, "mcp-session-id": sessionIds[1]! },
      body: JSON.stringify({ jsonrpc: "2.0", id: 99, method: "tools/call", params: { name: "echo", arguments: { message: "during drain" } } }),
    }),
  );
  console.log(`shutdown: during the drain, a new session got ${newSession}; a new call got ${newCall}`);
  expect(upstreamEntries(logFile).some((e) => JSON.stringify(e.msg ?? {}).includes("during drain"))).toBe(false);

  // The in-flight call completes, and the process exits cleanly.
  expect(await slow).toEqual({ content: [{ type: "text", text: "Slept 4000 ms: in flight" }] });
  expect(await gw.exited).toEqual({ code: 0, signal: null });
  for (const c of clients) await c.close().catch(() => {});

  // Its stdio children are gone.
  expect(await waitForPidsGone(childPids, 5000)).toEqual([]);

  // The record: sessions closed for the shutdown, the instance stopped.
  const sessions = await prisma.session.findMany({ where: { id: { in: sessionIds } } });
  expect(sessions).toHaveLength(2);
  for (const s of sessions) {
    expect(s.closedAt).not.toBeNull();
    expect(s.closeReason).toBe("gateway_shutdown");
  }
  const instance = await prisma.instance.findFirstOrThrow({ where: { id: sessions[0]!.ownerInstanceId } });
  expect(instance.pid).toBe(gw.pid);
  expect(instance.stoppedAt).not.toBeNull();
  const slowResponse = await prisma.message.findFirst({ where: { sessionId: sessionIds[0]!, direction: "out", method: "tools/call" } });
  expect(slowResponse?.payload).toMatchObject({ result: { content: [{ text: "Slept 4000 ms: in flight" }] } });
}, 60_000);

/** `countersign start` as a shell runs `npm start`: the built CLI, leader of its own process group. */
function startForeground(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [join(ROOT, "dist/gateway/cli.js"), ...args], {
    cwd: ROOT,
    detached: true, // a process group of its own, as a terminal's foreground job
    env: { ...process.env, DATABASE_URL: "", COUNTERSIGN_CONFIG: "", NODE_ENV: "test", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return { child, output: () => out, exited };
}

it("Ctrl-C (SIGINT to the whole foreground process group) drains, records the stop, then stops the embedded PostgreSQL", async () => {
  const home = mkdtempSync(join(tmpdir(), "countersign-ctrlc-"));
  chmodSync(home, 0o755); // as root, the embedded server runs as the postgres user
  const dataDir = join(home, "postgres");
  const logFile = join(home, "upstream.jsonl");
  const configFile = writeGatewayConfig(join(home, "countersign.yaml"), { database: {}, connections: [loggingConnection("logging", logFile)] });
  const gw = startForeground(["start", "--config", configFile], { COUNTERSIGN_DATA_DIR: dataDir });
  let pg: Awaited<ReturnType<typeof startEmbeddedDatabase>> | undefined;
  try {
    await waitFor("the gateway to be ready", () => gw.output().includes("Countersign ready at "), 45_000);
    const url = /Countersign ready at (\S+)/.exec(gw.output())![1]!;
    const postgresPid = readEmbeddedConnection(dataDir)!.pid;
    expect(pidAlive(postgresPid)).toBe(true);
    const client = new Client({ name: "ctrl-c", version: "1" });
    const transport = new StreamableHTTPClientTransport(new URL(`${url}/mcp/logging`));
    await client.connect(transport);
    expect(await client.callTool({ name: "echo", arguments: { message: "hi" } })).toMatchObject({ content: [{ text: "Echo: hi" }] });

    process.kill(-gw.child.pid!, "SIGINT"); // what the terminal does on Ctrl-C
    expect(await gw.exited).toBe(0);
    await client.close().catch(() => {});
    const out = gw.output();
    // The order: drain, the stop recorded while the database is up, and only then the database stopped.
    const at = (s: string) => out.indexOf(s);
    expect(at("SIGINT: finishing in-flight calls")).toBeGreaterThan(at("Countersign ready at "));
    expect(at("sessions closed and the stop recorded (gateway/stopped)")).toBeGreaterThan(at("SIGINT: finishing in-flight calls"));
    expect(at("embedded PostgreSQL stopped")).toBeGreaterThan(at("sessions closed and the stop recorded"));
    expect(out).not.toMatch(/"level":50|ERROR|sealing failed|audit store unavailable|shutdown failed/);
    expect(await waitForPidsGone([postgresPid], 5000)).toEqual([]);

    // The record, read back from the same data directory.
    pg = await startEmbeddedDatabase(dataDir, () => {});
    const prismaEmbedded = createDb(pg.connection.url, { poolSize: 1 });
    try {
      const session = await prismaEmbedded.session.findUniqueOrThrow({ where: { id: transport.sessionId! } });
      expect(session.closeReason).toBe("gateway_shutdown");
      const events = await prismaEmbedded.event.findMany({ where: { type: "gateway" }, orderBy: { id: "asc" } });
      expect(events.map((e) => e.reason)).toEqual(["started", "stopped"]);
      const instance = await prismaEmbedded.instance.findFirstOrThrow({ where: { pid: gw.child.pid! } });
      expect(instance.stoppedAt).not.toBeNull();
    } finally {
      await prismaEmbedded.$disconnect();
    }
  } finally {
    if (gw.child.exitCode === null) process.kill(-gw.child.pid!, "SIGKILL");
    await pg?.stop();
    rmSync(home, { recursive: true, force: true });
  }
}, 90_000);

it("a busy port is reported at once, naming PORT, before the database starts", async () => {
  const home = mkdtempSync(join(tmpdir(), "countersign-busy-port-"));
  const busy = createServer().listen(0, "127.0.0.1");
  await once(busy, "listening");
  try {
    const port = (busy.address() as AddressInfo).port;
    const configFile = writeGatewayConfig(join(home, "countersign.yaml"), { database: {}, connections: [loggingConnection("logging", join(home, "u.jsonl"))] });
    const gw = startForeground(["start", "--config", configFile], { COUNTERSIGN_DATA_DIR: join(home, "postgres"), PORT: String(port) });
    expect(await gw.exited).toBe(1);
    expect(gw.output()).toContain(`port ${port} on 127.0.0.1 is already in use`);
    expect(gw.output()).toContain("PORT=");
    expect(existsSync(join(home, "postgres"))).toBe(false); // nothing slow was started
  } finally {
    busy.close();
    rmSync(home, { recursive: true, force: true });
  }
});
