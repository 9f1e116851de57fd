// Batches and Accept as each revision's Streamable HTTP text says (basic/transports.mdx):
// - every revision: a POST's Accept MUST list both application/json and text/event-stream
//   (406 CS_ERR_NOT_ACCEPTABLE otherwise); the client's q-values pick a JSON or an SSE answer;
// - 2025-03-26: a batch holds requests and notifications, or responses only; initialize is never
//   batched (JSON-RPC -32600 Invalid Request otherwise);
// - 2025-06-18 and 2025-11-25: no batches (400, -32600 CS_ERR_BATCH_NOT_ALLOWED).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { everythingStdio, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { rawInitialize, rawPost } from "../helpers/upstreams.js";

type Json = Record<string, any>;

let db: TestDatabase;
let gw: TestGateway;

beforeAll(async () => {
  db = await createTestDatabase();
  gw = await startTestGateway(db.url, { connections: [{ name: "everything", upstream: everythingStdio() }] });
});
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
});

const url = () => gw.mcpUrl("everything");
const ping = (id: number | string) => ({ jsonrpc: "2.0", id, method: "ping" });
const initialize = (protocolVersion: string) => ({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion, capabilities: {}, clientInfo: { name: "rev", version: "1" } } });

/** The answers in a reply (server-everything also sends notifications; with no GET stream open they ride along). */
const answers = (reply: { messages: unknown[] }) => (reply.messages as Json[]).filter((m) => m.method === undefined);

function expectError(reply: { status: number; messages: unknown[] }, status: number, jsonrpc: number, code: string) {
  expect(reply.status).toBe(status);
  expect(reply.messages[0]).toMatchObject({ jsonrpc: "2.0", error: { code: jsonrpc, data: { code } } });
}

describe("Accept on POST (every revision)", () => {
  it.each([
    ["no Accept", undefined],
    ["JSON only", "application/json"],
    ["SSE only", "text/event-stream"],
    ["SSE refused by q=0", "application/json, text/event-stream;q=0"],
  ])("%s: 406 CS_ERR_NOT_ACCEPTABLE, for initialize (no session opened) and inside a session", async (_label, accept) => {
    const headers: Record<string, string> = accept === undefined ? { accept: "" } : { accept };
    const before = await gw.db.session.count();
    expectError(await rawPost(url(), JSON.stringify(initialize("2025-06-18")), headers), 406, -32600, "CS_ERR_NOT_ACCEPTABLE");
    expect(await gw.db.session.count()).toBe(before);
    const s = await rawInitialize(url(), "2025-06-18");
    expectError(await rawPost(url(), JSON.stringify(ping(2)), { ...s.headers, ...headers }), 406, -32600, "CS_ERR_NOT_ACCEPTABLE");
    expectError(await rawPost(url(), JSON.stringify({ jsonrpc: "2.0", method: "notifications/roots/list_changed" }), { ...s.headers, ...headers }), 406, -32600, "CS_ERR_NOT_ACCEPTABLE");
  });

  it("both listed: an SSE answer; JSON ranked higher: a JSON answer; wildcards count", async () => {
    const s = await rawInitialize(url(), "2025-06-18");
    const sse = await rawPost(url(), JSON.stringify(ping(3)), s.headers);
    expect(sse.headers.get("content-type")).toContain("text/event-stream");
    expect(answers(sse)).toEqual([{ jsonrpc: "2.0", id: 3, result: {} }]);
    const json = await rawPost(url(), JSON.stringify(ping(4)), { ...s.headers, accept: "text/event-stream;q=0.5, application/json" });
    expect(json.headers.get("content-type")).toContain("application/json");
    expect(answers(json)).toEqual([{ jsonrpc: "2.0", id: 4, result: {} }]);
    const wild = await rawPost(url(), JSON.stringify(ping(5)), { ...s.headers, accept: "*/*" });
    expect(wild.status).toBe(200);
    expect(answers(wild)).toEqual([{ jsonrpc: "2.0", id: 5, result: {} }]);
  });
});

describe("batches by revision", () => {
  it("2025-03-26: a batch of requests is answered, one answer each (a JSON array when JSON is asked for)", async () => {
    const s = await rawInitialize(url(), "2025-03-26");
    const sse = await rawPost(url(), JSON.stringify([ping("a"), ping("b")]), s.headers);
    expect(sse.status).toBe(200);
    expect(answers(sse).map((m) => m.id).sort()).toEqual(["a", "b"]);
    const json = await rawPost(url(), JSON.stringify([ping("c"), { jsonrpc: "2.0", method: "notifications/roots/list_changed" }, ping("d")]), { ...s.headers, accept: "application/json, text/event-stream;q=0.1" });
    expect(json.headers.get("content-type")).toContain("application/json");
    expect(JSON.parse(json.text)).toHaveLength(2);
  });

  it("2025-03-26: requests mixed with responses in one batch, and initialize in a batch, are Invalid Request (-32600)", async () => {
    const s = await rawInitialize(url(), "2025-03-26");
    const mixed = await rawPost(url(), JSON.stringify([ping("e"), { jsonrpc: "2.0", id: "server-1", result: {} }]), s.headers);
    expectError(mixed, 400, -32600, "CS_ERR_INVALID_REQUEST");
    const batchedInit = await rawPost(url(), JSON.stringify([initialize("2025-03-26")]));
    expectError(batchedInit, 400, -32600, "CS_ERR_INVALID_REQUEST");
  });

  it.each(["2025-06-18", "2025-11-25"])("%s: any batch, even of one, is refused with CS_ERR_BATCH_NOT_ALLOWED (400, -32600), nothing forwarded", async (rev) => {
    const s = await rawInitialize(url(), rev);
    expectError(await rawPost(url(), JSON.stringify([ping("f")]), s.headers), 400, -32600, "CS_ERR_BATCH_NOT_ALLOWED");
    expect(await gw.db.message.count({ where: { sessionId: s.sessionId, method: "ping" } })).toBe(0);
  });
});
