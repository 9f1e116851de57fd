// A real 2026-07-28 client (the SDK v2, pinned to the stateless revision) through the gateway to
// a 2025-era stdio server: discover, list, call, policy, masking, per-caller bridge sessions, and
// what is on record.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { Client as LegacyClient } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as LegacyTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { everythingStdio, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { rawPost } from "../helpers/upstreams.js";
import { runCli } from "../helpers/cli.js";

// Realistic-looking (not live), assembled so no scanner flags this file.
const AWS_KEY = ["AKIA", "ZQ3T7Y2K5M4N8P6R"].join("");

let db: TestDatabase;
let gw: TestGateway;
let scratch: string;

beforeAll(async () => {
  db = await createTestDatabase();
  scratch = mkdtempSync(join(tmpdir(), "countersign-stateless-"));
  gw = await startTestGateway(db.url, {
    auth: { devIssuer: { enabled: true, keyFile: join(scratch, "dev.jwk") } },
    connections: [
      {
        name: "everything",
        upstream: everythingStdio(),
        policy: { rules: [{ id: "no-shouting", description: "No shouting", tools: ["echo"], when: { path: "$.arguments.message", matches: "SHOUT" }, action: "block", message: "No shouting here." }] },
      },
      { name: "tight", upstream: everythingStdio(), maxSessions: 5, maxSessionsPerIdentity: 1 },
      {
        name: "team",
        upstream: everythingStdio(),
        access: { anonymous: false, groups: ["dev", "ops"], tools: [{ groups: ["ops"], deny: ["echo"] }] },
      },
    ],
  });
});
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

async function tokenFor(subject: string, groups: string[]): Promise<string> {
  const { signDevToken } = await import("../../gateway/auth/dev-issuer.js");
  const d = gw.identity.devIssuer!;
  return signDevToken(d.key, d.url, { subject, groups, audience: [`${gw.config.publicUrl}/mcp/team`], ttlSeconds: 600 });
}

async function modernClient(connection = "everything", headers: Record<string, string> = {}): Promise<Client> {
  const client = new Client({ name: "modern-client", version: "2.4.0" }, { versionNegotiation: { mode: { pin: "2026-07-28" } } });
  await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl(connection), { requestInit: { headers } }));
  return client;
}

