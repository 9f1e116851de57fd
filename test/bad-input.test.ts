// Bad input from either side: each case gets a precise error (HTTP status and CS_ERR_* code) to
// the party that sent it, the gateway keeps serving (a fresh session works after every case), and
// the record shows what happened (an `events` row, or `messages` rows).
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { LoggingMessageNotificationSchema, McpError } from "@modelcontextprotocol/sdk/types.js";
import { createParser } from "eventsource-parser";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "./helpers/postgres.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";

const FIXTURE = new URL("./fixtures/misbehaving-server.mjs", import.meta.url).pathname;
const misbehaving = (mode: string, env: Record<string, string> = {}) => ({ type: "stdio", command: process.execPath, args: [FIXTURE, mode], env });

const FLOOD_COUNT = 20_000;
const NOTIFICATIONS_PER_SECOND = 50;
const REQUEST_BODY_LIMIT = 8192;
const UPSTREAM_MESSAGE_LIMIT = 65_536;

type Json = Record<string, any>;

let db: TestDatabase;
let gw: TestGateway;
/** The newest event id before the running test: its events come after. */
let eventMark = 0n;
const openClients: Array<{ client: Client; transport: StreamableHTTPClientTransport }> = [];
const openStreams: AbortController[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  gw = await startTestGateway(db.url, {
    limits: { requestBodyBytes: REQUEST_BODY_LIMIT, upstreamMessageBytes: UPSTREAM_MESSAGE_LIMIT, notificationsPerSecond: NOTIFICATIONS_PER_SECOND },
    connections: [
      { name: "ok", upstream: misbehaving("ok") },
      { name: "unknown-id", upstream: misbehaving("unknown-id") },
      { name: "exit-mid-call", upstream: misbehaving("exit-mid-call") },
      { name: "flood", upstream: misbehaving("flood", { FLOOD_COUNT: String(FLOOD_COUNT) }) },
      { name: "oversized", upstream: misbehaving("oversized", { OVERSIZED_BYTES: String(4 * UPSTREAM_MESSAGE_LIMIT) }) },
      { name: "not-json", upstream: misbehaving("not-json") },
      { name: "exit-at-start", upstream: misbehaving("exit-at-start") },
      { name: "missing", upstream: { type: "stdio", command: "/nonexistent/countersign-test-no-such-command" } },
      { name: "capped", upstream: misbehaving("ok"), maxSessions: 1 },
      { name: "idle", upstream: misbehaving("ok"), idleTimeoutSeconds: 1 },
    ],
  });
});

afterAll(async () => {
  await gw?.stop();
  await db?.drop();
});

beforeEach(async () => {
  eventMark = (await gw.db.event.aggregate({ _max: { id: true } }))._max.id ?? 0n;
});

afterEach(async () => {
  for (const s of openStreams.splice(0)) s.abort();
  for (const c of openClients.splice(0)) await closeClient(c);
  // No crash: whatever the case did, a new session works end to end.
  expect((await fetch(`${gw.address}/healthz`)).status).toBe(200);
  const fresh = await connect("ok");
  const result = await fresh.client.callTool({ name: "echo", arguments: { message: "still serving" } });
  expect(result.content).toEqual([{ type: "text", text: "Echo: still serving" }]);
  await closeClient(fresh);
  openClients.splice(0);
});

// ── helpers ─────────────────────────────────────────────────────────────────────────────────

async function connect(connection: string) {
  const transport = new StreamableHTTPClientTransport(gw.mcpUrl(connection));
  const client = new Client({ name: "bad-input-test", version: "1.0.0" });
  await client.connect(transport);
  const entry = { client, transport };
  openClients.push(entry);
  return entry;
}

/** Ends the session (DELETE) so its child process stops, then closes the client. */
async function closeClient({ client, transport }: { client: Client; transport: StreamableHTTPClientTransport }) {
  await transport.terminateSession().catch(() => {});
  await client.close().catch(() => {});
}

