// Forward compatibility: fields, methods and notifications no spec version defines pass through
// the gateway untouched, in both directions. The client side is raw HTTP and raw SSE parsing
// (an SDK client would strip unknown fields itself); the upstream is a fixture that writes plain
// JSON-RPC and echoes what it received.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "./helpers/postgres.js";
import { rawPost } from "./helpers/upstreams.js";

const ODD_SERVER = new URL("./fixtures/odd-server.mjs", import.meta.url).pathname;
const VERSION = "2025-11-25";

let db: TestDatabase;
let gw: TestGateway;

beforeAll(async () => {
  db = await createTestDatabase();
  gw = await startTestGateway(db.url, { connections: [{ name: "odd", upstream: { type: "stdio", command: process.execPath, args: [ODD_SERVER] } }] });
});
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
});

type Msg = Record<string, unknown>;

/** One client session at the message level: sends a message, returns what came back for it. */
interface RawSession {
  /** For a request: every message the client received up to and including its response. */
  exchange(msg: Msg): Promise<Msg[]>;
  close(): Promise<void>;
}

/** Streamable HTTP: each POST's answer (an SSE stream) carries its response and related messages. */
async function streamableSession(url: URL): Promise<RawSession> {
  let headers: Record<string, string> = {};
  return {
    async exchange(msg) {
      const reply = await rawPost(url, JSON.stringify(msg), headers);
      if (msg.method === "initialize") {
        headers = { "mcp-session-id": reply.headers.get("mcp-session-id")!, "mcp-protocol-version": VERSION };
      }
      if (!("id" in msg) || !("method" in msg)) {
        expect(reply.status).toBe(202);
        return [];
      }
      expect(reply.status).toBe(200);
      return reply.messages as Msg[];
    },
    async close() {
      await fetch(url, { method: "DELETE", headers });
    },
  };
}

/** Legacy HTTP+SSE: one GET stream carries everything; messages are POSTed to the endpoint it names. */
async function legacySseSession(url: URL): Promise<RawSession> {
  const abort = new AbortController();
  const res = await fetch(url, { headers: { accept: "text/event-stream" }, signal: abort.signal });
  expect(res.status).toBe(200);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  const events: Array<{ event: string; data: string }> = [];
  const nextEvent = async () => {
    for (;;) {
      const ev = events.shift();
      if (ev) return ev;
      const end = buffer.indexOf("\n\n");
      if (end !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const lines = block.split("\n");
        const data = lines.filter((l) => l.startsWith("data:")).map((l) => l.slice(5).replace(/^ /, "")).join("\n");
        const event = lines.find((l) => l.startsWith("event:"))?.slice(6).trim() ?? "message";
        if (data !== "") events.push({ event, data });
        continue;
      }
      const { value, done } = await reader.read();
      if (done) throw new Error("the SSE stream ended");
      buffer += value.replace(/\r\n/g, "\n");
    }
  };
  const endpoint = await nextEvent();
  expect(endpoint.event).toBe("endpoint");
  const postUrl = new URL(endpoint.data, url);
  return {
    async exchange(msg) {
      const res = await fetch(postUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(msg) });
      await res.arrayBuffer();
      expect(res.status).toBe(202);
      if (!("id" in msg) || !("method" in msg)) return [];
      const got: Msg[] = [];
      for (;;) {
        const ev = await nextEvent();
        const m = JSON.parse(ev.data) as Msg;
        got.push(m);
        if (m.id === msg.id && !("method" in m)) return got;
      }
    },
    async close() {
      abort.abort();
      await reader.cancel().catch(() => {});
    },
  };
}

// ── what the client sends, and what the fixture sends back ─────────────────────────────────────

const initialize = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: {
    protocolVersion: VERSION,
    capabilities: { "x-client-capability": { level: 3, flags: ["a", "b"] } },
    clientInfo: { name: "raw-client", version: "1.0.0", "x-client-build": 7 },
    "x-initialize-param": { nested: { deeper: [null, 1.5, "ü ✓"] } },
  },
  "x-client-trace": "trace-1",
};
const initialized = { jsonrpc: "2.0", method: "notifications/initialized", params: { _meta: { "x-meta": true } } };
const clientNotification = { jsonrpc: "2.0", method: "notifications/x-client/hello", params: { odd: { list: [1, { two: 2 }], empty: {} } }, "x-extra-member": 0 };

