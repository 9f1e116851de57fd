// The MCP 2026-07-28 validation ladder on /mcp/<connection>: each rung answers the spec's code and
// HTTP status, with the request's id, and is recorded; a request without the modern claim still
// takes the session path exactly as before.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { everythingStdio, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { rawPost } from "../helpers/upstreams.js";

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

const V = "2026-07-28";
const envelope = (extra: Record<string, unknown> = {}) => ({
  "io.modelcontextprotocol/protocolVersion": V,
  "io.modelcontextprotocol/clientCapabilities": {},
  "io.modelcontextprotocol/clientInfo": { name: "ladder", version: "1" },
  ...extra,
});
const body = (id: string | number, method: string, params: Record<string, unknown>) => JSON.stringify({ jsonrpc: "2.0", id, method, params });
const modernHeaders = (method: string, name?: string) => ({ "mcp-protocol-version": V, "mcp-method": method, ...(name !== undefined ? { "mcp-name": name } : {}) });

async function expectRung(reply: Awaited<ReturnType<typeof rawPost>>, status: number, code: number, csCode: string, id: string | number) {
  expect(reply.status).toBe(status);
  expect(reply.headers.get("mcp-session-id")).toBeNull();
  const msg = reply.messages[0] as { id: unknown; error: { code: number; data: Record<string, unknown> } };
  expect(msg.id).toBe(id);
  expect(msg.error.code).toBe(code);
  expect(msg.error.data.code).toBe(csCode);
  return msg.error;
}

async function expectRecorded(reason: string) {
  await expect
    .poll(async () => gw.db.event.findFirst({ where: { type: "message_rejected", reason, connection: "everything" }, orderBy: { id: "desc" } }))
    .toMatchObject({ reason });
}