const envelope = { "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}, "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" } };

it("discovers, lists and calls a legacy stdio server statelessly, and records each request with its caller", async () => {
  const client = await modernClient();
  expect(client.getServerVersion()?.name).toBe("mcp-servers/everything");
  const tools = await client.listTools();
  expect(tools.tools.map((t) => t.name)).toContain("echo");
  const result = await client.callTool({ name: "echo", arguments: { message: "hello 2026" } });
  expect(result.content).toEqual([{ type: "text", text: "Echo: hello 2026" }]);
  await client.close();

  // The client opened no session; the gateway's bridge session carries the records.
  expect(await gw.db.session.count({ where: { frontTransport: "streamable_http" } })).toBe(0);
  const bridges = await gw.db.session.findMany({ where: { frontTransport: "stateless", connection: "everything" } });
  expect(bridges).toHaveLength(1);
  const calls = await gw.db.message.findMany({ where: { method: "tools/call", connection: "everything" }, orderBy: { id: "asc" } });
  expect(calls.map((r) => [r.direction, r.sessionId, r.subject])).toEqual([
    ["in", bridges[0]!.id, "anonymous"],
    ["out", bridges[0]!.id, "anonymous"],
  ]);
  expect(calls.every((r) => r.requestId)).toBe(true);
  // The caller's envelope is on record with its request.
  expect((calls[0]!.payload as { params: { _meta: Record<string, unknown> } }).params._meta["io.modelcontextprotocol/protocolVersion"]).toBe("2026-07-28");
});

it("answers the raw request with the caller's own id, resultType and the cache fields", async () => {
  const headers = { "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/list" };
  const reply = await rawPost(gw.mcpUrl("everything"), JSON.stringify({ jsonrpc: "2.0", id: "mine-7", method: "tools/list", params: { _meta: envelope } }), headers);
  expect(reply.status).toBe(200);
  expect(reply.headers.get("mcp-session-id")).toBeNull();
  const msg = reply.messages[0] as { id: string; result: Record<string, unknown> };
  expect(msg.id).toBe("mine-7");
  expect(msg.result).toMatchObject({ resultType: "complete", ttlMs: 0 });
  expect(["public", "private"]).toContain(msg.result.cacheScope);
});

it("a policy block answers the 2026 client with the rule's tool error, and the decision is recorded", async () => {
  const client = await modernClient();
  const result = await client.callTool({ name: "echo", arguments: { message: "SHOUT" } });
  await client.close();
  expect(result.isError).toBe(true);
  expect((result.content as Array<{ text: string }>)[0]!.text).toContain("No shouting here.");
  expect(result._meta?.["countersign/decision"]).toMatchObject({ code: "CS_ERR_POLICY_BLOCKED", ruleId: "no-shouting" });
  const bridge = await gw.db.session.findFirstOrThrow({ where: { frontTransport: "stateless", connection: "everything" } });
  const decision = await gw.db.event.findFirst({ where: { type: "policy_decision", reason: "block" }, orderBy: { id: "desc" } });
  expect(decision).toMatchObject({ sessionId: bridge.id, connection: "everything", subject: "anonymous" });
  expect(decision!.detail).toMatchObject({ ruleId: "no-shouting" });
});

it("masks a secret in the answer and in the record", async () => {
  const client = await modernClient();
  const result = await client.callTool({ name: "echo", arguments: { message: `key ${AWS_KEY}` } });
  await client.close();
  const text = (result.content as Array<{ text: string }>)[0]!.text;
  expect(text).toContain("[MASKED:aws_access_key]");
  expect(text).not.toContain(AWS_KEY);
  const rows = await gw.db.message.findMany({ where: { method: "tools/call", connection: "everything" }, orderBy: { id: "desc" }, take: 2 });
  for (const r of rows) expect(JSON.stringify(r.payload)).not.toContain(AWS_KEY);
  expect(rows.map((r) => r.maskHits)).toEqual([{ aws_access_key: 1 }, { aws_access_key: 1 }]);
});

it("two identities never share an upstream session; a filtered tool list is private to its caller", async () => {
  const alice = await tokenFor("alice", ["dev"]);
  const bob = await tokenFor("bob", ["ops"]);
  const a = await modernClient("team", { authorization: `Bearer ${alice}` });
  const b = await modernClient("team", { authorization: `Bearer ${bob}` });
  const [la, lb] = await Promise.all([a.listTools(), b.listTools()]);
  expect(la.tools.map((t) => t.name)).toContain("echo");
  expect(lb.tools.map((t) => t.name)).not.toContain("echo");
  await a.callTool({ name: "echo", arguments: { message: "from alice" } });
  // A second client of the same caller reuses that caller's bridge.
  const a2 = await modernClient("team", { authorization: `Bearer ${alice}` });
  await a2.callTool({ name: "echo", arguments: { message: "alice again" } });
  await Promise.all([a.close(), a2.close(), b.close()]);

  const bridges = await gw.db.session.findMany({ where: { frontTransport: "stateless", connection: "team" }, orderBy: { subject: "asc" } });
  expect(bridges.map((s) => s.subject)).toEqual(["alice", "bob"]);
  for (const s of bridges) {
    const subjects = await gw.db.message.findMany({ where: { sessionId: s.id }, select: { subject: true }, distinct: ["subject"] });
    expect(subjects.map((r) => r.subject)).toEqual([s.subject]);
  }
  const aliceCalls = await gw.db.message.count({ where: { sessionId: bridges[0]!.id, method: "tools/call", direction: "in" } });
  expect(aliceCalls).toBe(2);

  // The discover answer says the gateway's answers are per caller here.
  const reply = await rawPost(gw.mcpUrl("team"), JSON.stringify({ jsonrpc: "2.0", id: 1, method: "server/discover", params: { _meta: envelope } }), {
    authorization: `Bearer ${bob}`,
    "mcp-protocol-version": "2026-07-28",
    "mcp-method": "server/discover",
  });
  expect(reply.status).toBe(200);
  expect((reply.messages[0] as { result: Record<string, unknown> }).result).toMatchObject({ cacheScope: "private", supportedVersions: expect.arrayContaining(["2026-07-28", "2025-11-25"]) });

  // A tool the caller may not call: the gateway's error, its code moved out of the range the spec reserves.
  const denied = await rawPost(gw.mcpUrl("team"), JSON.stringify({ jsonrpc: "2.0", id: 9, method: "tools/call", params: { name: "echo", arguments: { message: "x" }, _meta: envelope } }), {
    authorization: `Bearer ${bob}`,
    "mcp-protocol-version": "2026-07-28",
    "mcp-method": "tools/call",
    "mcp-name": "echo",
  });
  expect(denied.messages[0]).toMatchObject({ id: 9, error: { code: -33023, data: { code: "CS_ERR_TOOL_DENIED" } } });
});

it("countersign sessions and replay show a stateless caller's bridge session and its exchange", async () => {
  const file = join(scratch, "cli.yaml");
  writeFileSync(file, `version: 1\ndatabase: { url: { env: DATABASE_URL } }\nconnections: [{ name: everything, access: { anonymous: true }, upstream: { type: stdio, command: ${JSON.stringify(process.execPath)} } }]\n`);
  const env = { DATABASE_URL: db.url };
  const listed = await runCli(["sessions", "--json", "--connection", "everything", "--config", file], env);
  expect(listed.code, listed.stderr).toBe(0);
  const rows = JSON.parse(listed.stdout) as Array<{ id: string; messages: number }>;
  const bridge = await gw.db.session.findFirstOrThrow({ where: { frontTransport: "stateless", connection: "everything" } });
  expect(rows.find((r) => r.id === bridge.id)?.messages).toBeGreaterThan(0);
  const replay = await runCli(["replay", bridge.id, "--config", file], env);
  expect(replay.code, replay.stderr).toBe(0);
  expect(replay.stdout).toContain("tools/call");
  expect(replay.stdout).toContain("server/discover");
});

it("streams progress on SSE with the caller's own token, then the answer with its id", async () => {
  const params = { name: "trigger-long-running-operation", arguments: { duration: 1, steps: 3 }, _meta: { ...envelope, progressToken: "my-token" } };
  const reply = await rawPost(gw.mcpUrl("everything"), JSON.stringify({ jsonrpc: "2.0", id: "long-1", method: "tools/call", params }), {
    "mcp-protocol-version": "2026-07-28",
    "mcp-method": "tools/call",
    "mcp-name": "trigger-long-running-operation",
  });
  expect(reply.status).toBe(200);
  expect(reply.headers.get("content-type")).toContain("text/event-stream");
  const progress = reply.messages.filter((m) => (m as { method?: string }).method === "notifications/progress") as Array<{ params: { progressToken: unknown } }>;
  expect(progress.length).toBeGreaterThan(0);
  expect(progress.every((p) => p.params.progressToken === "my-token")).toBe(true);
  expect(reply.messages.at(-1)).toMatchObject({ id: "long-1", result: { resultType: "complete" } });
});

it("a bridge session counts toward the caller's session quota", async () => {
  const legacy = new LegacyClient({ name: "legacy", version: "1" });
  const transport = new LegacyTransport(gw.mcpUrl("tight"));
  await legacy.connect(transport);
  const ask = () =>
    rawPost(gw.mcpUrl("tight"), JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list", params: { _meta: envelope } }), { "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/list" });
  const refused = await ask();
  expect(refused.status).toBe(503);
  expect(refused.messages[0]).toMatchObject({ id: 1, error: { code: -33091, data: { code: "CS_ERR_SESSION_QUOTA" } } });
  await transport.terminateSession();
  await legacy.close();
  const admitted = await ask();
  expect(admitted.status).toBe(200);
  expect(await gw.db.session.count({ where: { connection: "tight", frontTransport: "stateless" } })).toBe(1);
});

it("a 2026 caller refused before its body is read (no token) gets a code outside the spec's range, never -32020", async () => {
  const body = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list", params: { _meta: envelope } });
  const modern = await rawPost(gw.mcpUrl("team"), body, { "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/list" });
  expect(modern.status).toBe(401);
  expect(modern.messages[0]).toMatchObject({ error: { code: -33020, data: { code: "CS_ERR_UNAUTHENTICATED" } } });
  // A 2025 caller sees the code it always did.
  const legacy = await rawPost(gw.mcpUrl("team"), JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "x", version: "1" } } }));
  expect(legacy.status).toBe(401);
  expect(legacy.messages[0]).toMatchObject({ error: { code: -32020, data: { code: "CS_ERR_UNAUTHENTICATED" } } });
});

