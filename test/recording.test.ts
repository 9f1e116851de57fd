// Recording: after a session, the `messages` rows reproduce the exchange as the client saw it, in
// order; the session row says who, when, with what; and `countersign replay` / `sessions` read it
// back for people and machines.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CreateMessageRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { everythingStdio, startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { BUILT_CLI } from "./helpers/built.js";
import { ROOT, createTestDatabase, type TestDatabase } from "./helpers/postgres.js";
import { tapTransport, waitFor, type Tapped } from "./helpers/upstreams.js";

const run = promisify(execFile);

let db: TestDatabase;
let gw: TestGateway;
let sessionId: string;
let otherSessionId: string;
let seen: Tapped[];
const CLIENT_INFO = { name: "recording-client", version: "3.1.4" };

beforeAll(async () => {
  db = await createTestDatabase();
  gw = await startTestGateway(db.url, {
    connections: [
      { name: "everything", upstream: everythingStdio() },
      { name: "other", upstream: everythingStdio() },
    ],
  });

  // A session with requests, responses, notifications (progress, list_changed), a
  // server→client request (sampling) and the client's answer to it.
  const tapped = tapTransport(new StreamableHTTPClientTransport(gw.mcpUrl("everything")));
  seen = tapped.seen;
  const client = new Client(CLIENT_INFO, { capabilities: { sampling: {} } });
  client.setRequestHandler(CreateMessageRequestSchema, async () => ({
    model: "recording-model",
    role: "assistant",
    content: { type: "text", text: "a recorded answer" },
  }));
  await client.connect(tapped.transport);
  sessionId = tapped.transport.sessionId!;
  // server-everything announces the two tools it adds for a sampling client as soon as it is
  // initialized, unprompted; wait for them so the rest of the exchange has one order.
  await waitFor(() => seen.filter((s) => "method" in s.message && s.message.method === "notifications/tools/list_changed").length >= 2, "list_changed");
  await client.listTools();
  await client.callTool({ name: "echo", arguments: { message: "recorded" } });
  await client.callTool({ name: "trigger-long-running-operation", arguments: { duration: 0.2, steps: 2 } }, undefined, { onprogress: () => {} });
  await client.callTool({ name: "trigger-sampling-request", arguments: { prompt: "record me", maxTokens: 10 } });
  await client.ping();
  await tapped.transport.terminateSession();
  await client.close();

  // A second, plainer session on another connection, for the CLI's filters.
  const other = new StreamableHTTPClientTransport(gw.mcpUrl("other"));
  const otherClient = new Client({ name: "other-client", version: "1" });
  await otherClient.connect(other);
  otherSessionId = other.sessionId!;
  await otherClient.ping();
  await other.terminateSession();
  await otherClient.close();

  await gw.recorder.drain();
  await waitFor(async () => (await gw.db.session.findUnique({ where: { id: sessionId } }))?.closedAt, "the session row to be closed");
});

afterAll(async () => {
  await gw?.stop();
  await db?.drop();
});

const rowsOf = (id: string) => gw.db.message.findMany({ where: { sessionId: id }, orderBy: { id: "asc" } });