async function waitFor<T>(probe: () => T | Promise<T>, what: string, timeoutMs = 15_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * The event the running test caused. Front rejections are rate limited (20 a second, the rest
 * summarised per connection), so a summary row with the same type and reason also counts.
 */
async function expectEvent(type: string, reason: string, where: { connection?: string | null; sessionId?: string } = {}) {
  return waitFor(async () => {
    const rows = await gw.db.event.findMany({ where: { id: { gt: eventMark }, type, reason }, orderBy: { id: "asc" } });
    return rows.find((e) => {
      const aggregated = (e.detail as Json | null)?.aggregated === true;
      if (where.connection !== undefined && e.connection !== where.connection) return false;
      if (where.sessionId !== undefined && !aggregated && e.sessionId !== where.sessionId) return false;
      return true;
    });
  }, `event ${type}/${reason} ${JSON.stringify(where)}`);
}

/** How many refusals with this reason the running test caused (summary rows carry a count). */
async function rejectionCount(reason: string): Promise<number> {
  const rows = await gw.db.event.findMany({ where: { id: { gt: eventMark }, type: "message_rejected", reason } });
  return rows.reduce((n, e) => n + ((e.detail as Json | null)?.aggregated === true ? Number((e.detail as Json).count) : 1), 0);
}

const JSON_AND_SSE = "application/json, text/event-stream";

function post(connection: string, body: string | unknown, headers: Record<string, string> = {}) {
  return fetch(gw.mcpUrl(connection), {
    method: "POST",
    headers: { "content-type": "application/json", accept: JSON_AND_SSE, ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** The JSON-RPC messages of a response, whether it came as a JSON body or as an SSE stream. */
async function messagesOf(res: Response): Promise<Json[]> {
  const text = await res.text();
  if ((res.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
    const out: Json[] = [];
    // An event with no data (a 2025-11-25 priming event: an id to resume from) carries no message.
    const parser = createParser({ onEvent: (e) => void ((e.event === undefined || e.event === "message") && e.data !== "" ? out.push(JSON.parse(e.data)) : undefined) });
    parser.feed(text);
    return out;
  }
  const parsed = JSON.parse(text) as Json | Json[];
  return Array.isArray(parsed) ? parsed : [parsed];
}

/** Asserts an HTTP-level refusal: the status, and a JSON-RPC error carrying the catalogue code. */
async function expectRefusal(res: Response, status: number, code: string): Promise<Json> {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  const body = (await res.json()) as Json;
  expect(body.jsonrpc).toBe("2.0");
  expect(body.error.data.code).toBe(code);
  return body;
}

let nextId = 1;
const request = (method: string, params: Json = {}) => ({ jsonrpc: "2.0", id: nextId++, method, params });

/** Opens a session by hand and returns its id (after notifications/initialized). */
async function rawSession(connection: string, protocolVersion = "2025-11-25"): Promise<string> {
  const res = await post(connection, request("initialize", { protocolVersion, capabilities: {}, clientInfo: { name: "raw", version: "1" } }));
  expect(res.status).toBe(200);
  const [answer] = await messagesOf(res);
  expect(answer?.result?.protocolVersion).toBe(protocolVersion);
  const sessionId = res.headers.get("mcp-session-id")!;
  expect(sessionId).toBeTruthy();
  const initialized = await post(connection, { jsonrpc: "2.0", method: "notifications/initialized" }, { "mcp-session-id": sessionId, "mcp-protocol-version": protocolVersion });
  expect(initialized.status).toBe(202);
  return sessionId;
}

async function ping(connection: string, sessionId: string): Promise<Json> {
  const res = await post(connection, request("ping"), { "mcp-session-id": sessionId });
  expect(res.status).toBe(200);
  const [answer] = await messagesOf(res);
  return answer!;
}

function mcpError(err: unknown): McpError {
  expect(err).toBeInstanceOf(McpError);
  return err as McpError;
}

// ── the client sends bad input ──────────────────────────────────────────────────────────────

describe("bad input from the client", () => {
  it("malformed JSON: 400 CS_ERR_PARSE, recorded, the session carries on", async () => {
    const sid = await rawSession("ok");
    const body = await expectRefusal(await post("ok", '{"jsonrpc": "2.0", "id": 1, "method": ', { "mcp-session-id": sid }), 400, "CS_ERR_PARSE");
    expect(body.id).toBeNull();
    expect(body.error.code).toBe(-32700);
    await expectEvent("message_rejected", "parse_error", { connection: "ok" });
    // Recorded once, not once per layer that saw it.
    await gw.recorder.drain();
    expect(await rejectionCount("parse_error")).toBe(1);
    expect((await ping("ok", sid)).result).toEqual({});
  });

  it("JSON that is not JSON-RPC: 400 CS_ERR_INVALID_REQUEST, recorded, nothing forwarded", async () => {
    const sid = await rawSession("ok");
    const body = await expectRefusal(await post("ok", { hello: "world", id: 7 }, { "mcp-session-id": sid }), 400, "CS_ERR_INVALID_REQUEST");
    expect(body.error.code).toBe(-32600);
    await expectRefusal(await post("ok", [request("ping"), { jsonrpc: "1.0", id: 3 }], { "mcp-session-id": sid }), 400, "CS_ERR_INVALID_REQUEST");
    await expectEvent("message_rejected", "invalid_jsonrpc", { connection: "ok" });
    const recorded = await gw.db.message.findMany({ where: { sessionId: sid, direction: "in" } });
    expect(recorded.map((m) => m.method)).toEqual(["initialize", "notifications/initialized"]);
  });

  it("an id that is neither a string nor a safe integer (1.5, 2^53 + 2): refused at once with CS_ERR_INVALID_REQUEST, never forwarded", async () => {
    const sid = await rawSession("ok");
    for (const id of [1.5, 2 ** 53 + 2]) {
      const body = await expectRefusal(await post("ok", { jsonrpc: "2.0", id, method: "ping" }, { "mcp-session-id": sid }), 400, "CS_ERR_INVALID_REQUEST");
      expect(body.error.code).toBe(-32600);
    }
    const recorded = await gw.db.message.findMany({ where: { sessionId: sid, direction: "in" } });
    expect(recorded.map((m) => m.method)).toEqual(["initialize", "notifications/initialized"]);
    expect((await ping("ok", sid)).result).toEqual({});
  });

  it("wrong content type: 415 CS_ERR_UNSUPPORTED_MEDIA_TYPE, recorded", async () => {
    const sid = await rawSession("ok");
    const res = await fetch(gw.mcpUrl("ok"), {
      method: "POST",
      headers: { "content-type": "text/plain", accept: JSON_AND_SSE, "mcp-session-id": sid },
      body: JSON.stringify(request("ping")),
    });
    await expectRefusal(res, 415, "CS_ERR_UNSUPPORTED_MEDIA_TYPE");
    const ev = await expectEvent("message_rejected", "unsupported_media_type", { connection: "ok" });
    if (!(ev.detail as Json).aggregated) expect((ev.detail as Json).contentType).toBe("text/plain");
    expect((await ping("ok", sid)).result).toEqual({});
  });

  it("body over limits.requestBodyBytes: 413 CS_ERR_BODY_TOO_LARGE, recorded, nothing forwarded", async () => {
    const sid = await rawSession("ok");
    const big = request("tools/call", { name: "echo", arguments: { message: "x".repeat(REQUEST_BODY_LIMIT * 2) } });
    await expectRefusal(await post("ok", big, { "mcp-session-id": sid }), 413, "CS_ERR_BODY_TOO_LARGE");
    const ev = await expectEvent("message_rejected", "body_too_large", { connection: "ok" });
    if (!(ev.detail as Json).aggregated) expect((ev.detail as Json).limit).toBe(REQUEST_BODY_LIMIT);
    expect(await gw.db.message.count({ where: { sessionId: sid, method: "tools/call" } })).toBe(0);
    expect((await ping("ok", sid)).result).toEqual({});
  });

  it("unknown connection: 404 CS_ERR_UNKNOWN_CONNECTION on both fronts, recorded", async () => {
    const init = request("initialize", { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } });
    const body = await expectRefusal(await post("no-such-connection", init), 404, "CS_ERR_UNKNOWN_CONNECTION");
    expect(body.error.data.detail).toContain("no-such-connection");
    await expectRefusal(await fetch(gw.sseUrl("no-such-connection"), { headers: { accept: "text/event-stream" } }), 404, "CS_ERR_UNKNOWN_CONNECTION");
    const ev = await expectEvent("message_rejected", "unknown_connection", { connection: null });
    if (!(ev.detail as Json).aggregated) expect((ev.detail as Json).requestedConnection).toBe("no-such-connection");
    // Outside the MCP endpoints, the catalogue's not-found error.
    await expectRefusal(await fetch(`${gw.address}/elsewhere`), 404, "CS_ERR_NOT_FOUND");
  });

  it("missing session id: 400 CS_ERR_SESSION_REQUIRED, recorded", async () => {
    await expectRefusal(await post("ok", request("tools/list")), 400, "CS_ERR_SESSION_REQUIRED");
    await expectEvent("message_rejected", "session_required", { connection: "ok" });
  });

  it("unknown session id: 404 CS_ERR_UNKNOWN_SESSION, recorded", async () => {
    await expectRefusal(await post("ok", request("tools/list"), { "mcp-session-id": "no-such-session-0123456789" }), 404, "CS_ERR_UNKNOWN_SESSION");
    await expectEvent("message_rejected", "unknown_session", { connection: "ok" });
  });

  it("a session id used after DELETE: 404 CS_ERR_UNKNOWN_SESSION, the session row says why it ended", async () => {
    const sid = await rawSession("ok");
    const del = await fetch(gw.mcpUrl("ok"), { method: "DELETE", headers: { "mcp-session-id": sid } });
    expect(del.status).toBe(200);
    await expectRefusal(await post("ok", request("tools/list"), { "mcp-session-id": sid }), 404, "CS_ERR_UNKNOWN_SESSION");
    await expectRefusal(await fetch(gw.mcpUrl("ok"), { method: "DELETE", headers: { "mcp-session-id": sid } }), 404, "CS_ERR_UNKNOWN_SESSION");
    await expectEvent("session_closed", "client_delete", { sessionId: sid });
    await expectEvent("message_rejected", "unknown_session", { connection: "ok" });
    const row = await waitFor(() => gw.db.session.findFirst({ where: { id: sid, closedAt: { not: null } } }), "session row closed");
    expect(row.closeReason).toBe("client_delete");
  });

  it("a session id used after its idle timeout: 404 CS_ERR_UNKNOWN_SESSION", async () => {
    // idleTimeoutSeconds: 1 on this connection; the sweeper runs every 5 s.
    const sid = await rawSession("idle");
    await expectEvent("session_closed", "idle_timeout", { sessionId: sid });
    await expectRefusal(await post("idle", request("tools/list"), { "mcp-session-id": sid }), 404, "CS_ERR_UNKNOWN_SESSION");
    const row = await waitFor(() => gw.db.session.findFirst({ where: { id: sid, closedAt: { not: null } } }), "session row closed");
    expect(row.closeReason).toBe("idle_timeout");
  });

  it("unsupported MCP-Protocol-Version header: 400 CS_ERR_UNSUPPORTED_PROTOCOL_VERSION, recorded", async () => {
    const sid = await rawSession("ok");
    const body = await expectRefusal(
      await post("ok", request("ping"), { "mcp-session-id": sid, "mcp-protocol-version": "1999-01-01" }),
      400,
      "CS_ERR_UNSUPPORTED_PROTOCOL_VERSION",
    );
    expect(body.error.data.detail).toContain("1999-01-01");
    await expectEvent("message_rejected", "unsupported_protocol_version", { connection: "ok", sessionId: sid });
    const ok = await post("ok", request("ping"), { "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25" });
    expect((await messagesOf(ok))[0]?.result).toEqual({});
  });

  it("a batch after 2025-06-18 was negotiated: 400 CS_ERR_BATCH_NOT_ALLOWED, recorded, nothing forwarded", async () => {
    const sid = await rawSession("ok", "2025-06-18");
    const batch = [request("ping"), request("tools/list")];
    await expectRefusal(await post("ok", batch, { "mcp-session-id": sid, "mcp-protocol-version": "2025-06-18" }), 400, "CS_ERR_BATCH_NOT_ALLOWED");
    await expectEvent("message_rejected", "batch_not_allowed", { connection: "ok", sessionId: sid });
    expect(await gw.db.message.count({ where: { sessionId: sid, method: { in: ["ping", "tools/list"] } } })).toBe(0);

    // The same batch under 2025-03-26, which has batches, is answered in full.
    const older = await rawSession("ok", "2025-03-26");
    const answers = await messagesOf(await post("ok", [request("ping"), request("tools/list")], { "mcp-session-id": older, "mcp-protocol-version": "2025-03-26" }));
    expect(answers).toHaveLength(2);
    expect(answers.every((a) => a.result !== undefined)).toBe(true);
  });

  it("a second GET stream: 409 CS_ERR_STREAM_CONFLICT, recorded; once the first closes a new one opens", async () => {
    const sid = await rawSession("ok");
    const first = new AbortController();
    openStreams.push(first);
    const stream = await fetch(gw.mcpUrl("ok"), { headers: { accept: "text/event-stream", "mcp-session-id": sid }, signal: first.signal });
    expect(stream.status).toBe(200);
    expect(stream.headers.get("content-type")).toBe("text/event-stream");
    await expectRefusal(
      await fetch(gw.mcpUrl("ok"), { headers: { accept: "text/event-stream", "mcp-session-id": sid } }),
      409,
      "CS_ERR_STREAM_CONFLICT",
    );
    await expectEvent("message_rejected", "stream_conflict", { connection: "ok", sessionId: sid });
    first.abort();
    const again = new AbortController();
    openStreams.push(again);
    await waitFor(async () => {
      const res = await fetch(gw.mcpUrl("ok"), { headers: { accept: "text/event-stream", "mcp-session-id": sid }, signal: again.signal });
      if (res.status !== 200) await res.body?.cancel();
      return res.status === 200;
    }, "a new GET stream after the first closed");
  });

  it("GET without Accept: text/event-stream: 406 CS_ERR_NOT_ACCEPTABLE, recorded", async () => {
    const sid = await rawSession("ok");
    await expectRefusal(await fetch(gw.mcpUrl("ok"), { headers: { accept: "application/json", "mcp-session-id": sid } }), 406, "CS_ERR_NOT_ACCEPTABLE");
    await expectEvent("message_rejected", "not_acceptable", { connection: "ok", sessionId: sid });
  });

  it("legacy SSE: POST without sessionId (400 CS_ERR_SESSION_REQUIRED) or with an unknown one (404); a real session survives bad bodies", async () => {
    const messageUrl = (q: string) => `${gw.address}/sse/ok/message${q}`;
    const postLegacy = (q: string, body: string) => fetch(messageUrl(q), { method: "POST", headers: { "content-type": "application/json" }, body });
    await expectRefusal(await postLegacy("", JSON.stringify(request("ping"))), 400, "CS_ERR_SESSION_REQUIRED");
    await expectEvent("message_rejected", "session_required", { connection: "ok" });
    await expectRefusal(await postLegacy("?sessionId=not-a-session", JSON.stringify(request("ping"))), 404, "CS_ERR_UNKNOWN_SESSION");
    await expectEvent("message_rejected", "unknown_session", { connection: "ok" });

    // A real legacy session: the stream names the endpoint; bad bodies are refused on the POST,
    // good ones are answered on the stream.
    const abort = new AbortController();
    openStreams.push(abort);
    const res = await fetch(gw.sseUrl("ok"), { headers: { accept: "text/event-stream" }, signal: abort.signal });
    expect(res.status).toBe(200);
    const events: Array<{ event: string | undefined; data: string }> = [];
    const parser = createParser({ onEvent: (e) => void events.push({ event: e.event, data: e.data }) });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    void (async () => {
      for (;;) {
        const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
        if (done) return;
        parser.feed(decoder.decode(value, { stream: true }));
      }
    })();
    const endpoint = await waitFor(() => events.find((e) => e.event === "endpoint")?.data, "the endpoint event");
    const sid = new URL(endpoint, gw.address).searchParams.get("sessionId")!;
    const post = (body: string) => fetch(new URL(endpoint, gw.address), { method: "POST", headers: { "content-type": "application/json" }, body });
    await expectRefusal(await post("{ not json"), 400, "CS_ERR_PARSE");
    await expectEvent("message_rejected", "parse_error", { connection: "ok", sessionId: sid });
    const init = request("initialize", { protocolVersion: "2024-11-05", capabilities: {}, clientInfo: { name: "legacy", version: "1" } });
    expect((await post(JSON.stringify(init))).status).toBe(202);
    const answer = await waitFor(() => events.map((e) => JSON.parse(e.event === "endpoint" ? "null" : e.data) as Json | null).find((m) => m?.id === init.id), "initialize answered on the stream");
    expect(answer.result.protocolVersion).toBe("2024-11-05");
    abort.abort();
    await expectEvent("session_closed", "client_disconnect", { sessionId: sid });
  });

  it("the session cap: a second initialize gets 503 CS_ERR_SESSION_LIMIT, recorded; after the first ends a new one opens", async () => {
    const first = await connect("capped");
    const init = request("initialize", { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } });
    const body = await expectRefusal(await post("capped", init), 503, "CS_ERR_SESSION_LIMIT");
    expect(body.id).toBe(init.id);
    await expectEvent("message_rejected", "session_limit", { connection: "capped" });
    await closeClient(first);
    const second = await connect("capped");
    expect((await second.client.listTools()).tools.map((t) => t.name)).toEqual(["echo"]);
  });
});

// ── the upstream misbehaves ─────────────────────────────────────────────────────────────────

describe("an upstream that misbehaves", () => {
  it("a response for an id the client never sent: dropped and recorded; the real call is still answered", async () => {
    const { client, transport } = await connect("unknown-id");
    const result = await client.callTool({ name: "echo", arguments: { message: "real" } });
    expect(result.content).toEqual([{ type: "text", text: "Echo: real" }]);
    const ev = await expectEvent("message_rejected", "unknown_response_id", { connection: "unknown-id", sessionId: transport.sessionId! });
    expect((ev.detail as Json).id).toBe("never-sent-by-anyone");
    // Never recorded as delivered, never delivered.
    expect(await gw.db.message.count({ where: { sessionId: transport.sessionId!, jsonrpcId: "never-sent-by-anyone" } })).toBe(0);
  });

  it("an upstream that exits mid-call: the call fails with CS_ERR_UPSTREAM_EXITED, the session ends, a new one works", async () => {
    const { client, transport } = await connect("exit-mid-call");
    const sid = transport.sessionId!;
    const err = mcpError(await client.callTool({ name: "echo", arguments: { message: "bye" } }).then(() => undefined, (e: unknown) => e));
    expect((err.data as Json).code).toBe("CS_ERR_UPSTREAM_EXITED");
    expect((err.data as Json).detail).toMatch(/exit code 3/);

    await expectEvent("session_closed", "upstream_exited", { sessionId: sid });
    await expectEvent("upstream_failed", "exited", { sessionId: sid });
    const row = await waitFor(() => gw.db.session.findFirst({ where: { id: sid, closedAt: { not: null } } }), "session row closed");
    expect(row.closeReason).toBe("upstream_exited");
    // The record holds the call and the gateway's answer to it.
    const rows = await gw.db.message.findMany({ where: { sessionId: sid, OR: [{ method: "tools/call" }, { origin: "gateway" }] }, orderBy: { id: "asc" } });
    expect(rows.map((r) => [r.direction, r.origin, r.kind])).toEqual([["in", "client", "request"], ["out", "gateway", "error"]]);
    expect((rows[1]!.payload as Json).error.data.code).toBe("CS_ERR_UPSTREAM_EXITED");
    // The stderr line is in the gateway's log.
    expect(gw.logText()).toContain("exiting in the middle of a call on purpose");

    await expectRefusal(await post("exit-mid-call", request("ping"), { "mcp-session-id": sid }), 404, "CS_ERR_UNKNOWN_SESSION");
    const next = await connect("exit-mid-call");
    expect((await next.client.listTools()).tools.map((t) => t.name)).toEqual(["echo"]);
  });

  it("an upstream that floods notifications: the excess is dropped and counted, the client is told, the gateway stays responsive", async () => {
    const { client, transport } = await connect("flood");
    const sid = transport.sessionId!;
    let fromUpstream = 0;
    let warning: string | undefined;
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
      if (n.params.logger === "countersign") warning = String(n.params.data);
      else fromUpstream++;
    });
    const result = await client.callTool({ name: "echo", arguments: { message: "after the flood" } });
    expect(result.content).toEqual([{ type: "text", text: "Echo: after the flood" }]);

    const text = await waitFor(() => warning, "the gateway's warning to the client");
    expect(text).toMatch(/dropped \d+ notifications from upstream 'flood'/);
    expect(text).toContain("limits.notificationsPerSecond");

    // Every notification is accounted for: recorded and delivered, or dropped and counted.
    const accounted = await waitFor(async () => {
      const delivered = await gw.db.message.count({ where: { sessionId: sid, origin: "upstream", method: "notifications/message" } });
      const floods = await gw.db.event.findMany({ where: { sessionId: sid, type: "message_rejected", reason: "upstream_flood" }, orderBy: { id: "asc" } });
      const dropped = floods.reduce((n, e) => n + Number((e.detail as Json).dropped), 0);
      return delivered + dropped === FLOOD_COUNT ? { delivered, dropped, floods } : undefined;
    }, "delivered + dropped = sent");
    expect(accounted.dropped).toBeGreaterThan(FLOOD_COUNT / 2);
    expect((accounted.floods[0]!.detail as Json).limitPerSecond).toBe(NOTIFICATIONS_PER_SECOND);
    expect(accounted.delivered).toBeLessThan(FLOOD_COUNT / 2);
    await waitFor(() => fromUpstream === accounted.delivered, "the client received every recorded notification");
    // Reported at most about once a second (not once per admitted notification), each report
    // recorded and sent to the client as one warning.
    const span = (accounted.floods.at(-1)!.at.getTime() - accounted.floods[0]!.at.getTime()) / 1000;
    expect(accounted.floods.length).toBeLessThanOrEqual(Math.floor(span / 0.5) + 1);
    const notices = await waitFor(async () => {
      const rows = await gw.db.message.findMany({ where: { sessionId: sid, origin: "gateway", method: "notifications/message" } });
      return rows.length === accounted.floods.length ? rows : undefined;
    }, "one recorded warning per flood report");
    expect((notices[0]!.payload as Json).params.logger).toBe("countersign");

    // Still responsive, in this session and outside it.
    await client.ping();
    expect((await fetch(`${gw.address}/healthz`)).status).toBe(200);
  });

  it("an oversized response: that request gets CS_ERR_UPSTREAM_RESPONSE_TOO_LARGE, the session carries on", async () => {
    const { client, transport } = await connect("oversized");
    const err = mcpError(await client.callTool({ name: "echo", arguments: { message: "big" } }).then(() => undefined, (e: unknown) => e));
    expect((err.data as Json).code).toBe("CS_ERR_UPSTREAM_RESPONSE_TOO_LARGE");
    expect((err.data as Json).detail).toContain(`limit ${UPSTREAM_MESSAGE_LIMIT}`);
    const recorded = await gw.db.message.findFirst({ where: { sessionId: transport.sessionId!, origin: "gateway", kind: "error" } });
    expect((recorded?.payload as Json).error.data.code).toBe("CS_ERR_UPSTREAM_RESPONSE_TOO_LARGE");
    // Nothing of the oversized message was stored.
    const largest = await gw.db.message.aggregate({ where: { sessionId: transport.sessionId! }, _max: { size: true } });
    expect(largest._max.size!).toBeLessThan(UPSTREAM_MESSAGE_LIMIT);
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(["echo"]);
  });

  it("a line that is not JSON: ignored, logged and recorded; the real answer still arrives", async () => {
    const { client, transport } = await connect("not-json");
    const result = await client.callTool({ name: "echo", arguments: { message: "through the noise" } });
    expect(result.content).toEqual([{ type: "text", text: "Echo: through the noise" }]);
    await expectEvent("message_rejected", "upstream_invalid_json", { connection: "not-json", sessionId: transport.sessionId! });
    expect(gw.logText()).toContain("this line is not JSON");
  });

  it("a command that does not exist: initialize gets 502 CS_ERR_UPSTREAM_UNAVAILABLE, recorded", async () => {
    const init = request("initialize", { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } });
    const body = await expectRefusal(await post("missing", init), 502, "CS_ERR_UPSTREAM_UNAVAILABLE");
    expect(body.id).toBe(init.id);
    expect(body.error.data.detail).toContain("ENOENT");
    const ev = await expectEvent("upstream_failed", "spawn_failed", { connection: "missing" });
    expect(JSON.stringify(ev.detail)).toContain("ENOENT");
    const row = await waitFor(() => gw.db.session.findFirst({ where: { id: ev.sessionId!, closedAt: { not: null } } }), "session row closed");
    expect(row.closeReason).toBe("initialize_failed");
  });

  it("a server that exits at start, again and again: after a couple of failures initialize is refused at once, naming the back-off", async () => {
    const attempts: Array<{ status: number; code: string; detail?: string }> = [];
    for (let i = 0; i < 10; i++) {
      const init = request("initialize", { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } });
      const res = await post("exit-at-start", init);
      const [answer] = await messagesOf(res);
      attempts.push({ status: res.status, code: answer!.error.data.code, detail: answer!.error.data.detail });
      if (res.status === 502) break;
    }
    const refused = attempts[attempts.length - 1]!;
    expect(refused).toMatchObject({ status: 502, code: "CS_ERR_UPSTREAM_UNAVAILABLE" });
    expect(refused.detail).toMatch(/failed \d+ times in a row; next attempt allowed in \d+ s/);
    // Before the back-off, each attempt started the server and saw it exit.
    const before = attempts.slice(0, -1);
    expect(before.length).toBeGreaterThanOrEqual(2);
    expect(before.every((a) => a.code === "CS_ERR_UPSTREAM_EXITED")).toBe(true);
    const ev = await expectEvent("upstream_failed", "crash_loop_backoff", { connection: "exit-at-start" });
    expect((ev.detail as Json).failures).toBeGreaterThanOrEqual(2);
    expect((ev.detail as Json).backoffMs).toBeGreaterThan(0);
    await waitFor(
      async () => (await gw.db.event.count({ where: { id: { gt: eventMark }, type: "upstream_failed", reason: "exited", connection: "exit-at-start" } })) === before.length,
      "one upstream_failed/exited event per attempt that started the server",
    );
  });
});