it("closing the request cancels the call upstream, on record", async () => {
  const abort = new AbortController();
  const params = { name: "trigger-long-running-operation", arguments: { duration: 20, steps: 20 }, _meta: { ...envelope, progressToken: "cancel-me" } };
  const res = await fetch(gw.mcpUrl("everything"), {
    method: "POST",
    signal: abort.signal,
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "trigger-long-running-operation" },
    body: JSON.stringify({ jsonrpc: "2.0", id: "c-1", method: "tools/call", params }),
  });
  const reader = res.body!.getReader();
  const first = await reader.read(); // the first progress event: the call is upstream
  expect(new TextDecoder().decode(first.value)).toContain("cancel-me");
  abort.abort();
  await expect.poll(() => gw.db.message.count({ where: { method: "notifications/cancelled", direction: "in", connection: "everything" } }), { timeout: 10_000 }).toBe(1);
  const row = await gw.db.message.findFirstOrThrow({ where: { method: "notifications/cancelled", direction: "in", connection: "everything" }, orderBy: { id: "desc" } });
  const call = await gw.db.message.findFirstOrThrow({ where: { method: "tools/call", direction: "in", connection: "everything", payload: { path: ["params", "_meta", "progressToken"], string_starts_with: "countersign-" } }, orderBy: { id: "desc" } });
  expect((row.payload as { params: { requestId: unknown } }).params.requestId).toBe(call.jsonrpcId);
});
