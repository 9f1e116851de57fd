// The gateway speaking MCP 2026-07-28 to a stdio server (connections[].protocol: 2026-07-28 on a
// stdio upstream): the conformance reference server's stdio mode (SDK v2 serveStdio, which pins a
// connection to 2026-07-28 when its first message carries the envelope).
//   - a real 2026 client (SDK v2) is passed through to its child: the server's own input request
//     keys come back (a bridge to a 2025-era child would name them itself), the tool sees the
//     caller's envelope, no initialize is recorded, concurrent requests share the child;
//   - a real 2025-era client (SDK 1.x) is adapted: initialize answered from server/discover, the
//     server's input_required turned into an elicitation on the client's session;
//   - protocol: legacy on the same server still bridges (the known gaps of the conformance run).
import { fileURLToPath } from "node:url";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { Client as LegacyClient } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as LegacyTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, parseConfigText } from "../../gateway/config/load.js";
import { createLogger } from "../../gateway/log.js";
import { STDIO_MODERN_IN_FLIGHT, StdioModernWire } from "../../gateway/mcp/upstream/stateless-stdio.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { rawPost } from "../helpers/upstreams.js";
import { everythingStdio, startTestGateway, type TestGateway } from "../helpers/gateway.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const MAIN = fileURLToPath(new URL("../conformance/reference-server/main.ts", import.meta.url));
/** The reference server over stdio, run by Node with the tsx loader. */
const referenceStdio = { type: "stdio" as const, command: process.execPath, args: ["--import", "tsx", MAIN, "stdio"], cwd: ROOT };

const silent = createLogger("silent");

let db: TestDatabase;
let gw: TestGateway;

beforeAll(async () => {
  db = await createTestDatabase();
  gw = await startTestGateway(db.url, {
    connections: [
      { name: "stdio-2026", upstream: referenceStdio, protocol: "2026-07-28" },
      { name: "stdio-legacy", upstream: referenceStdio, protocol: "legacy" },
      { name: "everything-2026", upstream: everythingStdio(), protocol: "2026-07-28" },
      { name: "everything-auto", upstream: everythingStdio() },
    ],
  });
}, 60_000);
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
});

async function modernClient(connection: string, name = "modern-client"): Promise<Client> {
  const client = new Client({ name, version: "2.4.0" }, { versionNegotiation: { mode: { pin: "2026-07-28" } }, capabilities: { elicitation: { form: {} } } });
  client.setRequestHandler("elicitation/create", () => ({ action: "accept", content: { name: "Grace" } }));
  await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl(connection)));
  return client;
}

const text = (r: object) => ((r as { content?: unknown }).content as Array<{ text?: string }>)[0]?.text;

it("passes a 2026 client through to its stdio child: the server's own input request and envelope, no initialize, all on record", async () => {
  const client = await modernClient("stdio-2026");
  expect(client.getServerVersion()?.name).toBe("countersign-reference-server");
  expect(text(await client.callTool({ name: "test_simple_text", arguments: {} }))).toBe("This is a simple text response for testing.");
  // The server's input_required goes to the client as it is and the retry comes back to the server.
  expect(text(await client.callTool({ name: "test_input_required_result_elicitation", arguments: {} }))).toBe("Hello, Grace!");
  // The tool reads the caller's clientCapabilities from the envelope: it asks for what was declared.
  expect(text(await client.callTool({ name: "test_input_required_result_capabilities", arguments: {} }))).toBe("Capability-aware input requests fulfilled");
  await client.close();

  const bridges = await gw.db.session.findMany({ where: { connection: "stdio-2026", frontTransport: "stateless" } });
  expect(bridges.length).toBe(1);
  await expect.poll(() => gw.db.event.findFirst({ where: { type: "session_opened", sessionId: bridges[0]!.id } }).then((e) => e?.detail)).toMatchObject({ upstream: "stdio", protocol: "2026-07-28" });
  const records = await gw.db.message.findMany({ where: { sessionId: bridges[0]!.id }, orderBy: { id: "asc" } });
  expect(records.map((r) => r.method)).not.toContain("initialize");
  // The input request under the key the server chose (user_name), as the server wrote it.
  const asked = records.find((r) => r.direction === "out" && r.method === "tools/call" && JSON.stringify(r.payload).includes("input_required"));
  expect(JSON.stringify(asked?.payload)).toContain('"user_name"');
  const call = records.find((r) => r.direction === "in" && r.method === "tools/call")!;
  expect((call.payload as { params: { _meta: Record<string, unknown> } }).params._meta["io.modelcontextprotocol/protocolVersion"]).toBe("2026-07-28");
});

