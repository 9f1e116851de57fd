// Custom parameter headers (SEP-2243) on the 2026-07-28 front: a tool that marks an argument with
// `x-mcp-header` gets its Mcp-Param-* header checked against the body, as the server would, once
// the caller's bridge has listed the tool: missing, undecodable or different is 400 -32020 and
// recorded; the =?base64?…?= form is decoded, a value without the whole form is literal.
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { rawPost } from "../helpers/upstreams.js";

const SERVER = new URL("./fixtures/header-server.mjs", import.meta.url).pathname;
let db: TestDatabase;
let gw: TestGateway;

beforeAll(async () => {
  db = await createTestDatabase();
  gw = await startTestGateway(db.url, { connections: [{ name: "routed", upstream: { type: "stdio", command: process.execPath, args: [SERVER] } }] });
});
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
});

const envelope = { "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {} };
let nextId = 1;
type Msg = { id: number; result?: { content?: unknown; tools?: unknown }; error?: { code: number; data: Record<string, unknown> } };

async function post(method: string, params: Record<string, unknown>, headers: Record<string, string> = {}): Promise<{ status: number; msg: Msg }> {
  const id = nextId++;
  const name: Record<string, string> = typeof params.name === "string" ? { "mcp-name": params.name } : {};
  const reply = await rawPost(gw.mcpUrl("routed"), JSON.stringify({ jsonrpc: "2.0", id, method, params: { ...params, _meta: envelope } }), { "mcp-protocol-version": "2026-07-28", "mcp-method": method, ...name, ...headers });
  return { status: reply.status, msg: reply.messages[0] as Msg };
}
const route = (args: Record<string, unknown>, headers: Record<string, string> = {}) => post("tools/call", { name: "route", arguments: args }, headers);
const b64 = (s: string) => `=?base64?${Buffer.from(s).toString("base64")}?=`;

it("checks Mcp-Param-* headers against the arguments once the tool is listed, and records each refusal", async () => {
  const listed = await post("tools/list", {});
  expect(JSON.stringify(listed.msg.result?.tools)).toContain("x-mcp-header");

  // Mirrored as sent, or in the base64 form: accepted, and the call goes through.
  expect((await route({ region: "eu-west" }, { "mcp-param-region": "eu-west" })).msg.result?.content).toEqual([{ type: "text", text: "routed to eu-west" }]);
  expect((await route({ region: "Zürich" }, { "mcp-param-region": b64("Zürich") })).msg.result?.content).toEqual([{ type: "text", text: "routed to Zürich" }]);
  // An integer compares by value; an argument absent from the body needs no header.
  expect((await route({ region: "us", level: 3 }, { "mcp-param-region": "us", "mcp-param-level": "3" })).msg.error).toBeUndefined();
  // Without the whole =?base64?…?= form the value is literal.
  const literal = `=?base64?${Buffer.from("x").toString("base64")}`;
  expect((await route({ region: literal }, { "mcp-param-region": literal })).msg.error).toBeUndefined();

  const refusals: Array<[Record<string, unknown>, Record<string, string>]> = [
    [{ region: "eu-west" }, {}], // missing
    [{ region: "eu-west" }, { "mcp-param-region": "us-east" }], // different
    [{ region: "Hello" }, { "mcp-param-region": "=?base64?SGVsbG8?=" }], // base64 without its padding
    [{ region: "Hello" }, { "mcp-param-region": "=?base64?SGVs!!!bG8=?=" }], // not base64
    [{ region: "us", level: 3 }, { "mcp-param-region": "us", "mcp-param-level": "4" }],
  ];
  for (const [args, headers] of refusals) {
    const r = await route(args, headers);
    expect(r.status).toBe(400);
    expect(r.msg.error).toMatchObject({ code: -32020, data: { code: "CS_ERR_HEADER_MISMATCH" } });
  }
  await expect.poll(() => gw.db.event.count({ where: { type: "message_rejected", reason: "header_mismatch", connection: "routed" } })).toBeGreaterThanOrEqual(refusals.length);
  // None of the refused calls reached the upstream.
  const answered = await gw.db.message.count({ where: { method: "tools/call", direction: "out", origin: "upstream" } });
  expect(answered).toBe(4);
});