describe("messages rows", () => {
  it("reproduce the exchange as the client saw it, in order", async () => {
    const rows = await rowsOf(sessionId);
    expect(rows.map((r) => ({ direction: r.direction, payload: r.payload }))).toEqual(seen.map((s) => ({ direction: s.direction, payload: s.message })));
    // The session had every kind of message.
    const methods = new Set(rows.map((r) => `${r.direction} ${r.kind} ${r.method}`));
    for (const m of [
      "in request initialize",
      "out response initialize",
      "in notification notifications/initialized",
      "out notification notifications/tools/list_changed",
      "in request tools/call",
      "out notification notifications/progress",
      "out request sampling/createMessage",
      "in response sampling/createMessage",
      "out response tools/call",
      "in request ping",
    ]) {
      expect(methods).toContain(m);
    }
  });

  it("each carry connection, direction, JSON-RPC id, method (responses: their request's), size and time", async () => {
    const rows = await rowsOf(sessionId);
    const session = await gw.db.session.findUniqueOrThrow({ where: { id: sessionId } });
    const methodOfRequest = new Map<string, string>();
    let previous = session.createdAt.getTime();
    rows.forEach((row, i) => {
      const payload = row.payload as { id?: string | number; method?: string };
      expect(row.connection).toBe("everything");
      expect(row.origin).toBe(row.direction === "in" ? "client" : "upstream");
      expect(row.jsonrpcId).toBe(payload.id === undefined ? null : String(payload.id));
      if (payload.method) {
        expect(row.method).toBe(payload.method);
        if (payload.id !== undefined) methodOfRequest.set(`${row.direction}:${payload.id}`, payload.method);
      } else {
        // A response is recorded under the method of the request it answers (sent the other way).
        expect(row.method).toBe(methodOfRequest.get(`${row.direction === "in" ? "out" : "in"}:${payload.id}`));
      }
      // The size of the message as it travelled.
      expect(row.size).toBe(Buffer.byteLength(JSON.stringify(seen[i]!.message)));
      expect(row.at.getTime()).toBeGreaterThanOrEqual(previous);
      previous = row.at.getTime();
    });
    expect(previous).toBeLessThanOrEqual(session.closedAt!.getTime());
  });

  it("the session row has client info, protocol version, server info, upstream kind and its owner", async () => {
    const session = await gw.db.session.findUniqueOrThrow({ where: { id: sessionId } });
    const init = seen.find((s) => s.direction === "out" && "result" in s.message && s.message.id === 0)!.message as unknown as { result: { serverInfo: unknown } };
    expect(session).toMatchObject({
      connection: "everything",
      frontTransport: "streamable_http",
      upstreamKind: "stdio",
      protocolVersion: "2025-11-25",
      clientInfo: CLIENT_INFO,
      serverInfo: init.result.serverInfo,
      ownerInstanceId: gw.instanceId,
      closeReason: "client_delete",
    });
    const owner = await gw.db.instance.findUniqueOrThrow({ where: { id: session.ownerInstanceId } });
    expect(owner.pid).toBe(process.pid);
  });
});

describe("countersign CLI", () => {
  const cli = async (...args: string[]) => {
    const { stdout } = await run(process.execPath, [BUILT_CLI, ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL: db.url, COLUMNS: "200" },
      timeout: 60_000,
    });
    return stdout;
  };
  const ids = (json: string) => (JSON.parse(json) as Array<{ id: string }>).map((s) => s.id);

  it("replay prints the exchange in order for a person and, with --json, for machines", async () => {
    const [human, json] = await Promise.all([cli("replay", sessionId), cli("replay", sessionId, "--json")]);
    const rows = await rowsOf(sessionId);

    const lines = human.split("\n").filter((l) => l.includes("client → server") || l.includes("client ← server"));
    expect(lines).toHaveLength(rows.length);
    rows.forEach((row, i) => {
      expect(lines[i]).toContain(row.direction === "in" ? "client → server" : "client ← server");
      expect(lines[i]).toContain(` ${row.method ?? ""}`);
    });
    expect(human).toContain(sessionId);

    const parsed = JSON.parse(json) as { session: { id: string; clientInfo: unknown }; messages: Array<{ direction: string; method: string | null; payload: unknown }> };
    expect(parsed.session).toMatchObject({ id: sessionId, clientInfo: CLIENT_INFO });
    expect(parsed.messages.map((m) => ({ direction: m.direction, payload: m.payload }))).toEqual(seen.map((s) => ({ direction: s.direction, payload: s.message })));
  }, 120_000);

  it("sessions lists sessions, filtered by connection and by method", async () => {
    // Two at a time: each is a Node process compiling TypeScript, on two cores.
    const [all, byConnection] = await Promise.all([cli("sessions", "--json"), cli("sessions", "--json", "--connection", "other")]);
    const [byMethod, human] = await Promise.all([cli("sessions", "--json", "--method", "sampling/createMessage"), cli("sessions", "--connection", "everything")]);
    expect(ids(all)).toEqual(expect.arrayContaining([sessionId, otherSessionId]));
    expect(ids(byConnection)).toEqual([otherSessionId]);
    expect(ids(byMethod)).toEqual([sessionId]);
    expect(human).toContain(sessionId);
    expect(human).not.toContain(otherSessionId);
    expect(human).toContain("recording-client 3.1.4");
  }, 120_000);
});