it("multiplexes concurrent requests of several clients on the caller's one child, each answered with its own id", async () => {
  const clients = await Promise.all([modernClient("stdio-2026", "a"), modernClient("stdio-2026", "b"), modernClient("stdio-2026", "c")]);
  const results = await Promise.all(clients.flatMap((c) => [c.callTool({ name: "test_simple_text", arguments: {} }), c.listTools(), c.callTool({ name: "test_image_content", arguments: {} })]));
  expect(results.filter((r) => "tools" in r).every((r) => (r as { tools: unknown[] }).tools.length > 5)).toBe(true);
  expect(results.filter((r) => "content" in r).map((r) => (r as { content: Array<{ type: string }> }).content[0]!.type).sort()).toEqual(["image", "image", "image", "text", "text", "text"]);
  await Promise.all(clients.map((c) => c.close()));
  // One anonymous caller: one bridge session, so one child, served every client.
  expect(await gw.db.session.count({ where: { connection: "stdio-2026", frontTransport: "stateless" } })).toBe(1);
});

it("adapts a 2025-era client's session to the stdio child: initialize answered from server/discover, input_required asked on its session", async () => {
  const asked: string[] = [];
  const client = new LegacyClient({ name: "legacy-client", version: "1.0.0" }, { capabilities: { elicitation: {} } });
  client.setRequestHandler(ElicitRequestSchema, (req) => {
    asked.push(req.params.message);
    return { action: "accept", content: { name: "Ada" } };
  });
  await client.connect(new LegacyTransport(gw.mcpUrl("stdio-2026")));
  expect(client.getServerVersion()?.name).toBe("countersign-reference-server");
  expect((await client.listTools()).tools.map((t) => t.name)).toContain("test_simple_text");
  expect(text(await client.callTool({ name: "test_input_required_result_elicitation", arguments: {} }))).toBe("Hello, Ada!");
  expect(asked).toEqual(["What is your name?"]);
  await client.close();

  const session = await gw.db.session.findFirstOrThrow({ where: { connection: "stdio-2026", frontTransport: "streamable_http" }, orderBy: { createdAt: "desc" } });
  await expect.poll(() => gw.db.event.findFirst({ where: { type: "session_opened", sessionId: session.id } }).then((e) => e?.detail)).toMatchObject({ protocol: "2026-07-28" });
  const records = await gw.db.message.findMany({ where: { sessionId: session.id }, orderBy: { id: "asc" } });
  expect(records.map((r) => `${r.direction} ${r.method}`).filter((m) => /tools\/call|elicitation/.test(m))).toEqual(["in tools/call", "out elicitation/create", "in elicitation/create", "out tools/call"]);
});

it("with protocol: legacy, bridges a 2026 client to a 2025-era session on the child (the gateway names the input request)", async () => {
  const client = await modernClient("stdio-legacy");
  expect(text(await client.callTool({ name: "test_input_required_result_elicitation", arguments: {} }))).toBe("Hello, Grace!");
  await client.close();
  const bridge = await gw.db.session.findFirstOrThrow({ where: { connection: "stdio-legacy", frontTransport: "stateless" } });
  const records = await gw.db.message.findMany({ where: { sessionId: bridge.id }, orderBy: { id: "asc" } });
  expect(records.map((r) => r.method)).toContain("initialize");
});

it("with protocol 2026-07-28 in front of a 2025-era stdio server, fails closed at once; auto keeps a 2025-era session with it", async () => {
  const legacy = new LegacyClient({ name: "legacy-client", version: "1.0.0" });
  await expect(legacy.connect(new LegacyTransport(gw.mcpUrl("everything-2026")))).rejects.toThrow(/server\/discover|CS_ERR_UPSTREAM/);
  const modern = new Client({ name: "modern-client", version: "2.4.0" }, { versionNegotiation: { mode: { pin: "2026-07-28" } } });
  await expect(modern.connect(new StreamableHTTPClientTransport(gw.mcpUrl("everything-2026")))).rejects.toThrow();
  // auto (the default) never sends the stdio server anything but its 2025-era session.
  const client = new LegacyClient({ name: "legacy-client", version: "1.0.0" });
  await client.connect(new LegacyTransport(gw.mcpUrl("everything-auto")));
  expect(text(await client.callTool({ name: "echo", arguments: { message: "hi" } }))).toBe("Echo: hi");
  await client.close();
  const session = await gw.db.session.findFirstOrThrow({ where: { connection: "everything-auto" } });
  const first = await gw.db.message.findFirst({ where: { sessionId: session.id, direction: "in" }, orderBy: { id: "asc" } });
  expect(first?.method).toBe("initialize");
});

