// A Streamable HTTP upstream that closes a call's SSE stream mid-call (2025-11-25, SEP-1699
// polling): a real SDK v2 server with an event store sends a priming event (an id and `retry`),
// closes the stream (closeSSE), then answers. The gateway resumes the stream with a GET carrying
// Last-Event-ID after the `retry` delay, and the client gets the answer; the tool ran once. An
// upstream that refuses the resumption, or asks for a wait beyond the gateway's bound, fails that
// call alone with CS_ERR_UPSTREAM_STREAM_LOST, on record, and never hangs. The session's GET stream,
// closed by the upstream, is opened again, and what the upstream sends on it reaches the client.
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { NodeStreamableHTTPServerTransport } from "@modelcontextprotocol/node";
import { McpServer, type EventStore, type JSONRPCMessage } from "@modelcontextprotocol/server";
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import * as z from "zod/v4";
import { createDb, type Db } from "../gateway/store/client.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "./helpers/postgres.js";

/** What the test's client heard outside its requests. */
const heard = { listChanged: false };

let db: TestDatabase;
let prisma: Db;
let gw: TestGateway;
const servers: Server[] = [];

/** What each upstream saw: tool runs, and the GETs that carried Last-Event-ID. */
interface Seen {
  runs: number;
  resumes: Array<{ lastEventId: string; at: number }>;
  closedAt: number[];
  /** GETs without Last-Event-ID: the session's stream for server-initiated messages, opened. */
  getStreams: number;
}

function memoryEventStore(): EventStore {
  const events: Array<{ id: string; stream: string; message: JSONRPCMessage }> = [];
  let seq = 0;
  return {
    storeEvent(stream, message) {
      const id = `${stream}::${String(++seq).padStart(8, "0")}`;
      events.push({ id, stream, message });
      return Promise.resolve(id);
    },
    getStreamIdForEventId(id) {
      return Promise.resolve(events.find((e) => e.id === id)?.stream);
    },
    async replayEventsAfter(lastId, { send }) {
      const stream = events.find((e) => e.id === lastId)?.stream ?? "";
      for (const e of events) if (e.stream === stream && e.id > lastId) await send(e.id, e.message);
      return stream;
    },
  };
}

/**
 * A real SDK v2 server: `close_then_answer` closes its SSE stream, then answers 300 ms later.
 * `refuseResume` answers every GET with Last-Event-ID with 503.
 */
