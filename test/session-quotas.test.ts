// Sessions are never exhausted by clients that never send DELETE: one identity has a quota on a
// connection, and at the quota or the cap its least recently used idle session (nothing in flight,
// no held call, no open stream) makes room, on record; otherwise the caller gets a clear refusal.
// Administrators close sessions by id or every idle one. A client that stops reading its stream is
// cut once its unread bytes pass the budget, on record.
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { signDevToken } from "../gateway/auth/dev-issuer.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "./helpers/postgres.js";
import { loggingServerStdio } from "./helpers/process.js";
import { runCli } from "./helpers/cli.js";

const FIXTURE = new URL("./fixtures/misbehaving-server.mjs", import.meta.url).pathname;

let db: TestDatabase;
let gw: TestGateway;
let scratch: string;
const clients: Client[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  scratch = mkdtempSync(join(tmpdir(), "countersign-quotas-"));
  gw = await startTestGateway(db.url, {
    auth: { devIssuer: { enabled: true, keyFile: join(scratch, "dev.jwk") } },
    admin: { groups: ["ops"] },
    sessions: { evictIdleAfterSeconds: 1 },
    limits: { clientBufferBytes: 64 * 1024, notificationsPerSecond: 100_000 },
    connections: [
      { name: "shared", maxSessions: 8, maxSessionsPerIdentity: 2, access: { groups: ["dev"] }, upstream: loggingServerStdio(join(scratch, "shared.log")) },
      { name: "flood", upstream: { type: "stdio", command: process.execPath, args: [FIXTURE, "flood"], env: { FLOOD_COUNT: "3000", FLOOD_DATA_BYTES: "2048" } } },
    ],
  });
}, 60_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  await gw?.stop();
  await db?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

const tokenFor = async (subject: string, audience: string, groups = ["dev"]) => {
  const d = gw.identity.devIssuer!;
  return signDevToken(d.key, d.url, { subject, email: `${subject}@example.com`, groups, audience: [audience], ttlSeconds: 600 });
};

/** A session opened with one POST and never used again: no stream, nothing in flight. */
async function bareSession(subject: string): Promise<{ status: number; id: string | null; body: { error?: { code: number; data?: { code: string; connection?: string; keyPath?: string } } } }> {
  const res = await fetch(gw.mcpUrl("shared"), {
    method: "POST",
    headers: { authorization: `Bearer ${await tokenFor(subject, `${gw.config.publicUrl}/mcp/shared`)}`, "content-type": "application/json", accept: "application/json, text/event-stream" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "bare", version: "1" } } }),
  });
  const text = await res.text();
  const json = text.startsWith("{") ? JSON.parse(text) : JSON.parse(text.split("\n").find((l) => l.startsWith("data: "))!.slice(6));
  return { status: res.status, id: res.headers.get("mcp-session-id"), body: json };
}

/** An SDK client: it keeps a GET stream open, so its session is never idle. */
async function sdkClient(subject: string): Promise<Client> {
  const client = new Client({ name: "quota-test", version: "1" });
  await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl("shared"), { requestInit: { headers: { authorization: `Bearer ${await tokenFor(subject, `${gw.config.publicUrl}/mcp/shared`)}` } } }));
  clients.push(client);
  return client;
}

const closeReason = async (id: string) => (await gw.db.$queryRawUnsafe<Array<{ closeReason: string | null }>>(`SELECT "closeReason" FROM sessions WHERE id = $1`, id))[0]?.closeReason ?? null;

describe("per-identity quotas and idle eviction", () => {
  it("one identity cannot take every slot; at its quota its least recently used idle session makes room, on record", async () => {
    const streaming = await sdkClient("carol");
    const idle = await bareSession("carol");
    expect(idle.status).toBe(200);
    // carol holds her quota (2): one session streaming, one idle for less than evictIdleAfterSeconds.
    const early = await bareSession("carol");
    expect(early.status).toBe(503);
    expect(early.body.error?.code).toBe(-32091);
    expect(early.body.error?.data?.code).toBe("CS_ERR_SESSION_QUOTA");
    // What bound it and where it is set, as fields a client or an operator can read.
    expect(early.body.error?.data).toMatchObject({ connection: "shared", keyPath: `connections[${gw.config.connections.findIndex((c) => c.name === "shared")}].maxSessionsPerIdentity` });
    // Another identity still gets in: the connection's other slots are not carol's.
    const dave = await bareSession("dave");
    expect(dave.status).toBe(200);
    // Once carol's bare session has been idle long enough, her next open evicts it (never the streaming one).
    let third: Awaited<ReturnType<typeof bareSession>> | undefined;
    await vi.waitFor(async () => {
      third = await bareSession("carol");
      expect(third.status).toBe(200);
    }, { timeout: 15_000, interval: 300 });
    await expect.poll(() => closeReason(idle.id!), { timeout: 10_000 }).toBe("evicted_idle");
    const evicted = await gw.db.$queryRawUnsafe<Array<{ n: bigint }>>(`SELECT count(*) AS n FROM events WHERE type = 'session_closed' AND reason = 'evicted_idle' AND "sessionId" = $1`, idle.id);
    expect(Number(evicted[0]!.n)).toBe(1);
    // The streaming session still works.
    const listed = await streaming.listTools();
    expect(listed.tools.length).toBeGreaterThan(0);
    expect(await closeReason(third!.id!)).toBeNull();
  }, 60_000);

  it("shows the per-identity quota next to the count in /readyz", async () => {
    const ready = (await (await fetch(`${gw.address}/readyz`)).json()) as { sessions?: Record<string, { open: number; limit: number; perIdentity: number }> };
    const shared = JSON.stringify(ready).match(/"shared":\{[^}]*\}/)?.[0];
    expect(shared).toContain('"limit":8');
    expect(shared).toContain('"perIdentity":2');
  });
});

