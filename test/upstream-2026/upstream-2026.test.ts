// The gateway in front of an MCP server that speaks only 2026-07-28 (the conformance reference
// server's features on the SDK v2 stateless handler, refusing every 2025-era request):
//   - a real 2025-era client (SDK 1.x) reaches it: the gateway answers initialize from
//     server/discover, sends each request with the envelope built from that initialize, and turns
//     the server's input_required into an elicitation on the client's session;
//   - a real 2026 client (SDK v2) is passed through with protocol: auto: the server sees its
//     envelope and never an initialize;
//   - protocol: legacy never probes; protocol: 2026-07-28 on a server that is not one fails closed.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { toNodeHandler } from "@modelcontextprotocol/node";
import { classifyInboundRequest, createMcpHandler } from "@modelcontextprotocol/server";
import { Client as LegacyClient } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as LegacyTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ElicitRequestSchema, EmptyResultSchema, ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signDevToken } from "../../gateway/auth/dev-issuer.js";
import { buildServer } from "../conformance/reference-server/features.js";
import { quickApprovals } from "../helpers/held-calls.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { rawPost, startEverything, type RunningUpstream } from "../helpers/upstreams.js";
import { PYTHON, pythonMcpMissing } from "../helpers/python.js";

const PYTHON_CLIENT = new URL("./fixtures/python_elicit.py", import.meta.url).pathname;
const pythonMissing = pythonMcpMissing();
if (pythonMissing) console.warn(`upstream-2026.test.ts: the Python client tests are skipped: ${pythonMissing}`);

interface Seen {
  method: string;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
}