async function startUpstream(opts: { retryInterval: number; refuseResume?: boolean }): Promise<{ url: string; seen: Seen }> {
  const seen: Seen = { runs: 0, resumes: [], closedAt: [], getStreams: 0 };
  const sessions = new Map<string, NodeStreamableHTTPServerTransport>();
  const build = () => {
    const server = new McpServer({ name: "closes-mid-call", version: "1.0.0" });
    server.registerTool("close_then_answer", { description: "Closes its SSE stream, then answers", inputSchema: z.object({ n: z.number() }) }, async (args, ctx) => {
      seen.runs++;
      seen.closedAt.push(Date.now());
      ctx.http?.closeSSE?.();
      await new Promise((r) => setTimeout(r, 300));
      return { content: [{ type: "text", text: `answered ${args.n} after the stream closed` }] };
    });
    // Closes the session's GET stream, then, once the client has opened it again, says its tools
    // changed (a message outside any request: it can only travel on the GET stream), until heard.
    server.registerTool("close_get_stream", { description: "Closes the GET stream, then notifies on the reopened one", inputSchema: z.object({}) }, async (_a, ctx) => {
      const opened = seen.getStreams;
      ctx.http?.closeStandaloneSSE?.();
      const deadline = Date.now() + 10_000;
      while (seen.getStreams === opened && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      void (async () => {
        while (!heard.listChanged && Date.now() < deadline) {
          server.sendToolListChanged();
          await new Promise((r) => setTimeout(r, 200));
        }
      })();
      return { content: [{ type: "text", text: seen.getStreams > opened ? "reopened" : "not reopened" }] };
    });
    return server;
  };
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const sid = req.headers["mcp-session-id"] as string | undefined;
    const lastEventId = req.headers["last-event-id"] as string | undefined;
    if (req.method === "GET" && lastEventId) {
      seen.resumes.push({ lastEventId, at: Date.now() });
      if (opts.refuseResume) return void res.writeHead(503).end("busy");
    } else if (req.method === "GET") seen.getStreams++;
    if (req.method === "POST") {
      const chunks: Buffer[] = [];
      for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { method?: string };
      const existing = sid ? sessions.get(sid) : undefined;
      if (existing) return existing.handleRequest(req, res, body);
      const transport: NodeStreamableHTTPServerTransport = new NodeStreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        eventStore: memoryEventStore(),
        retryInterval: opts.retryInterval,
        onsessioninitialized: (id) => void sessions.set(id, transport),
      });
      await build().connect(transport);
      return transport.handleRequest(req, res, body);
    }
    const transport = sid ? sessions.get(sid) : undefined;
    if (!transport) return void res.writeHead(404).end();
    return transport.handleRequest(req, res);
  };
  const server = createServer((req, res) => void handle(req, res).catch(() => res.headersSent || res.writeHead(500).end()));
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/mcp`, seen };
}

let polling: Awaited<ReturnType<typeof startUpstream>>;
let refusing: Awaited<ReturnType<typeof startUpstream>>;
let tooPatient: Awaited<ReturnType<typeof startUpstream>>;

beforeAll(async () => {
  db = await createTestDatabase();
  prisma = createDb(db.url, { poolSize: 2 });
  polling = await startUpstream({ retryInterval: 400 });
  refusing = await startUpstream({ retryInterval: 100, refuseResume: true });
  tooPatient = await startUpstream({ retryInterval: 600_000 });
  gw = await startTestGateway(db.url, {
    limits: { upstreamTimeoutMs: 120_000 },
    connections: [
      { name: "polling", upstream: { type: "streamable_http", url: polling.url } },
      { name: "refusing", upstream: { type: "streamable_http", url: refusing.url } },
      { name: "too-patient", upstream: { type: "streamable_http", url: tooPatient.url } },
    ],
  });
});
afterAll(async () => {
  await gw?.stop();
  await prisma?.$disconnect();
  await db?.drop();
  for (const s of servers) s.closeAllConnections(), s.close();
});

async function connect(connection: string): Promise<Client> {
  const client = new Client({ name: "resume-test", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl(connection)));
  return client;
}

it("a call whose upstream stream closes mid-call is resumed with Last-Event-ID after the upstream's retry, and answered once", async () => {
  const client = await connect("polling");
  try {
    const result = await client.callTool({ name: "close_then_answer", arguments: { n: 7 } }, undefined, { timeout: 15_000 });
    expect(result.content).toEqual([{ type: "text", text: "answered 7 after the stream closed" }]);
    expect(polling.seen.runs).toBe(1);
    expect(polling.seen.resumes.length).toBeGreaterThanOrEqual(1);
    // The id the gateway resumed from is one the upstream issued (its priming event's), and it
    // waited the `retry` the upstream asked for.
    expect(polling.seen.resumes[0]!.lastEventId).toMatch(/::\d{8}$/);
    expect(polling.seen.resumes[0]!.at - polling.seen.closedAt[0]!).toBeGreaterThanOrEqual(380);
  } finally {
    await client.close();
  }
});

it("an upstream that refuses every resumption: the call fails after 3 attempts with CS_ERR_UPSTREAM_STREAM_LOST, on record", async () => {
  const client = await connect("refusing");
  try {
    const started = Date.now();
    const err = await client.callTool({ name: "close_then_answer", arguments: { n: 1 } }, undefined, { timeout: 15_000 }).then(
      () => undefined,
      (e: unknown) => e as { code?: number; message: string; data?: { code?: string } },
    );
    expect(err?.data?.code).toBe("CS_ERR_UPSTREAM_STREAM_LOST");
    expect(err?.message).toMatch(/3 attempts to resume it failed \(last: HTTP 503\)/);
    expect(refusing.seen.resumes).toHaveLength(3);
    expect(Date.now() - started).toBeLessThan(10_000);
    // The error is the call's recorded answer.
    await expect
      .poll(async () => {
        const rows = await prisma.message.findMany({ where: { connection: "refusing", direction: "out", kind: "error" } });
        return rows.map((r) => JSON.stringify(r.payload));
      })
      .toContainEqual(expect.stringContaining("CS_ERR_UPSTREAM_STREAM_LOST"));
  } finally {
    await client.close();
  }
});

it("an upstream that asks for a wait beyond the gateway's bound fails the call at once instead of hanging", async () => {
  const client = await connect("too-patient");
  try {
    const err = await client.callTool({ name: "close_then_answer", arguments: { n: 2 } }, undefined, { timeout: 15_000 }).then(
      () => undefined,
      (e: unknown) => e as { message: string; data?: { code?: string } },
    );
    expect(err?.data?.code).toBe("CS_ERR_UPSTREAM_STREAM_LOST");
    expect(err?.message).toMatch(/asks to wait 600000 ms/);
    expect(tooPatient.seen.resumes).toHaveLength(0);
  } finally {
    await client.close();
  }
});

it("an upstream that closes the session's GET stream: the gateway opens it again, and a message sent on it reaches the client", async () => {
  const client = await connect("polling");
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
    heard.listChanged = true;
  });
  try {
    await expect.poll(() => polling.seen.getStreams).toBeGreaterThanOrEqual(1);
    const result = await client.callTool({ name: "close_get_stream", arguments: {} }, undefined, { timeout: 15_000 });
    expect(result.content).toEqual([{ type: "text", text: "reopened" }]);
    await vi.waitFor(() => expect(heard.listChanged).toBe(true), { timeout: 10_000 });
  } finally {
    await client.close();
  }
});