describe("closing sessions as an administrator", () => {
  it("closes one session by id and every idle one, recorded as admin_close, and refuses callers outside admin.groups", async () => {
    const a = await bareSession("erin");
    const admin = await tokenFor("olga", `${gw.config.publicUrl}/admin`, ["ops"]);
    const notAdmin = await tokenFor("mallory", `${gw.config.publicUrl}/admin`, ["dev"]);
    const refused = await fetch(`${gw.address}/admin/sessions/close`, { method: "POST", headers: { authorization: `Bearer ${notAdmin}`, "content-type": "application/json" }, body: JSON.stringify({ idle: true }) });
    expect(refused.status).toBe(403);
    expect(await closeReason(a.id!)).toBeNull();

    const byId = await fetch(`${gw.address}/admin/sessions/close`, { method: "POST", headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" }, body: JSON.stringify({ id: a.id }) });
    expect(byId.status).toBe(200);
    expect(((await byId.json()) as { closed: string[] }).closed).toEqual([a.id]);
    await expect.poll(() => closeReason(a.id!), { timeout: 10_000 }).toBe("admin_close");
    // The id is unknown from then on.
    const again = await fetch(`${gw.address}/admin/sessions/close`, { method: "POST", headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" }, body: JSON.stringify({ id: a.id }) });
    expect(again.status).toBe(404);

    // The CLI: `countersign sessions close --idle` closes idle sessions and leaves streaming ones.
    const b = await bareSession("frank");
    const streaming = await sdkClient("frank");
    const out = await runCli(["sessions", "close", "--idle", "--url", gw.address, "--token", admin]);
    expect(out.code).toBe(0);
    expect(out.stdout).toContain(b.id!);
    await expect.poll(() => closeReason(b.id!), { timeout: 10_000 }).toBe("admin_close");
    expect((await streaming.listTools()).tools.length).toBeGreaterThan(0);
    // Each action by the administrator is on record, the one that found nothing to close too.
    const recorded = await gw.db.$queryRawUnsafe<Array<{ closed: string }>>(`SELECT detail->>'closed' AS closed FROM events WHERE type = 'admin_action' AND reason = 'sessions_closed' AND subject = 'olga' ORDER BY id`);
    expect(recorded.map((r) => JSON.parse(r.closed) as string[])).toEqual([[a.id], [], expect.arrayContaining([b.id])]);
  }, 90_000);
});

describe("a client that stops reading its stream", () => {
  it("is cut once its unread bytes pass limits.clientBufferBytes, recorded as client_too_slow; the gateway serves others", async () => {
    // A legacy-SSE client that reads the endpoint event and then never reads again.
    const url = new URL(`${gw.address}/sse/flood`);
    const socket = connect(Number(url.port), url.hostname);
    const endpoint = await new Promise<string>((resolve, reject) => {
      let seen = "";
      socket.on("error", reject);
      socket.on("data", function onData(chunk: Buffer) {
        seen += chunk.toString("utf8");
        const m = seen.match(/event: endpoint\ndata: (\S+)/);
        if (m) {
          socket.off("data", onData);
          socket.pause(); // stop reading: the kernel's buffers fill, then the gateway's
          resolve(m[1]!);
        }
      });
      socket.write(`GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nAccept: text/event-stream\r\n\r\n`);
    });
    const sessionId = new URL(endpoint, gw.address).searchParams.get("sessionId")!;
    const post = (body: unknown) => fetch(new URL(endpoint, gw.address), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    expect((await post({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2024-11-05", capabilities: {}, clientInfo: { name: "slow", version: "1" } } })).status).toBe(202);
    expect((await post({ jsonrpc: "2.0", method: "notifications/initialized" })).status).toBe(202);
    // The upstream answers this call with 3000 notifications of 2 KiB each (6 MiB) before its answer.
    expect((await post({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "echo", arguments: { message: "flood" } } })).status).toBe(202);
    await expect.poll(() => closeReason(sessionId), { timeout: 30_000 }).toBe("client_too_slow");
    socket.destroy();
    // Others are served meanwhile and after.
    const other = await bareSession("grace");
    expect(other.status).toBe(200);
  }, 60_000);
});
