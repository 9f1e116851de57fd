// Multi-round-trip requests bridged: a 2025-era stdio server (the everything server) asks its
// client for input mid-call (sampling, elicitation); a 2026-07-28 caller gets input_required with
// the upstream's requests and a sealed requestState, and its retry resumes the same upstream call.
// A real SDK v2 client fulfils the round by itself; raw HTTP shows the refusals and the records.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { everythingStdio, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { rawPost } from "../helpers/upstreams.js";

let db: TestDatabase;
let gw: TestGateway;
let scratch: string;

beforeAll(async () => {
  db = await createTestDatabase();
  scratch = mkdtempSync(join(tmpdir(), "countersign-mrtr-"));
  gw = await startTestGateway(db.url, {
    auth: { devIssuer: { enabled: true, keyFile: join(scratch, "dev.jwk") } },
    connections: [{ name: "everything", upstream: everythingStdio() }],
  });
});
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

type Msg = { id: number; result?: Record<string, unknown>; error?: { code: number; message: string; data: Record<string, unknown> } };
let nextId = 1;

async function call(name: string, args: Record<string, unknown>, capabilities: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<{ status: number; msg: Msg }> {
  const id = nextId++;
  const meta = { "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": capabilities, "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" } };
  const body = { jsonrpc: "2.0", id, method: "tools/call", params: { name, arguments: args, _meta: meta, ...extra } };
  const reply = await rawPost(gw.mcpUrl("everything"), JSON.stringify(body), { "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": name });
  const msg = reply.messages.find((m) => (m as Msg).id === id) as Msg;
  return { status: reply.status, msg };
}

const rejected = (reason: string) => gw.db.event.count({ where: { type: "message_rejected", reason, connection: "everything" } });

/**
 * The everything server lists its client's roots 350 ms after initialize, outside any call. Over
 * stdio nothing says which call an upstream request belongs to, so the tests start once that
 * request has come and gone (refused to the upstream: no call was in flight).
 */
async function bridgeSettled(): Promise<void> {
  const r = await call("echo", { message: "warm up" }, {});
  expect(r.msg.result?.content).toEqual([{ type: "text", text: "Echo: warm up" }]);
  await expect.poll(() => gw.db.message.count({ where: { method: "roots/list", direction: "in" } }), { timeout: 5000 }).toBeGreaterThan(0);
}

it("a real SDK v2 client answers the upstream's sampling request in a round, and the same upstream call completes", async () => {
  await bridgeSettled();
  const client = new Client({ name: "mrtr-client", version: "2.4.0" }, { capabilities: { sampling: {} }, versionNegotiation: { mode: { pin: "2026-07-28" } } });
  const asked: unknown[] = [];
  client.setRequestHandler("sampling/createMessage", (req) => {
    asked.push(req.params);
    return { role: "assistant", content: { type: "text", text: "Paris, of course" }, model: "test-model", stopReason: "endTurn" };
  });
  await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl("everything")));
  const result = await client.callTool({ name: "trigger-sampling-request", arguments: { prompt: "capital of France?", maxTokens: 20 } });
  await client.close();

  // The client's handler saw the upstream's request as the upstream made it.
  expect(asked).toHaveLength(1);
  expect(asked[0]).toMatchObject({ maxTokens: 20, messages: [{ role: "user", content: { type: "text", text: expect.stringContaining("capital of France?") } }] });
  expect(JSON.stringify(result.content)).toContain("Paris, of course");

  // One upstream call: the request went out once, the upstream asked once, the bridge answered once.
  const calls = await gw.db.message.findMany({ where: { method: "tools/call", direction: "in", payload: { path: ["params", "name"], equals: "trigger-sampling-request" } } });
  // On record once: the retry resumes it; what the retry brought is on record as the bridge's answer to the upstream.
  expect(calls).toHaveLength(1);
  const asks = await gw.db.message.findMany({ where: { method: "sampling/createMessage" }, orderBy: { id: "asc" } });
  expect(asks.map((m) => [m.direction, m.origin])).toEqual([
    ["out", "upstream"],
    ["in", "client"],
  ]);
  expect(asks[1]!.payload).toMatchObject({ result: { content: { text: "Paris, of course" } } });
  // The input_required answer the gateway gave is on record with the upstream's request in it.
  const rounds = await gw.db.message.findMany({ where: { origin: "gateway", method: "tools/call", payload: { path: ["result", "resultType"], equals: "input_required" } } });
  expect(rounds).toHaveLength(1);
  expect(rounds[0]!.payload).toMatchObject({ result: { inputRequests: { "sampling-1": { method: "sampling/createMessage" } } } });
});

