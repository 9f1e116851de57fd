// Countersign's reference MCP server for the conformance check (`npm run conformance`): the
// server the suite is run against directly and through the gateway. Built on the SDK v2 packages
// (@modelcontextprotocol/server, @modelcontextprotocol/node), it passes the suite's server
// scenarios for every revision the suite covers, so a difference through the gateway is the
// gateway's.
//
//   tsx test/conformance/reference-server/main.ts [http]   listens on 127.0.0.1:$PORT (0: any)
//       /mcp       Streamable HTTP, every revision on one endpoint: 2026-07-28 (stateless,
//                  per request) and the 2025 revisions (sessions, resumable SSE streams)
//       /sse       the 2024-11-05 HTTP+SSE transport (POST /messages?sessionId=…)
//   tsx test/conformance/reference-server/main.ts stdio    the same server over stdio
//   tsx test/conformance/reference-server/main.ts http --modern-only
//       /mcp serves 2026-07-28 only: initialize and every other 2025-era request are refused
//       (HTTP 400, -32022 with the supported version), and there is no /sse endpoint
//
// Prints "reference server listening on http://127.0.0.1:<port>" once it accepts connections.
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { localhostHostValidation, NodeStreamableHTTPServerTransport, toNodeHandler } from "@modelcontextprotocol/node";
import { classifyInboundRequest, createMcpHandler, isInitializeRequest, type EventStore, type JSONRPCMessage, type McpHttpHandler, type McpServer } from "@modelcontextprotocol/server";
import { serveStdio } from "@modelcontextprotocol/server/stdio";
import { buildServer } from "./features.js";
import { LegacySseTransport } from "./sse-transport.js";

/** Bounds: sessions of each kind, events kept per session for resumption, request body size. */
const MAX_SESSIONS = 256;
const MAX_EVENTS_PER_SESSION = 1000;
const MAX_BODY_BYTES = 4 * 1024 * 1024;

const mode = process.argv[2] ?? "http";
const modernOnly = process.argv.includes("--modern-only");
if (mode === "stdio") {
  // One instance per connection: its change events are its own list-changed notifications, which
  // the SDK's stdio entry puts on the connection's open subscriptions/listen streams (2026-07-28).
  serveStdio(
    () => {
      const server: McpServer = buildServer({
        notifier: () => ({
          toolsChanged: () => server.sendToolListChanged(),
          promptsChanged: () => server.sendPromptListChanged(),
          resourcesChanged: () => server.sendResourceListChanged(),
          resourceUpdated: (uri: string) => void server.server.sendResourceUpdated({ uri }).catch(() => {}),
        }),
      });
      return server;
    },
    { onerror: (err) => process.stderr.write(`reference server: ${err.message}\n`) },
  );
} else if (mode === "http") {
  await serveHttp(Number(process.env["PORT"] ?? 0));
} else {
  process.stderr.write(`usage: main.ts [http|stdio] (got ${mode})\n`);
  process.exit(2);
}

/** Events of one session's streams, so a client that reconnects with Last-Event-ID misses nothing. */
function boundedEventStore(): EventStore {
  const events: Array<{ id: string; stream: string; message: JSONRPCMessage }> = [];
  let seq = 0;
  return {
    storeEvent(stream, message) {
      const id = `${stream}::${String(++seq).padStart(12, "0")}`;
      events.push({ id, stream, message });
      if (events.length > MAX_EVENTS_PER_SESSION) events.shift();
      return Promise.resolve(id);
    },
    getStreamIdForEventId(id) {
      return Promise.resolve(events.find((e) => e.id === id)?.stream ?? id.split("::")[0]);
    },
    async replayEventsAfter(lastId, { send }) {
      const stream = events.find((e) => e.id === lastId)?.stream ?? lastId.split("::")[0] ?? lastId;
      for (const e of events) if (e.stream === stream && e.id > lastId) await send(e.id, e.message);
      return stream;
    },
  };
}

function reply(res: ServerResponse, status: number, message: string, code = -32000): void {
  if (res.headersSent) return;
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify({ jsonrpc: "2.0", error: { code, message }, id: null }));
}

async function readJson(req: IncomingMessage): Promise<{ ok: true; body: unknown } | { ok: false }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return { ok: false };
    chunks.push(chunk);
  }
  try {
    return { ok: true, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown };
  } catch {
    return { ok: false };
  }
}

const header = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);

