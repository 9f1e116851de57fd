// Notifications an HTTP upstream sends right after `notifications/initialized` reach the client:
// the gateway opens the upstream's GET stream (and waits for its answer) before it forwards
// `initialized`, so the upstream has a stream to send them on. The upstream is a real SDK server
// (McpServer with StreamableHTTPServerTransport, no event store: a message with no open stream is
// dropped) that logs a message the moment it learns the client is initialized.
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { LoggingMessageNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";

let db: TestDatabase;
let gw: TestGateway;
let upstream: Server;
/** Whether the upstream's send of its early notification found a stream (it throws or drops otherwise). */
const upstreamSent: string[] = [];

beforeAll(async () => {
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const sid = req.headers["mcp-session-id"];
    let transport = typeof sid === "string" ? transports.get(sid) : undefined;
    if (!transport) {
      if (req.method !== "POST" || sid) return void res.writeHead(404).end();
      const server = new McpServer({ name: "eager", version: "1.0.0" }, { capabilities: { logging: {} } });
      server.registerTool("noop", { description: "does nothing" }, async () => ({ content: [{ type: "text", text: "ok" }] }));
      server.server.oninitialized = () => {
        void server.server
          .sendLoggingMessage({ level: "info", data: "right after initialized" })
          .then(() => upstreamSent.push("sent"))
          .catch((e: unknown) => upstreamSent.push(`failed: ${String(e)}`));
      };
      const t = new StreamableHTTPServerTransport({ sessionIdGenerator: randomUUID, onsessioninitialized: (id) => void transports.set(id, t) });
      transport = t;
      await server.connect(t);
    }
    await transport.handleRequest(req, res);
  };
  upstream = createServer((req, res) => void handle(req, res));
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", () => r()));
  db = await createTestDatabase();
  gw = await startTestGateway(db.url, {
    connections: [{ name: "eager", upstream: { type: "streamable_http", url: `http://127.0.0.1:${(upstream.address() as { port: number }).port}/mcp` } }],
  });
});
afterAll(async () => {
  await gw?.stop();
  upstream?.closeAllConnections();
  await new Promise((r) => upstream?.close(r));
  await db?.drop();
});

it("the SDK client receives the log message the upstream sends the moment it is initialized", { timeout: 30_000 }, async () => {
  const transport = new StreamableHTTPClientTransport(gw.mcpUrl("eager"));
  const client = new Client({ name: "early", version: "1.0.0" });
  const logged: unknown[] = [];
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logged.push(n.params.data));
  await client.connect(transport);
  try {
    await expect.poll(() => upstreamSent.length, { timeout: 10_000 }).toBe(1);
    await expect.poll(() => logged, { timeout: 10_000 }).toEqual(["right after initialized"]);
    // And the session works as before.
    expect((await client.callTool({ name: "noop", arguments: {} })).content).toEqual([{ type: "text", text: "ok" }]);
  } finally {
    await transport.terminateSession().catch(() => {});
    await client.close();
  }
});