it("an elicitation round over raw HTTP: the requestState resumes the call once; tampered or replayed states are refused and recorded", async () => {
  await bridgeSettled();
  const capabilities = { elicitation: {} };
  const first = await call("trigger-elicitation-request", {}, capabilities);
  expect(first.status).toBe(200);
  const round = first.msg.result as { resultType: string; inputRequests: Record<string, { method: string; params: { message: string; requestedSchema: unknown } }>; requestState: string };
  expect(round.resultType).toBe("input_required");
  expect(Object.keys(round.inputRequests)).toEqual(["elicitation-1"]);
  expect(round.inputRequests["elicitation-1"]).toMatchObject({ method: "elicitation/create", params: { message: expect.any(String), requestedSchema: { type: "object" } } });

  // A changed state is not the gateway's: refused, on record, and the call still waits.
  const tampered = await call("trigger-elicitation-request", {}, capabilities, { requestState: `${round.requestState}x`, inputResponses: { "elicitation-1": { action: "decline" } } });
  expect(tampered.status).toBe(400);
  expect(tampered.msg.error).toMatchObject({ code: -32602, data: { code: "CS_ERR_REQUEST_STATE_INVALID" } });
  await expect.poll(() => rejected("request_state_invalid")).toBeGreaterThan(0);
  // Bound to the call it was issued for: other arguments are refused.
  const other = await call("trigger-elicitation-request", { extra: 1 }, capabilities, { requestState: round.requestState, inputResponses: {} });
  expect(other.msg.error).toMatchObject({ code: -32602, data: { code: "CS_ERR_REQUEST_STATE_INVALID" } });

  // The real retry (with a key the round did not ask, ignored) resumes the same upstream call.
  const responses = { "elicitation-1": { action: "accept", content: { name: "Ada", check: true, firstLine: "It was a dark night", integer: 7, number: 1.5, untitledSingleSelectEnum: "option1", untitledMultipleSelectEnum: ["option1"], titledSingleSelectEnum: "value1", titledMultipleSelectEnum: ["value1"], legacyTitledEnum: "opt1" } }, unasked: { action: "accept" } };
  const done = await call("trigger-elicitation-request", {}, capabilities, { requestState: round.requestState, inputResponses: responses });
  expect(done.msg.error).toBeUndefined();
  expect(done.msg.result?.resultType).toBe("complete");
  expect(JSON.stringify(done.msg.result?.content)).toContain("Ada");

  // The same state again: that round was answered.
  const replay = await call("trigger-elicitation-request", {}, capabilities, { requestState: round.requestState, inputResponses: responses });
  expect(replay.msg.error).toMatchObject({ code: -32602, data: { code: "CS_ERR_REQUEST_STATE_REPLAYED" } });
  await expect.poll(() => rejected("request_state_replayed")).toBeGreaterThan(0);
  // The upstream got the tool call once.
  const answers = await gw.db.message.findMany({ where: { method: "tools/call", direction: "out", origin: "upstream" } });
  expect(answers.filter((m) => JSON.stringify(m.payload).includes("Ada"))).toHaveLength(1);
});