async function serveHttp(port: number): Promise<void> {
  // 2026-07-28: one server instance per request; change events reach open listen streams.
  let modern: McpHttpHandler | undefined = undefined;
  modern = createMcpHandler(() => buildServer({ notifier: () => modern?.notify }), {
    onerror: (err) => process.stderr.write(`reference server (2026-07-28): ${err.message}\n`),
  });
  const modernNode = toNodeHandler(modern, { maxRequestBodySize: MAX_BODY_BYTES });
  const sessions = new Map<string, NodeStreamableHTTPServerTransport>();
  const sseSessions = new Map<string, LegacySseTransport>();
  const validHost = localhostHostValidation();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    // DNS rebinding: a Host that does not name loopback is refused (403).
    if (!validHost(req, res)) return;
    const url = new URL(req.url ?? "/", "http://localhost");

    if (modernOnly && url.pathname !== "/mcp") return reply(res, 404, "Not found");
    if (url.pathname === "/sse" && req.method === "GET") {
      if (sseSessions.size >= MAX_SESSIONS) return reply(res, 503, "too many SSE sessions");
      const transport = new LegacySseTransport("/messages", res);
      sseSessions.set(transport.sessionId, transport);
      transport.onclose = () => sseSessions.delete(transport.sessionId);
      await buildServer().connect(transport);
      return;
    }
    if (url.pathname === "/messages" && req.method === "POST") {
      const transport = sseSessions.get(url.searchParams.get("sessionId") ?? "");
      if (!transport) return reply(res, 404, "Session not found", -32001);
      const parsed = await readJson(req);
      if (!parsed.ok) return reply(res, 400, "Parse error", -32700);
      res.writeHead(202).end("Accepted");
      transport.receive(parsed.body as JSONRPCMessage);
      return;
    }
    if (url.pathname !== "/mcp") return reply(res, 404, "Not found");

    const sessionId = header(req.headers["mcp-session-id"]);
    if (req.method === "POST") {
      const parsed = await readJson(req);
      if (!parsed.ok) return reply(res, 400, "Parse error", -32700);
      const body = parsed.body;
      // 2026-07-28 traffic, malformed claims included, gets the stateless path's answers.
      const route = classifyInboundRequest({
        httpMethod: "POST",
        protocolVersionHeader: header(req.headers["mcp-protocol-version"]),
        mcpMethodHeader: header(req.headers["mcp-method"]),
        mcpNameHeader: header(req.headers["mcp-name"]),
        body,
      });
      if (route.kind !== "legacy") return modernNode(req, res, body);
      if (modernOnly) {
        if (!res.headersSent) {
          const id = body !== null && typeof body === "object" && "id" in body ? (body as { id: unknown }).id : null;
          res.writeHead(400, { "content-type": "application/json" }).end(
            JSON.stringify({ jsonrpc: "2.0", id, error: { code: -32022, message: "Unsupported protocol version: this server speaks only 2026-07-28", data: { supported: ["2026-07-28"] } } }),
          );
        }
        return;
      }
      const existing = sessionId === undefined ? undefined : sessions.get(sessionId);
      if (existing) return existing.handleRequest(req, res, body);
      if (sessionId !== undefined) return reply(res, 404, "Session not found", -32001);
      if (!isInitializeRequest(body)) return reply(res, 400, "Bad Request: Mcp-Session-Id required");
      if (sessions.size >= MAX_SESSIONS) return reply(res, 503, "too many sessions");
      const transport: NodeStreamableHTTPServerTransport = new NodeStreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        eventStore: boundedEventStore(),
        retryInterval: 1000,
        onsessioninitialized: (id) => void sessions.set(id, transport),
        onsessionclosed: (id) => void sessions.delete(id),
      });
      transport.onclose = () => {
        if (transport.sessionId !== undefined) sessions.delete(transport.sessionId);
      };
      await buildServer().connect(transport);
      return transport.handleRequest(req, res, body);
    }
    if (req.method === "GET" || req.method === "DELETE") {
      if (sessionId === undefined || modernOnly) {
        // A 2026-07-28 client has no session: the stateless path answers it (405 for GET).
        return modernNode(req, res);
      }
      const transport = sessions.get(sessionId);
      if (!transport) return reply(res, 404, "Session not found", -32001);
      return transport.handleRequest(req, res);
    }
    res.writeHead(405, { allow: "GET, POST, DELETE" }).end();
  };

  const http = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      process.stderr.write(`reference server: ${err instanceof Error ? err.stack : String(err)}\n`);
      reply(res, 500, "Internal error", -32603);
    });
  });
  await new Promise<void>((resolve) => http.listen(port, "127.0.0.1", resolve));
  const bound = (http.address() as { port: number }).port;
  process.stdout.write(`reference server listening on http://127.0.0.1:${bound}\n`);
  const stop = () => {
    for (const t of sessions.values()) void t.close();
    for (const t of sseSessions.values()) void t.close();
    void modern?.close();
    http.close(() => process.exit(0));
    http.closeAllConnections();
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}