/** A 2026-07-28-only server that remembers every POST it got. */
async function startModernOnly(): Promise<{ url: string; seen: Seen[]; server: Server }> {
  const seen: Seen[] = [];
  let handler: ReturnType<typeof createMcpHandler> | undefined = undefined;
  handler = createMcpHandler(() => buildServer({ notifier: () => handler?.notify }), { onerror: () => {} });
  const node = toNodeHandler(handler, { maxRequestBodySize: 1024 * 1024 });
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const body = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
      if (req.method === "POST") seen.push({ method: String(body.method ?? ""), headers: req.headers, body });
      const h = (n: string) => [req.headers[n]].flat()[0];
      const route = classifyInboundRequest({ httpMethod: "POST", body, protocolVersionHeader: h("mcp-protocol-version"), mcpMethodHeader: h("mcp-method"), mcpNameHeader: h("mcp-name") });
      if (req.method !== "POST" || route.kind === "legacy") {
        res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ jsonrpc: "2.0", id: body.id ?? null, error: { code: -32022, message: "this server speaks only 2026-07-28", data: { supported: ["2026-07-28"] } } }));
        return;
      }
      void node(req, res, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/mcp`, seen, server };
}

let db: TestDatabase;
let gw: TestGateway;
let modern: Awaited<ReturnType<typeof startModernOnly>>;
let legacyHttp: RunningUpstream;

beforeAll(async () => {
  db = await createTestDatabase();
  modern = await startModernOnly();
  legacyHttp = await startEverything("streamableHttp");
  gw = await startTestGateway(db.url, {
    connections: [
      { name: "modern", upstream: { type: "streamable_http", url: modern.url } },
      { name: "pinned", upstream: { type: "streamable_http", url: modern.url }, protocol: "2026-07-28" },
      { name: "legacy-only", upstream: { type: "streamable_http", url: legacyHttp.url }, protocol: "2026-07-28" },
      { name: "never-probed", upstream: { type: "streamable_http", url: modern.url }, protocol: "legacy" },
    ],
  });
}, 60_000);
afterAll(async () => {
  await gw?.stop();
  await legacyHttp?.stop();
  modern?.server.close();
  await db?.drop();
});

async function legacyClient(connection: string, onElicit?: (message: string) => Record<string, unknown>): Promise<LegacyClient> {
  const client = new LegacyClient({ name: "legacy-client", version: "1.0.0" }, { capabilities: onElicit ? { elicitation: {} } : {} });
  if (onElicit) client.setRequestHandler(ElicitRequestSchema, (req) => ({ action: "accept", content: onElicit(req.params.message) }));
  await client.connect(new LegacyTransport(gw.mcpUrl(connection)));
  return client;
}

it("lets a 2025-era client list and call tools on a 2026-only server, initialize answered from server/discover, all on record", async () => {
  const before = modern.seen.length;
  const client = await legacyClient("modern");
  expect(client.getServerVersion()?.name).toBe("countersign-reference-server");
  const { tools } = await client.listTools();
  expect(tools.map((t) => t.name)).toContain("test_simple_text");
  const result = await client.callTool({ name: "test_simple_text", arguments: {} });
  expect(result.content).toEqual([{ type: "text", text: "This is a simple text response for testing." }]);
  expect(result).not.toHaveProperty("resultType");
  await client.close();

  // The client's initialize never reached the server (the one initialize it saw is the gateway's
  // probe, refused, which is how auto knows to adapt); each request came with the envelope built
  // from the client's initialize.
  const got = modern.seen.slice(before);
  expect(got.filter((s) => s.method === "initialize").map((s) => (s.body.params as { clientInfo: { name: string } }).clientInfo.name)).toEqual(["countersign"]);
  const call = got.find((s) => s.method === "tools/call")!;
  const meta = (call.body.params as { _meta: Record<string, unknown> })._meta;
  expect(meta["io.modelcontextprotocol/protocolVersion"]).toBe("2026-07-28");
  expect(meta["io.modelcontextprotocol/clientInfo"]).toEqual({ name: "legacy-client", version: "1.0.0" });
  expect(call.headers["mcp-method"]).toBe("tools/call");
  expect(call.headers["mcp-name"]).toBe("test_simple_text");

  const session = await gw.db.session.findFirstOrThrow({ where: { connection: "modern", frontTransport: "streamable_http" }, orderBy: { createdAt: "desc" } });
  // The session's opening names the protocol the gateway chose for its upstream.
  await expect.poll(() => gw.db.event.findFirst({ where: { type: "session_opened", sessionId: session.id } }).then((e) => e?.detail)).toMatchObject({ protocol: "2026-07-28" });
  const records = await gw.db.message.findMany({ where: { sessionId: session.id }, orderBy: { id: "asc" } });
  expect(records.map((r) => `${r.direction} ${r.method}`)).toEqual(
    expect.arrayContaining(["in initialize", "out initialize", "in tools/list", "out tools/list", "in tools/call", "out tools/call"]),
  );
});

it("turns the server's input_required into an elicitation on the 2025-era client's session, and retries with its answer", async () => {
  const asked: string[] = [];
  const client = await legacyClient("modern", (message) => {
    asked.push(message);
    return { name: "Ada" };
  });
  const result = await client.callTool({ name: "test_input_required_result_elicitation", arguments: {} });
  expect(result.content).toEqual([{ type: "text", text: "Hello, Ada!" }]);
  expect(asked).toEqual(["What is your name?"]);
  await client.close();

  const session = await gw.db.session.findFirstOrThrow({ where: { connection: "modern", frontTransport: "streamable_http" }, orderBy: { createdAt: "desc" } });
  const records = await gw.db.message.findMany({ where: { sessionId: session.id }, orderBy: { id: "asc" } });
  // The gateway's question to the client and the client's answer are on record between the call and its result.
  expect(records.map((r) => `${r.direction} ${r.method}`).filter((m) => /tools\/call|elicitation/.test(m))).toEqual([
    "in tools/call",
    "out elicitation/create",
    "in elicitation/create",
    "out tools/call",
  ]);
  const retry = modern.seen.filter((s) => s.method === "tools/call" && (s.body.params as { inputResponses?: unknown }).inputResponses !== undefined).at(-1)!;
  expect((retry.body.params as { inputResponses: unknown }).inputResponses).toEqual({ user_name: { action: "accept", content: { name: "Ada" } } });
});

it("refuses, without hanging, an input request the 2025-era client did not declare the capability for", async () => {
  const client = await legacyClient("modern");
  await expect(client.callTool({ name: "test_input_required_result_elicitation", arguments: {} })).rejects.toThrow(/elicitation/);
  await client.close();
});

it("carries list changes and resource subscriptions to the 2025-era session over subscriptions/listen, and refuses tasks/* at once", async () => {
  const client = await legacyClient("modern");
  const changed: string[] = [];
  client.setNotificationHandler(ToolListChangedNotificationSchema, (n) => void changed.push(n.method));
  // The gateway's listen stream for the session carries the server's tools/list_changed to the client's GET stream.
  await expect.poll(() => modern.seen.filter((s) => s.method === "subscriptions/listen").length).toBeGreaterThan(0);
  await client.callTool({ name: "test_trigger_tool_change", arguments: {} });
  await expect.poll(() => changed).toEqual(["notifications/tools/list_changed"]);

  const { resources } = await client.listResources();
  await expect(client.subscribeResource({ uri: resources[0]!.uri })).resolves.toEqual({});
  const listen = modern.seen.filter((s) => s.method === "subscriptions/listen").at(-1)!;
  expect((listen.body.params as { notifications: { resourceSubscriptions?: string[] } }).notifications.resourceSubscriptions).toEqual([resources[0]!.uri]);

  const err = await client.request({ method: "tasks/list", params: {} }, EmptyResultSchema).then(
    () => undefined,
    (e: unknown) => e as { code?: number; data?: { code?: string } },
  );
  expect(err?.code).toBe(-32019);
  expect(err?.data?.code).toBe("CS_ERR_NOT_BRIDGEABLE");
  await client.close();
});

it("passes a 2026 client's requests through to a 2026 server with protocol auto: its envelope arrives, no initialize, records carry the envelope", async () => {
  const before = modern.seen.length;
  const client = new Client({ name: "modern-client", version: "2.4.0" }, { versionNegotiation: { mode: { pin: "2026-07-28" } }, capabilities: { elicitation: { form: {} } } });
  client.setRequestHandler("elicitation/create", () => ({ action: "accept", content: { name: "Grace" } }));
  await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl("modern")));
  expect(client.getServerVersion()?.name).toBe("countersign-reference-server");
  const result = await client.callTool({ name: "test_simple_text", arguments: {} });
  expect(result.content).toEqual([{ type: "text", text: "This is a simple text response for testing." }]);
  // The server's input_required goes to the client as it is; its retry comes back with the server's own fields.
  const asked = await client.callTool({ name: "test_input_required_result_elicitation", arguments: {} });
  expect(asked.content).toEqual([{ type: "text", text: "Hello, Grace!" }]);
  await client.close();

  const got = modern.seen.slice(before);
  expect(got.map((s) => s.method)).not.toContain("initialize");
  expect(got.map((s) => s.method)).toContain("server/discover");
  const call = got.find((s) => s.method === "tools/call")!;
  const meta = (call.body.params as { _meta: Record<string, unknown> })._meta;
  expect(meta["io.modelcontextprotocol/clientInfo"]).toMatchObject({ name: "modern-client" });
  expect(meta["io.modelcontextprotocol/clientCapabilities"]).toMatchObject({ elicitation: {} });
  const retry = got.find((s) => s.method === "tools/call" && (s.body.params as { inputResponses?: unknown }).inputResponses !== undefined);
  expect((retry?.body.params as { inputResponses: unknown }).inputResponses).toEqual({ user_name: { action: "accept", content: { name: "Grace" } } });

  const recorded = await gw.db.message.findMany({ where: { connection: "modern", method: "tools/call", direction: "in" }, orderBy: { id: "desc" }, take: 1 });
  const body = recorded[0]!.payload as { params: { _meta: Record<string, unknown> } };
  expect(body.params._meta["io.modelcontextprotocol/protocolVersion"]).toBe("2026-07-28");
  const bridges = await gw.db.session.findMany({ where: { connection: "modern", frontTransport: "stateless" } });
  const inits = await gw.db.message.count({ where: { sessionId: { in: bridges.map((b) => b.id) }, method: "initialize" } });
  expect(inits).toBe(0);
});

it("mirrors a tool's declared arguments into Mcp-Param-* headers on the passed-through call, as the server requires", async () => {
  const client = new Client({ name: "modern-client", version: "2.4.0" }, { versionNegotiation: { mode: { pin: "2026-07-28" } } });
  await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl("modern")));
  await client.listTools();
  for (const region of ["Hello", "=?base64?SGVsbG8=?=", "Grüße"]) {
    const result = await client.callTool({ name: "test_x_mcp_header", arguments: { region } });
    expect(result.content).toEqual([{ type: "text", text: `region=${region}` }]);
  }
  await client.close();
  const sent = modern.seen.filter((s) => s.method === "tools/call" && (s.body.params as { name?: string }).name === "test_x_mcp_header").map((s) => s.headers["mcp-param-region"]);
  expect(sent).toEqual(["Hello", `=?base64?${Buffer.from("=?base64?SGVsbG8=?=").toString("base64")}?=`, `=?base64?${Buffer.from("Grüße").toString("base64")}?=`]);
});

it("with protocol 2026-07-28, fails closed in front of a server that does not speak it", async () => {
  await expect(legacyClient("legacy-only")).rejects.toThrow(/server\/discover|CS_ERR_UPSTREAM/);
  // The pinned connection to a 2026 server works for a 2025-era client.
  const client = await legacyClient("pinned");
  expect((await client.listTools()).tools.length).toBeGreaterThan(0);
  await client.close();
});

it("probes an auto connection once for many sessions (cached), and never probes a legacy one", async () => {
  const probes = () => modern.seen.filter((s) => s.method === "server/discover" && (s.body.params as { _meta: Record<string, { name?: string }> })._meta["io.modelcontextprotocol/clientInfo"]?.name === "countersign").length;
  // Every earlier test opened sessions on "modern": one probe served them all.
  expect(probes()).toBe(1);
  // protocol: legacy speaks initialize to the 2026-only server, which refuses it: the client is told, nothing is probed.
  await expect(legacyClient("never-probed")).rejects.toThrow();
  expect(probes()).toBe(1);
  expect(modern.seen.at(-1)?.method).toBe("initialize");
});

describe.skipIf(pythonMissing !== undefined)("the official Python client through the gateway to the 2026-only server", () => {
  it.each(["legacy", "auto"])("lists tools and answers the server's elicitation (mode %s), on record", async (mode) => {
    const elicitations = () => gw.db.message.count({ where: { connection: "modern", method: "elicitation/create" } });
    const calls = () => gw.db.message.count({ where: { connection: "modern", method: "tools/call" } });
    const [callsBefore, elicitationsBefore] = [await calls(), await elicitations()];
    const { stdout } = await promisify(execFile)(PYTHON, [PYTHON_CLIENT, gw.mcpUrl("modern").href, mode], { timeout: 60_000 });
    expect(JSON.parse(stdout.trim().split("\n").pop()!)).toMatchObject({ text: "Hello, Py!" });
    // legacy: the call, the gateway's elicitation and its answer, the result (adapted); auto: the
    // call and its input_required answer, then the retry and its result (passed through).
    expect((await calls()) - callsBefore).toBe(mode === "legacy" ? 2 : 4);
    expect((await elicitations()) - elicitationsBefore).toBe(mode === "legacy" ? 2 : 0);
  });
});

describe("a held call passed through to the 2026-only server", () => {
  let held: TestGateway;
  let scratch: string;
  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), "countersign-upstream-2026-held-"));
    held = await startTestGateway(db.url, {
      auth: { devIssuer: { enabled: true, keyFile: join(scratch, "dev.jwk") } },
      approvals: quickApprovals(["bob@example.com"], "2s"),
      connections: [
        {
          name: "held",
          access: { groups: ["dev"] },
          upstream: { type: "streamable_http", url: modern.url },
          policy: { rules: [{ id: "text-needs-oncall", description: "text waits for on-call", tools: ["test_simple_text"], action: "require_approval", approval: { group: "oncall", timeout: "10m" } }] },
        },
      ],
    });
  }, 60_000);
  afterAll(async () => {
    await held?.stop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  let nextId = 1;
  async function call(extra: Record<string, unknown> = {}): Promise<{ status: number; msg: { result?: Record<string, unknown>; error?: unknown } }> {
    const d = held.identity.devIssuer!;
    const token = await signDevToken(d.key, d.url, { subject: "alice", email: "alice@example.com", groups: ["dev"], audience: [`${held.config.publicUrl}/mcp/held`], ttlSeconds: 600 });
    const meta = { "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": { elicitation: { url: {} } }, "io.modelcontextprotocol/clientInfo": { name: "held", version: "1" } };
    const body = { jsonrpc: "2.0", id: nextId++, method: "tools/call", params: { name: "test_simple_text", arguments: {}, _meta: meta, ...extra } };
    const reply = await rawPost(held.mcpUrl("held"), JSON.stringify(body), { authorization: `Bearer ${token}`, "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "test_simple_text" });
    return { status: reply.status, msg: reply.messages[0] as { result?: Record<string, unknown>; error?: unknown } };
  }
  const upstreamCalls = () => modern.seen.filter((s) => s.method === "tools/call" && (s.body.params as { name?: string }).name === "test_simple_text").length;

  it("answers with the gateway's input_required; a state the gateway did not seal does not pass the hold; the approved retry goes out once, without the round-trip fields", async () => {
    const before = upstreamCalls();
    const first = await call();
    expect(first.msg.result?.resultType).toBe("input_required");
    const url = (first.msg.result!.inputRequests as Record<string, { params: { url: string } }>)["countersign/approval"]!.params.url;
    const approvalId = decodeURIComponent(/\/console\/approvals\/([^/?#]+)$/.exec(url)![1]!);
    const state = first.msg.result!.requestState as string;

    // A requestState the gateway did not seal goes to the upstream's judgement, never past the hold: held again.
    const forged = await call({ requestState: "not-the-gateway's", inputResponses: { "countersign/approval": { action: "accept" } } });
    expect(forged.msg.result?.resultType).toBe("input_required");
    expect(upstreamCalls()).toBe(before);

    expect((await held.approvals!.service.vote({ requestId: approvalId, approver: { email: "bob@example.com" }, decision: "approve", via: "cli" })).kind).toBe("decided");
    const approved = await call({ requestState: state, inputResponses: { "countersign/approval": { action: "accept" } } });
    expect(approved.msg.result).toMatchObject({ resultType: "complete", content: [{ type: "text", text: "This is a simple text response for testing." }] });
    expect(upstreamCalls()).toBe(before + 1);
    const sent = modern.seen.filter((s) => s.method === "tools/call" && (s.body.params as { name?: string }).name === "test_simple_text").at(-1)!;
    expect(sent.body.params).not.toHaveProperty("requestState");
    expect(sent.body.params).not.toHaveProperty("inputResponses");
  });
});
