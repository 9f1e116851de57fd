// A cancelled call's POST stream ends: once the client sends notifications/cancelled, the stream
// that carried the call gets an answer (-32800 CS_ERR_REQUEST_CANCELLED, recorded) and closes, long
// before the tool would have finished; the upstream is told, and the session goes on. Before, the
// stream stayed open until the tool finished (its answer then dropped as an unknown id).
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, expect, it } from "vitest";
import { everythingStdio, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { parseSseMessages, rawInitialize, rawPost } from "../helpers/upstreams.js";

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

/** A 20-second tool call: it would hold its stream that long. */
const LONG_CALL = { name: "trigger-long-running-operation", arguments: { duration: 20, steps: 20 } };

it("raw HTTP: the call's stream gets -32800 and ends once the cancellation is posted", { timeout: 30_000 }, async () => {
  const s = await rawInitialize(gw.mcpUrl("everything"), "2025-06-18");
  const res = await fetch(gw.mcpUrl("everything"), {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...s.headers },
    body: JSON.stringify({ jsonrpc: "2.0", id: 41, method: "tools/call", params: { ...LONG_CALL, _meta: { progressToken: "p41" } } }),
  });
  expect(res.headers.get("content-type")).toContain("text/event-stream");
  const reader = res.body!.getReader();
  let text = "";
  // Forwarded and running: its first progress step has arrived.
  while (!text.includes("notifications/progress")) text += new TextDecoder().decode((await reader.read()).value);
  const started = Date.now();
  const cancel = await rawPost(gw.mcpUrl("everything"), JSON.stringify({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 41, reason: "user gave up" } }), s.headers);
  expect(cancel.status).toBe(202);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  expect(Date.now() - started).toBeLessThan(10_000);
  const answer = parseSseMessages(text).find((m) => (m as { id?: unknown }).id === 41) as { error: { code: number; data: { code: string } } };
  expect(answer.error).toMatchObject({ code: -32800, data: { code: "CS_ERR_REQUEST_CANCELLED" } });
  // Recorded as the gateway's answer to that call.
  await expect.poll(() => gw.db.message.count({ where: { sessionId: s.sessionId, origin: "gateway", direction: "out" } })).toBeGreaterThan(0);
  // The session goes on.
  const ping = await rawPost(gw.mcpUrl("everything"), JSON.stringify({ jsonrpc: "2.0", id: 42, method: "ping" }), s.headers);
  expect(ping.messages).toEqual([{ jsonrpc: "2.0", id: 42, result: {} }]);
});

it("the SDK client: an aborted call's POST stream is closed by the gateway, and the next call works", { timeout: 30_000 }, async () => {
  let callStreamEnded = false;
  const tracking: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    const isCall = init?.method === "POST" && typeof init.body === "string" && init.body.includes('"tools/call"') && init.body.includes("trigger-long-running-operation");
    if (!isCall || !res.body) return res;
    const reader = res.body.getReader();
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { value, done } = await reader.read();
        if (done) {
          callStreamEnded = true;
          return controller.close();
        }
        controller.enqueue(value);
      },
      cancel: (reason) => reader.cancel(reason),
    });
    return new Response(body, { status: res.status, headers: res.headers });
  };
  const transport = new StreamableHTTPClientTransport(gw.mcpUrl("everything"), { fetch: tracking });
  const client = new Client({ name: "cancel-test", version: "1.0.0" });
  await client.connect(transport);
  try {
    const abort = new AbortController();
    let progressed = false;
    const call = client.callTool(LONG_CALL, undefined, { signal: abort.signal, onprogress: () => void (progressed = true), timeout: 60_000 }).catch((e: unknown) => e);
    await expect.poll(() => progressed, { timeout: 10_000 }).toBe(true);
    abort.abort("user gave up");
    expect(await call).toBeInstanceOf(Error);
    // The gateway ends the stream well before the 20-second tool would have.
    await expect.poll(() => callStreamEnded, { timeout: 8_000 }).toBe(true);
    const ok = await client.callTool({ name: "echo", arguments: { message: "after cancel" } });
    expect(ok.content).toEqual([{ type: "text", text: "Echo: after cancel" }]);
  } finally {
    await transport.terminateSession().catch(() => {});
    await client.close();
  }
});
