// Several replicas behind one Service: two gateway processes share one database, each with its
// internal relay port. A real SDK client whose requests alternate between the two public ports
// keeps one session (held by the replica it initialised on); the other replica relays its
// requests there, streams included. When the owner dies, the other replica answers 404 with
// CS_ERR_SESSION_OWNER_GONE and the client re-initialises. The relay port refuses requests not
// signed with the shared secret, and a relayed request is never relayed again. The request id
// (X-Request-Id) is the same in both replicas' log lines, the response header and the records.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { LoggingMessageNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { devIssuerUrl, loadDevIssuerKey, signDevToken } from "../../gateway/auth/dev-issuer.js";
import { signRelay } from "../../gateway/cluster/peer-auth.js";
import { createDb, type Db } from "../../gateway/store/client.js";
import { runCli } from "../helpers/cli.js";
import { createTestDatabase, ROOT, type TestDatabase } from "../helpers/postgres.js";
import { freePort, killGateway, startGatewayProcess, writeGatewayConfig, type GatewayProcess } from "../helpers/process.js";

const PUBLIC_URL = "http://countersign.test";
const EVERYTHING = join(ROOT, "node_modules/@modelcontextprotocol/server-everything/dist/index.js");
const SECRET = "cluster-secret-for-tests-0123456789abcdef";
/** Short, so a stalled replica is declared dead within the test; heartbeats go every 2 s. */
const DEAD_AFTER_SECONDS = 8;

let db: TestDatabase;
let prisma: Db;
let dir: string;
let token: string;
const gw: { a?: GatewayProcess; b?: GatewayProcess } = {};
const internal = { a: 0, b: 0 };
const clients: Client[] = [];

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function startReplica(name: "a" | "b"): Promise<GatewayProcess> {
  internal[name] = await freePort();
  const file = writeGatewayConfig(join(dir, `${name}.yaml`), {
    publicUrl: PUBLIC_URL,
    log: { level: "debug" },
    auth: { devIssuer: { enabled: true, keyFile: join(dir, "dev-issuer.jwk") } },
    cluster: { internalPort: internal[name], internalHost: "127.0.0.1", secret: { file: join(dir, "cluster-secret") }, deadAfterSeconds: DEAD_AFTER_SECONDS },
    connections: [{ name: "everything", access: {}, upstream: { type: "stdio", command: process.execPath, args: [EVERYTHING, "stdio"] } }],
  });
  return startGatewayProcess(file, db.url);
}

/** The instance row of a gateway process (by its pid). */
async function instanceOf(p: GatewayProcess) {
  return prisma.instance.findFirstOrThrow({ where: { pid: p.pid }, orderBy: { startedAt: "desc" } });
}

/** A fetch that sends each request to a replica chosen by `route` (same path, other origin). */
function routedFetch(route: (method: string) => GatewayProcess, log: Array<{ method: string; to: string; status: number }>) {
  return async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const method = init?.method ?? (input instanceof Request ? input.method : "GET");
    const target = new URL(route(method).url);
    url.protocol = target.protocol;
    url.host = target.host;
    const res = await fetch(url, init);
    log.push({ method, to: target.host, status: res.status });
    return res;
  };
}

function authHeaders(extra: Record<string, string> = {}) {
  return { authorization: `Bearer ${token}`, ...extra };
}

/** Opens a session with a raw initialize at `p`; returns its id and the headers for its next requests. */
async function rawSession(p: GatewayProcess) {
  const res = await fetch(p.mcpUrl("everything"), {
    method: "POST",
    headers: authHeaders({ "content-type": "application/json", accept: "application/json, text/event-stream;q=0.1" }),
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } } }),
  });
  expect(res.status).toBe(200);
  await res.text();
  const sid = res.headers.get("mcp-session-id")!;
  return { sid, headers: authHeaders({ "content-type": "application/json", accept: "application/json, text/event-stream;q=0.1", "mcp-session-id": sid, "mcp-protocol-version": "2025-06-18" }) };
}