it("refuses protocol 2026-07-28 at load for an sse upstream and for a shared stdio child, naming the key", () => {
  const problems = (upstream: Record<string, unknown>): string[] => {
    try {
      parseConfigText(JSON.stringify({ version: 1, connections: [{ name: "s", upstream, protocol: "2026-07-28" }] }), "test.yaml", {});
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as ConfigError).problems;
    }
    throw new Error("accepted");
  };
  expect(problems({ type: "sse", url: "http://127.0.0.1:1/sse" }).join("\n")).toMatch(/connections\[0\]\.protocol.*SSE transport|SSE transport/);
  expect(problems({ type: "stdio", command: "node", shared: true }).join("\n")).toMatch(/shared: false/);
});

it("gives each of two concurrent calls with the same id and progress token its own progress and answer", async () => {
  const meta = { "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}, "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" }, progressToken: "tok" };
  const body = JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/call", params: { name: "test_tool_with_progress", arguments: {}, _meta: meta } });
  const headers = { "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "test_tool_with_progress" };
  const replies = await Promise.all([rawPost(gw.mcpUrl("stdio-2026"), body, headers), rawPost(gw.mcpUrl("stdio-2026"), body, headers)]);
  for (const reply of replies) {
    const msgs = reply.messages as Array<{ id?: unknown; method?: string; params?: { progressToken?: unknown; progress?: number }; result?: { content?: Array<{ text?: string }> } }>;
    expect(msgs.filter((m) => m.method === "notifications/progress").map((m) => [m.params!.progressToken, m.params!.progress])).toEqual([["tok", 0], ["tok", 50], ["tok", 100]]);
    expect(msgs.at(-1)).toMatchObject({ id: 7, result: { content: [{ type: "text" }] } });
  }
});

describe("the stdio wire itself", () => {
  let wire: StdioModernWire;
  const closed: string[] = [];
  beforeAll(async () => {
    wire = new StdioModernWire({ ...referenceStdio, env: {}, maxMessageBytes: 1024 * 1024, log: silent }, silent, { unrelated: () => {}, closed: (reason) => void closed.push(reason) });
    await wire.start();
  });
  afterAll(() => wire?.close());

  const meta = { "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {} };
  const call = (id: number, name: string) => ({ jsonrpc: "2.0" as const, id, method: "tools/call", params: { name, arguments: {}, _meta: meta } });

  it("cancels a request at the caller's word (the child is told; the request is forgotten) and keeps serving", async () => {
    const abort = new AbortController();
    const pending = wire.exchange(call(1, "test_reconnection"), { signal: abort.signal });
    abort.abort();
    await expect(pending).rejects.toMatchObject({ code: "CS_ERR_REQUEST_CANCELLED" });
    expect(wire.inFlight).toBe(0);
    await expect(wire.exchange(call(1, "test_simple_text"), {})).resolves.toMatchObject({ id: 1, result: { content: [{ text: "This is a simple text response for testing." }] } });
  });

  it(`refuses a request past ${STDIO_MODERN_IN_FLIGHT} in flight, and answers the rest`, async () => {
    const all = Array.from({ length: STDIO_MODERN_IN_FLIGHT }, (_, i) => wire.exchange(call(i, "test_reconnection"), {}));
    await expect(wire.exchange(call(-1, "test_simple_text"), {})).rejects.toMatchObject({ code: "CS_ERR_TOO_MANY_IN_FLIGHT" });
    const answers = await Promise.all(all);
    expect(answers.map((a) => a.id)).toEqual(Array.from({ length: STDIO_MODERN_IN_FLIGHT }, (_, i) => i));
    expect(wire.inFlight).toBe(0);
    expect(closed).toEqual([]);
  });
});