const heartbeat = { jsonrpc: "2.0", method: "notifications/x-vendor/heartbeat", params: { seq: 1, at: "never", nested: { arr: [1, "two", null, { deep: true }] } }, "x-hop": "upstream" };
const ask = { jsonrpc: "2.0", id: "ask-1", method: "x-vendor/ask", params: { question: "favourite prime?", "x-hint": [2, 3, 5] }, "x-priority": "low" };
const doThing = {
  jsonrpc: "2.0",
  id: "thing-2",
  method: "x-vendor/do-thing",
  params: {
    anything: { a: [1, 2, { b: null }], "with spaces": true, number: 1e-7 },
    emit: [heartbeat, ask],
    answer: { result: { "x-result-field": { ok: 1 }, nested: { "x-deep": ["x"] } }, message: { "x-vendor-meta": { region: "nowhere" } } },
  },
  "x-client-extra": { sent: "by the client" },
};
const askAnswer = { jsonrpc: "2.0", id: "ask-1", result: { prime: 7, "x-answer-extra": { why: "it is lucky" } }, "x-client-extra-on-response": true };
const fail = { jsonrpc: "2.0", id: 3, method: "x-vendor/fail", params: { why: "testing" } };
const toolsList = { jsonrpc: "2.0", id: 4, method: "tools/list", params: { "x-filter": "all" } };
const receivedQuery = { jsonrpc: "2.0", id: 5, method: "x-vendor/received" };

describe.each([
  { front: "streamable_http", open: () => streamableSession(gw.mcpUrl("odd")) },
  { front: "sse", open: () => legacySseSession(gw.sseUrl("odd")) },
])("$front front", ({ open }) => {
  it("passes unknown fields, methods and notifications untouched in both directions", async () => {
    const s = await open();
    try {
      // initialize: unknown members in the result, nested in it, and on the message itself.
      expect(await s.exchange(initialize)).toEqual([
        {
          jsonrpc: "2.0",
          id: 1,
          result: {
            protocolVersion: VERSION,
            capabilities: { tools: {}, "x-vendor-capability": { depth: [1, { nested: null }] } },
            serverInfo: { name: "odd-server", version: "0.0.1", "x-build": { commit: "abc123", dirty: false } },
            "x-top-level-result-field": { anything: ["goes", 42, true] },
          },
          "x-trace": { span: "s-1", sampled: true },
        },
      ]);
      await s.exchange(initialized);
      await s.exchange(clientNotification);

      // An unknown request: the fixture's unknown notification and unknown server→client request
      // arrive first, exactly as written; the response echoes the request exactly as the client sent it.
      expect(await s.exchange(doThing)).toEqual([
        heartbeat,
        ask,
        { jsonrpc: "2.0", id: "thing-2", result: { received: doThing, ...doThing.params.answer.result }, ...doThing.params.answer.message },
      ]);
      await s.exchange(askAnswer);

      expect(await s.exchange(fail)).toEqual([
        {
          jsonrpc: "2.0",
          id: 3,
          error: { code: -32099, message: "vendor failure", data: { why: "testing" }, "x-error-extra": [1, 2] },
          "x-vendor-meta": "on an error",
        },
      ]);
      expect(await s.exchange(toolsList)).toEqual([
        {
          jsonrpc: "2.0",
          id: 4,
          result: {
            tools: [{ name: "odd-tool", inputSchema: { type: "object" }, "x-cost": { credits: 3 }, annotations: { "x-risk": "low" } }],
            "x-page-info": { total: 1 },
          },
        },
      ]);

      // Everything the fixture received is exactly what the client sent, in order.
      const [received] = await s.exchange(receivedQuery);
      expect((received as { result: { received: unknown[] } }).result.received).toEqual([
        initialize,
        initialized,
        clientNotification,
        doThing,
        askAnswer,
        fail,
        toolsList,
      ]);
    } finally {
      await s.close();
    }
  });
});

it("records unknown messages as sent and received, with their methods", async () => {
  const rows = await gw.db.message.findMany({ where: { connection: "odd" }, orderBy: { id: "asc" } });
  const byMethod = (method: string, direction: string) => rows.filter((r) => r.method === method && r.direction === direction).map((r) => r.payload);
  expect(byMethod("x-vendor/do-thing", "in")).toEqual([doThing, doThing]);
  expect(byMethod("notifications/x-vendor/heartbeat", "out")).toEqual([heartbeat, heartbeat]);
  expect(byMethod("notifications/x-client/hello", "in")).toEqual([clientNotification, clientNotification]);
  // The client's answer to the server's unknown request carries that request's method.
  expect(byMethod("x-vendor/ask", "in")).toEqual([askAnswer, askAnswer]);
  expect(byMethod("x-vendor/ask", "out")).toEqual([ask, ask]);
});