async function toolsList(p: GatewayProcess, headers: Record<string, string>) {
  const res = await fetch(p.mcpUrl("everything"), { method: "POST", headers, body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list" }) });
  return { status: res.status, body: (await res.json()) as { result?: { tools: unknown[] }; error?: { data: { code: string; detail?: string } } } };
}

/** Reads an SSE (or JSON) body to its end. */
async function readAll(res: Response): Promise<string> {
  return res.text();
}

beforeAll(async () => {
  db = await createTestDatabase();
  prisma = createDb(db.url, { poolSize: 2 });
  dir = mkdtempSync(join(tmpdir(), "countersign-cluster-"));
  writeFileSync(join(dir, "cluster-secret"), `${SECRET}\n`);
  // One dev-issuer key for both replicas (as one shared Secret would be in a cluster).
  const key = await loadDevIssuerKey(join(dir, "dev-issuer.jwk"));
  token = await signDevToken(key, devIssuerUrl(PUBLIC_URL), {
    subject: "alice",
    email: "alice@example.com",
    groups: ["dev"],
    audience: [`${PUBLIC_URL}/mcp/everything`, `${PUBLIC_URL}/sse/everything`],
    ttlSeconds: 3600,
  });
  [gw.a, gw.b] = await Promise.all([startReplica("a"), startReplica("b")]);
}, 60_000);

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => {});
  await killGateway(gw.a);
  await killGateway(gw.b);
  await prisma?.$disconnect();
  await db?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("two replicas, one database", () => {
  it("register where their peers relay to", async () => {
    const [a, b] = [await instanceOf(gw.a!), await instanceOf(gw.b!)];
    expect(a.relayUrl).toBe(`http://127.0.0.1:${internal.a}`);
    expect(b.relayUrl).toBe(`http://127.0.0.1:${internal.b}`);
  });

  it("serve one session to a client alternating between them: requests, notifications and streams", async () => {
    const log: Array<{ method: string; to: string; status: number }> = [];
    let n = 0;
    const hostB = new URL(gw.b!.url).host;
    // POSTs and DELETEs alternate between the replicas, starting with A (which then holds the
    // session); the GET stream opens at B, which does not.
    const transport = new StreamableHTTPClientTransport(new URL(gw.a!.mcpUrl("everything")), {
      fetch: routedFetch((method) => (method === "GET" ? gw.b! : n++ % 2 === 0 ? gw.a! : gw.b!), log),
      requestInit: { headers: authHeaders() },
    });
    const client = new Client({ name: "cluster-test", version: "1.0.0" });
    clients.push(client);
    const logged: string[] = [];
    client.setNotificationHandler(LoggingMessageNotificationSchema, (m) => void logged.push(String(m.params.level)));
    await client.connect(transport);
    const sessionId = transport.sessionId!;
    const row = await prisma.session.findUniqueOrThrow({ where: { id: sessionId } });
    expect(row.ownerInstanceId).toBe((await instanceOf(gw.a!)).id);

    const tools = await client.listTools();
    expect(tools.tools.map((t) => t.name)).toContain("echo");
    const echo = await client.callTool({ name: "echo", arguments: { message: "across replicas" } });
    expect(JSON.stringify(echo.content)).toContain("across replicas");
    // Progress notifications come on the POST's SSE stream, through the relay when it is at B.
    const progress: number[] = [];
    const first = await client.callTool({ name: "trigger-long-running-operation", arguments: { duration: 0.3, steps: 3 } }, undefined, { onprogress: (p) => void progress.push(p.progress) });
    const second = await client.callTool({ name: "trigger-long-running-operation", arguments: { duration: 0.3, steps: 3 } }, undefined, { onprogress: (p) => void progress.push(p.progress) });
    expect(first.isError ?? false).toBe(false);
    expect(second.isError ?? false).toBe(false);
    expect(progress).toEqual([1, 2, 3, 1, 2, 3]);
    const sum = await client.callTool({ name: "get-sum", arguments: { a: 2, b: 3 } });
    expect(JSON.stringify(sum.content)).toContain("5");

    // Messages not tied to a request reach the client on its GET stream, opened at B.
    await client.setLoggingLevel("debug");
    await client.callTool({ name: "toggle-simulated-logging", arguments: {} });
    await waitFor("a log notification on the relayed GET stream", () => logged.length > 0);
    expect(log.some((r) => r.method === "GET" && r.to === hostB && r.status === 200)).toBe(true);

    // Both replicas answered POSTs, and every exchange was recorded once, by the owner.
    expect(new Set(log.filter((r) => r.method === "POST").map((r) => r.to)).size).toBe(2);
    expect(log.filter((r) => r.status >= 400)).toEqual([]);
    const calls = await prisma.message.findMany({ where: { sessionId, method: "tools/call", direction: "in" } });
    expect(calls).toHaveLength(5);

    // Closing the session at the replica that does not hold it closes it at the owner.
    n = 1; // the next POST/DELETE goes to B
    await transport.terminateSession();
    expect(log.at(-1)).toMatchObject({ method: "DELETE", to: hostB, status: 200 });
    await waitFor("the session closed by the owner", async () => (await prisma.session.findUnique({ where: { id: sessionId } }))?.closeReason === "client_delete");
    await client.close();
  }, 60_000);

  it("serve a legacy SSE session whose messages are posted to the other replica", async () => {
    const log: Array<{ method: string; to: string; status: number }> = [];
    const hostB = new URL(gw.b!.url).host;
    const transport = new SSEClientTransport(new URL(`${gw.a!.url}/sse/everything`), {
      fetch: routedFetch((method) => (method === "GET" ? gw.a! : gw.b!), log),
      requestInit: { headers: authHeaders() },
    });
    const client = new Client({ name: "cluster-legacy", version: "1.0.0" });
    clients.push(client);
    await client.connect(transport);
    const echo = await client.callTool({ name: "echo", arguments: { message: "legacy across replicas" } });
    expect(JSON.stringify(echo.content)).toContain("legacy across replicas");
    expect(log.filter((r) => r.method === "POST").every((r) => r.to === hostB && r.status === 202)).toBe(true);
    expect(log.filter((r) => r.method === "POST").length).toBeGreaterThanOrEqual(2);
    await client.close();
  }, 30_000);

  it("keeps the request id across the relay: response header, both replicas' logs, and the records", async () => {
    // A session held by A, called at B with the caller's X-Request-Id.
    const init = await fetch(gw.a!.mcpUrl("everything"), {
      method: "POST",
      headers: authHeaders({ "content-type": "application/json", accept: "application/json, text/event-stream" }),
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } } }),
    });
    const sid = init.headers.get("mcp-session-id")!;
    await readAll(init);
    const headers = authHeaders({ "content-type": "application/json", accept: "application/json, text/event-stream", "mcp-session-id": sid, "mcp-protocol-version": "2025-06-18" });
    await readAll(await fetch(gw.b!.mcpUrl("everything"), { method: "POST", headers, body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) }));

    const requestId = "req-cluster-7f3a9c";
    const res = await fetch(gw.b!.mcpUrl("everything"), {
      method: "POST",
      headers: { ...headers, "x-request-id": requestId },
      body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "echo", arguments: { message: "with an id" } } }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toBe(requestId);
    expect(await readAll(res)).toContain("with an id");

    const rows = await prisma.message.findMany({ where: { requestId }, orderBy: { id: "asc" } });
    expect(rows.map((r) => `${r.direction} ${r.kind} ${r.method}`)).toEqual(["in request tools/call", "out response tools/call"]);
    expect(rows.every((r) => r.sessionId === sid)).toBe(true);

    const linesWith = (p: GatewayProcess) =>
      p
        .output()
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as { reqId?: string; relayed?: boolean })
        .filter((l) => l.reqId === requestId);
    await waitFor("the request's log lines at both replicas", () => linesWith(gw.a!).length > 0 && linesWith(gw.b!).length > 0);
    expect(linesWith(gw.b!).some((l) => l.relayed === false)).toBe(true);
    expect(linesWith(gw.a!).some((l) => l.relayed === true)).toBe(true);

    // From a log line to the record: `sessions --request` finds the session, `replay` shows the id.
    const env = { DATABASE_URL: db.url };
    const [found, replay] = await Promise.all([runCli(["sessions", "--request", requestId, "--json"], env), runCli(["replay", sid], env)]);
    expect((JSON.parse(found.stdout) as Array<{ id: string }>).map((s) => s.id)).toEqual([sid]);
    // The request and its answer carry the id, and so do the events it caused (replay interleaves them).
    expect(replay.stdout.split("\n").filter((l) => l.includes(`[req ${requestId}]`)).length).toBeGreaterThanOrEqual(2);

    // Without an id (or with a malformed one) the gateway makes one, returns it and records it.
    const bad = await fetch(gw.a!.mcpUrl("everything"), {
      method: "POST",
      headers: { ...headers, "x-request-id": "no spaces allowed here" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 3, method: "tools/list" }),
    });
    const made = bad.headers.get("x-request-id")!;
    expect(made).toMatch(/^[0-9a-f-]{36}$/);
    await readAll(bad);
    expect(await prisma.message.count({ where: { requestId: made, sessionId: sid } })).toBe(2);

    // A refused request's record carries its id too.
    const refused = await fetch(gw.b!.mcpUrl("everything"), {
      method: "POST",
      headers: { ...headers, "mcp-session-id": "no-such-session", "x-request-id": "req-refused-1" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 4, method: "tools/list" }),
    });
    expect(refused.status).toBe(404);
    expect(refused.headers.get("x-request-id")).toBe("req-refused-1");
    await waitFor("the refusal recorded with its request id", async () => (await prisma.event.count({ where: { requestId: "req-refused-1", type: "message_rejected", reason: "unknown_session" } })) === 1);
  }, 90_000);

  it("the relay port refuses requests not signed with the shared secret, and never relays twice", async () => {
    const init = await fetch(gw.a!.mcpUrl("everything"), {
      method: "POST",
      headers: authHeaders({ "content-type": "application/json", accept: "application/json, text/event-stream;q=0.1" }),
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } } }),
    });
    const sid = init.headers.get("mcp-session-id")!;
    await readAll(init);
    const path = "/mcp/everything";
    const body = JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list" });
    const base = authHeaders({ "content-type": "application/json", accept: "application/json, text/event-stream;q=0.1", "mcp-session-id": sid, "x-request-id": "relay-check-1" });
    const toInternal = (port: number, extra: Record<string, string>) =>
      fetch(`http://127.0.0.1:${port}${path}`, { method: "POST", headers: { ...base, ...extra }, body });

    const none = await toInternal(internal.a, {});
    expect(none.status).toBe(401);
    expect(((await none.json()) as { error: { data: { code: string } } }).error.data.code).toBe("CS_ERR_RELAY_UNAUTHORIZED");

    const wrong = await toInternal(internal.a, { "x-countersign-relay": signRelay("another-secret-of-enough-length-0000000", "POST", path, "relay-check-1", body) });
    expect(wrong.status).toBe(401);
    expect(JSON.stringify(await wrong.json())).toContain("CS_ERR_RELAY_UNAUTHORIZED");

    // Signed for another request id: refused too (the signature binds the request).
    const replayed = await toInternal(internal.a, { "x-countersign-relay": signRelay(SECRET, "POST", path, "some-other-request", body) });
    expect(replayed.status).toBe(401);
    // Signed for this request, but its body changed in transit: refused before it reaches a route.
    const tamperedBody = JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "echo", arguments: { message: "not what was signed" } } });
    const tampered = await fetch(`http://127.0.0.1:${internal.a}${path}`, {
      method: "POST",
      headers: { ...base, "x-request-id": "relay-check-tampered", "x-countersign-relay": signRelay(SECRET, "POST", path, "relay-check-tampered", body) },
      body: tamperedBody,
    });
    expect(tampered.status).toBe(401);
    const tamperedError = ((await tampered.json()) as { error: { data: { code: string; detail?: string } } }).error.data;
    expect(tamperedError.code).toBe("CS_ERR_RELAY_UNAUTHORIZED");
    expect(JSON.stringify(tamperedError)).toContain("changed in transit");
    // A signature from before the body hash (v1) is refused: replicas must run the same version.
    const v1 = await toInternal(internal.a, { "x-countersign-relay": `v1 t=${Math.floor(Date.now() / 1000)} sig=${"0".repeat(64)}` });
    expect(v1.status).toBe(401);
    // Each refusal is recorded (and logged), without the signature or the caller's token.
    await waitFor("the refusals recorded", async () => (await prisma.event.count({ where: { type: "message_rejected", reason: "relay_unauthorized" } })) === 5);
    const tamperRecord = await prisma.event.findFirst({ where: { type: "message_rejected", reason: "relay_unauthorized", requestId: "relay-check-tampered" } });
    expect(JSON.stringify(tamperRecord?.detail)).toContain("changed in transit");
    expect(gw.a!.output()).not.toContain("not what was signed");
    expect(gw.a!.output()).toContain("relay refused");
    expect(gw.a!.output()).not.toContain(token);

    // Correctly signed, at the owner: served as any request (the caller's token is checked again).
    const ok = await toInternal(internal.a, { "x-countersign-relay": signRelay(SECRET, "POST", path, "relay-check-1", body) });
    expect(ok.status).toBe(200);
    expect(JSON.stringify(await ok.json())).toContain("echo");
    const noToken = await fetch(`http://127.0.0.1:${internal.a}${path}`, {
      method: "POST",
      headers: { ...base, authorization: "", "x-countersign-relay": signRelay(SECRET, "POST", path, "relay-check-1", body) },
      body,
    });
    expect(noToken.status).toBe(401);
    expect(JSON.stringify(await noToken.json())).toContain("CS_ERR_UNAUTHENTICATED");

    // Correctly signed, at a replica that does not hold the session: refused, not relayed again.
    const twice = await toInternal(internal.b, { "x-countersign-relay": signRelay(SECRET, "POST", path, "relay-check-1", body) });
    expect(twice.status).toBe(404);
    expect(JSON.stringify(await twice.json())).toContain("CS_ERR_RELAY_NOT_OWNER");
  }, 30_000);

  it("declares a stalled replica dead: the other closes its sessions, and the replica, back, ends them too", async () => {
    const { sid, headers } = await rawSession(gw.a!);
    const [a, b] = [await instanceOf(gw.a!), await instanceOf(gw.b!)];
    gw.a!.child.kill("SIGSTOP");
    try {
      await waitFor("B to declare A dead and close its session", async () => (await prisma.session.findUnique({ where: { id: sid } }))?.closeReason === "owner_gone", 40_000);
      expect((await prisma.instance.findUniqueOrThrow({ where: { id: a.id } })).stoppedAt).not.toBeNull();
      const closedBy = await prisma.event.findFirstOrThrow({ where: { sessionId: sid, type: "session_closed", reason: "owner_gone" } });
      expect(closedBy.detail).toMatchObject({ ownerInstanceId: a.id, closedBy: b.id });
      const atB = await toolsList(gw.b!, headers);
      expect(atB.status).toBe(404);
      expect(atB.body.error?.data.code).toBe("CS_ERR_SESSION_OWNER_GONE");
    } finally {
      gw.a!.child.kill("SIGCONT");
    }
    // Back, A finds itself declared dead: it ends its sessions and is live again for new ones.
    await waitFor("A to report again", async () => (await prisma.instance.findUniqueOrThrow({ where: { id: a.id } })).stoppedAt === null);
    const atA = await toolsList(gw.a!, headers);
    expect(atA.status).toBe(404);
    expect(atA.body.error?.data.code).toBe("CS_ERR_SESSION_OWNER_GONE");
    const fresh = await rawSession(gw.a!);
    const relayed = await toolsList(gw.b!, fresh.headers);
    expect(relayed.status).toBe(200);
    expect(relayed.body.result?.tools.length).toBeGreaterThan(0);
  }, 90_000);

  it("ends the sessions of a replica that dies: the other answers 404 and the client re-initialises there", async () => {
    const log: Array<{ method: string; to: string; status: number }> = [];
    let alternate = true;
    let n = 0;
    const transport = new StreamableHTTPClientTransport(new URL(gw.a!.mcpUrl("everything")), {
      fetch: routedFetch(() => (!alternate ? gw.b! : n++ % 2 === 0 ? gw.a! : gw.b!), log),
      requestInit: { headers: authHeaders() },
    });
    const client = new Client({ name: "cluster-failover", version: "1.0.0" });
    clients.push(client);
    await client.connect(transport);
    await client.listTools();
    const sessionId = transport.sessionId!;
    const owner = await instanceOf(gw.a!);

    await killGateway(gw.a);
    alternate = false; // everything goes to B now
    const failed = await client.callTool({ name: "echo", arguments: { message: "after the owner died" } }).catch((e: Error) => e);
    expect(failed).toBeInstanceOf(Error);
    expect((failed as { code?: number }).code).toBe(404);
    expect((failed as Error).message).toContain("CS_ERR_SESSION_OWNER_GONE");

    // The same answer once the owner is known to be gone (its heartbeat is older than
    // deadAfterSeconds; here made so), without trying it; and B closes its sessions.
    await prisma.$executeRaw`UPDATE "instances" SET "lastSeenAt" = now() - interval '1 hour' WHERE "id" = ${owner.id}`;
    const again = await fetch(`${gw.b!.url}/mcp/everything`, {
      method: "POST",
      headers: authHeaders({ "content-type": "application/json", accept: "application/json, text/event-stream;q=0.1", "mcp-session-id": sessionId }),
      body: JSON.stringify({ jsonrpc: "2.0", id: 99, method: "tools/list" }),
    });
    expect(again.status).toBe(404);
    const body = (await again.json()) as { error: { data: { code: string; detail: string } } };
    expect(body.error.data.code).toBe("CS_ERR_SESSION_OWNER_GONE");
    expect(body.error.data.detail).toContain("stopped");
    await waitFor("the dead owner's session closed by B", async () => (await prisma.session.findUnique({ where: { id: sessionId } }))?.closeReason === "owner_gone");

    // The client starts over, at the surviving replica.
    await client.close().catch(() => {});
    const fresh = new Client({ name: "cluster-failover", version: "1.0.0" });
    clients.push(fresh);
    const retry = new StreamableHTTPClientTransport(new URL(gw.b!.mcpUrl("everything")), { requestInit: { headers: authHeaders() } });
    await fresh.connect(retry);
    const echo = await fresh.callTool({ name: "echo", arguments: { message: "after re-initialising" } });
    expect(JSON.stringify(echo.content)).toContain("after re-initialising");
    expect((await prisma.session.findUniqueOrThrow({ where: { id: retry.sessionId! } })).ownerInstanceId).toBe((await instanceOf(gw.b!)).id);
    await fresh.close();
  }, 60_000);
});