it("a retry that leaves a request unanswered is asked it again under a new state; the old round's state is then spent", async () => {
  await bridgeSettled();
  const capabilities = { elicitation: {} };
  const first = await call("trigger-elicitation-request", {}, capabilities);
  const state1 = (first.msg.result as { requestState: string }).requestState;
  const again = await call("trigger-elicitation-request", {}, capabilities, { requestState: state1, inputResponses: { "elicitation-1": "not an object" } });
  const round2 = again.msg.result as { resultType: string; inputRequests: Record<string, unknown>; requestState: string };
  expect(round2.resultType).toBe("input_required");
  expect(Object.keys(round2.inputRequests)).toEqual(["elicitation-1"]);
  expect(round2.requestState).not.toBe(state1);
  const stale = await call("trigger-elicitation-request", {}, capabilities, { requestState: state1, inputResponses: {} });
  expect(stale.msg.error).toMatchObject({ code: -32602, data: { code: "CS_ERR_REQUEST_STATE_REPLAYED" } });
  const done = await call("trigger-elicitation-request", {}, capabilities, { requestState: round2.requestState, inputResponses: { "elicitation-1": { action: "decline" } } });
  expect(done.msg.result?.resultType).toBe("complete");
});

it("a caller that did not declare the capability the upstream's request needs gets -32021, and the upstream call is cancelled", async () => {
  await bridgeSettled();
  const refused = await call("trigger-sampling-request", { prompt: "hi" }, { elicitation: {} });
  expect(refused.status).toBe(400);
  expect(refused.msg.error).toMatchObject({ code: -32021, data: { code: "CS_ERR_MISSING_CLIENT_CAPABILITY", requiredCapabilities: { sampling: {} } } });
  await expect.poll(() => rejected("missing_client_capability")).toBeGreaterThan(0);
  // The upstream's request was answered with an error and the call cancelled, both on record.
  await expect.poll(() => gw.db.message.count({ where: { method: "notifications/cancelled", direction: "in" } })).toBeGreaterThan(0);
  const answers = await gw.db.message.findMany({ where: { method: "sampling/createMessage", direction: "in" }, orderBy: { id: "desc" }, take: 1 });
  expect(answers[0]!.payload).toMatchObject({ error: { code: -32603 } });
});

it("a round not answered in time is cancelled upstream, and its requestState is refused afterwards", async () => {
  const db2 = await createTestDatabase();
  const quick = await startTestGateway(db2.url, { limits: { upstreamTimeoutMs: 1500 }, connections: [{ name: "everything", upstream: everythingStdio() }] });
  try {
    const post = async (extra: Record<string, unknown>, name = "trigger-elicitation-request", args: Record<string, unknown> = {}) => {
      const meta = { "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": { elicitation: {} } };
      const body = { jsonrpc: "2.0", id: 7, method: "tools/call", params: { name, arguments: args, _meta: meta, ...extra } };
      const reply = await rawPost(quick.mcpUrl("everything"), JSON.stringify(body), { "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": name });
      return reply.messages[0] as Msg;
    };
    expect((await post({}, "echo", { message: "warm up" })).result?.content).toEqual([{ type: "text", text: "Echo: warm up" }]);
    await expect.poll(() => quick.db.message.count({ where: { method: "roots/list", direction: "in" } }), { timeout: 5000 }).toBeGreaterThan(0);
    const first = await post({});
    const state = (first.result as { requestState: string }).requestState;
    expect(first.result?.resultType).toBe("input_required");
    // The call is cancelled upstream once its round times out: on record.
    await expect.poll(() => quick.db.message.count({ where: { method: "notifications/cancelled", direction: "in" } }), { timeout: 5000 }).toBeGreaterThan(0);
    const late = await post({ requestState: state, inputResponses: { "elicitation-1": { action: "decline" } } });
    expect(late.error).toMatchObject({ code: -32602, data: { code: "CS_ERR_REQUEST_STATE_INVALID" } });
    await expect.poll(() => quick.db.event.count({ where: { type: "message_rejected", reason: "request_state_invalid" } })).toBeGreaterThan(0);
  } finally {
    await quick.stop();
    await db2.drop();
  }
});