describe("the 2026-07-28 validation ladder", () => {
  it("a malformed envelope: 400 -32602 naming the key", async () => {
    const meta = { "io.modelcontextprotocol/protocolVersion": V }; // no clientCapabilities
    const error = await expectRung(await rawPost(gw.mcpUrl("everything"), body("e1", "tools/list", { _meta: meta }), modernHeaders("tools/list")), 400, -32602, "CS_ERR_INVALID_ENVELOPE", "e1");
    expect(JSON.stringify(error)).toContain("clientCapabilities");
    await expectRecorded("invalid_envelope");
  });

  it("a modern MCP-Protocol-Version header on a request without the envelope: 400 -32602", async () => {
    await expectRung(await rawPost(gw.mcpUrl("everything"), body(2, "tools/list", {}), modernHeaders("tools/list")), 400, -32602, "CS_ERR_INVALID_ENVELOPE", 2);
  });

  it("an unsupported version: 400 -32022 with the supported versions and the requested one", async () => {
    const reply = await rawPost(gw.mcpUrl("everything"), body(3, "tools/list", { _meta: envelope({ "io.modelcontextprotocol/protocolVersion": "2099-01-01" }) }), {
      "mcp-protocol-version": "2099-01-01",
      "mcp-method": "tools/list",
    });
    const error = await expectRung(reply, 400, -32022, "CS_ERR_PROTOCOL_VERSION_UNSUPPORTED", 3);
    expect(error.data.supported).toEqual(expect.arrayContaining(["2026-07-28", "2025-11-25"]));
    expect(error.data.requested).toBe("2099-01-01");
    await expectRecorded("unsupported_protocol_version");
  });

  it("headers that disagree with the body, or are missing: 400 -32020", async () => {
    const url = gw.mcpUrl("everything");
    const call = (id: number) => body(id, "tools/call", { name: "echo", arguments: { message: "x" }, _meta: envelope() });
    await expectRung(await rawPost(url, call(4), modernHeaders("tools/list", "echo")), 400, -32020, "CS_ERR_HEADER_MISMATCH", 4);
    await expectRung(await rawPost(url, call(5), modernHeaders("tools/call", "printEnv")), 400, -32020, "CS_ERR_HEADER_MISMATCH", 5);
    await expectRung(await rawPost(url, call(6), modernHeaders("tools/call")), 400, -32020, "CS_ERR_HEADER_MISMATCH", 6);
    await expectRung(await rawPost(url, call(7), { "mcp-protocol-version": V, "mcp-name": "echo" }), 400, -32020, "CS_ERR_HEADER_MISMATCH", 7);
    await expectRung(await rawPost(url, call(8), { "mcp-protocol-version": "2025-11-25", "mcp-method": "tools/call", "mcp-name": "echo" }), 400, -32020, "CS_ERR_HEADER_MISMATCH", 8);
    await expectRecorded("header_mismatch");
    // The base64 sentinel form of Mcp-Name is decoded before the comparison.
    const ok = await rawPost(url, call(9), modernHeaders("tools/call", `=?base64?${Buffer.from("echo").toString("base64")}?=`));
    expect(ok.status).toBe(200);
    expect(ok.messages[0]).toMatchObject({ id: 9, result: { resultType: "complete", content: [{ type: "text", text: "Echo: x" }] } });
  });

  it("methods the revision removed, and unknown ones: 404 -32601", async () => {
    const url = gw.mcpUrl("everything");
    const init = body("i", "initialize", { protocolVersion: V, capabilities: {}, clientInfo: { name: "x", version: "1" }, _meta: envelope() });
    await expectRung(await rawPost(url, init, modernHeaders("initialize")), 404, -32601, "CS_ERR_METHOD_NOT_FOUND", "i");
    await expectRung(await rawPost(url, body(10, "ping", { _meta: envelope() }), modernHeaders("ping")), 404, -32601, "CS_ERR_METHOD_NOT_FOUND", 10);
    await expectRung(await rawPost(url, body(11, "resources/subscribe", { uri: "x", _meta: envelope() }), modernHeaders("resources/subscribe")), 404, -32601, "CS_ERR_METHOD_NOT_FOUND", 11);
    await expectRung(await rawPost(url, body(12, "no/such-method", { _meta: envelope() }), modernHeaders("no/such-method")), 404, -32601, "CS_ERR_METHOD_NOT_FOUND", 12);
    await expectRecorded("method_not_found");
    // An initialize with a modern header but no envelope is the legacy handshake sent with the wrong header.
    const legacyInit = body("j", "initialize", { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "x", version: "1" } });
    await expectRung(await rawPost(url, legacyInit, modernHeaders("initialize")), 400, -32020, "CS_ERR_HEADER_MISMATCH", "j");
  });

  it("a request without the modern claim takes the session path as before", async () => {
    const reply = await rawPost(gw.mcpUrl("everything"), body(13, "tools/list", {}));
    expect(reply.status).toBe(400);
    expect(reply.messages[0]).toMatchObject({ id: null, error: { data: { code: "CS_ERR_SESSION_REQUIRED" } } });
    // And a 2025 session still opens and works on the same endpoint.
    const init = await rawPost(gw.mcpUrl("everything"), body(1, "initialize", { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "old", version: "1" } }));
    expect(init.status).toBe(200);
    expect(init.headers.get("mcp-session-id")).toBeTruthy();
  });

  it("a notification that claims the revision is accepted and not forwarded", async () => {
    const reply = await rawPost(gw.mcpUrl("everything"), JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized", params: { _meta: envelope() } }), { "mcp-protocol-version": V });
    expect(reply.status).toBe(202);
  });

  it("a batch that claims the revision: 400 -32600 (2026-07-28 has no batches), not a session error", async () => {
    const batch = JSON.stringify([JSON.parse(body(20, "tools/list", { _meta: envelope() })), JSON.parse(body(21, "prompts/list", { _meta: envelope() }))]);
    const reply = await rawPost(gw.mcpUrl("everything"), batch, modernHeaders("tools/list"));
    expect(reply.status).toBe(400);
    const msg = reply.messages[0] as { id: unknown; error: { code: number; data: Record<string, unknown> } };
    expect(msg).toMatchObject({ id: null, error: { code: -32600, data: { code: "CS_ERR_INVALID_REQUEST" } } });
    expect(JSON.stringify(msg.error)).toContain("batches");
    // The same batch without the header, by its envelope alone.
    const byBody = await rawPost(gw.mcpUrl("everything"), batch);
    expect((byBody.messages[0] as { error: { data: { code: string } } }).error.data.code).toBe("CS_ERR_INVALID_REQUEST");
    await expectRecorded("invalid_jsonrpc");
  });
});
