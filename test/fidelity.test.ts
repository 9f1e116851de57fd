// "The client notices no difference": the same calls, made by a real SDK client directly against
// server-everything and through the gateway, give equal results, for every upstream kind (stdio
// child, Streamable HTTP, legacy SSE) and both fronts (Streamable HTTP, legacy SSE).
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
  ResourceListChangedNotificationSchema,
  ResourceUpdatedNotificationSchema,
  type JSONRPCMessage,
  type Root,
} from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StdioUpstream } from "../gateway/mcp/upstream/stdio.js";
import { createMasker, maskingScope } from "../gateway/masking/index.js";
import { everythingStdio, startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "./helpers/postgres.js";
import { rawDelete, rawInitialize, rawPost, startEverything, tapTransport, waitFor, type RunningUpstream } from "./helpers/upstreams.js";

// Secrets in the gateway's own environment: a stdio child must never see them.
const GATEWAY_SECRETS = {
  DATABASE_URL: "postgresql://admin:db-secret-password@db.internal:5432/prod",
  SLACK_BOT_TOKEN: "xoxb-test-secret",
  COUNTERSIGN_SIGNING_KEY: "signing-key-that-must-stay-inside",
};

const MASKING_KEY = "fidelity masking key material, not a secret";
let db: TestDatabase;
let gw: TestGateway;
let httpUpstream: RunningUpstream;
let sseUpstream: RunningUpstream;
let direct: Peer;
const savedEnv: Record<string, string | undefined> = {};

beforeAll(async () => {
  for (const [k, v] of Object.entries(GATEWAY_SECRETS)) {
    savedEnv[k] = process.env[k];
    process.env[k] = v;
  }
  [db, httpUpstream, sseUpstream] = await Promise.all([createTestDatabase(), startEverything("streamableHttp"), startEverything("sse")]);
  gw = await startTestGateway(
    db.url,
    {
      connections: [
        { name: "stdio", upstream: everythingStdio() },
        { name: "http", upstream: { type: "streamable_http", url: httpUpstream.url } },
        { name: "sse", upstream: { type: "sse", url: sseUpstream.url } },
        { name: "envcheck", upstream: everythingStdio({ env: { FIDELITY_CONFIGURED: "from-config", FIDELITY_FROM_REFERENCE: { env: "FIDELITY_SOURCE" } } }) },
      ],
      // Pseudonyms are keyed: the expected view below is masked with the same key.
      keys: { maskingHmac: { env: "FIDELITY_MASKING_KEY" } },
    },
    { FIDELITY_SOURCE: "resolved-from-env-reference", FIDELITY_MASKING_KEY: MASKING_KEY },
  );
  direct = await connectPeer("direct", new URL(httpUpstream.url));
});

afterAll(async () => {
  await direct?.close();
  await gw?.stop();
  await Promise.all([httpUpstream?.stop(), sseUpstream?.stop()]);
  await db?.drop();
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

// ── a client with every client-side feature, and what it observed ──────────────────────────────

interface Peer {
  client: Client;
  seen: Array<{ direction: "in" | "out"; message: JSONRPCMessage }>;
  roots: Root[];
  logs: Array<{ level: string; data: unknown }>;
  updates: string[];
  resourceListChanged: number;
  samplingRequests: unknown[];
  elicitationRequests: unknown[];
  rootsRequests: number;
  initializeResult(): unknown;
  close(): Promise<void>;
}

async function connectPeer(front: "direct" | "streamable_http" | "sse", url: URL): Promise<Peer> {
  const raw = front === "sse" ? new SSEClientTransport(url) : new StreamableHTTPClientTransport(url);
  const { transport, seen } = tapTransport(raw);
  const client = new Client(
    { name: "fidelity-client", version: "1.0.0" },
    { capabilities: { sampling: {}, elicitation: {}, roots: { listChanged: true } } },
  );
  const peer: Peer = {
    client,
    seen,
    roots: [{ uri: "file:///work/project", name: "project" }],
    logs: [],
    updates: [],
    resourceListChanged: 0,
    samplingRequests: [],
    elicitationRequests: [],
    rootsRequests: 0,
    initializeResult: () => seen.find((s) => s.direction === "out" && "id" in s.message && s.message.id === 0 && "result" in s.message)?.message,
    close: async () => {
      if (transport instanceof StreamableHTTPClientTransport) await transport.terminateSession().catch(() => {});
      await client.close();
    },
  };
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void peer.logs.push({ level: n.params.level, data: n.params.data }));
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void peer.updates.push(n.params.uri));
  client.setNotificationHandler(ResourceListChangedNotificationSchema, () => void peer.resourceListChanged++);
  client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
    peer.samplingRequests.push(req.params);
    const first = req.params.messages[0]?.content;
    const text = first && "text" in first ? first.text : "";
    return { model: "fidelity-model", role: "assistant", content: { type: "text", text: `sampled answer to: ${text}` }, stopReason: "endTurn" };
  });
  client.setRequestHandler(ElicitRequestSchema, async (req) => {
    peer.elicitationRequests.push(req.params);
    return { action: "accept", content: { name: "Ada Lovelace", check: true, email: "ada@example.com", integer: 7 } };
  });
  client.setRequestHandler(ListRootsRequestSchema, async () => {
    peer.rootsRequests++;
    return { roots: peer.roots };
  });
  await client.connect(transport);
  return peer;
}

/**
 * What legitimately differs between two sessions of server-everything: session ids (UUIDs for
 * HTTP sessions, "undefined" for a stdio server, which has no session id), the wall-clock time
 * its dynamic resources embed, and blobs that are base64 of such text (decoded so the time can
 * be masked).
 */
function normalise(v: unknown, key?: string): unknown {
  if (typeof v === "string") {
    const text = key === "blob" ? `base64:${Buffer.from(v, "base64").toString("latin1")}` : v;
    return text
      .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, "<session-id>")
      .replace(/(session|SessionId) undefined/g, "$1 <session-id>")
      .replace(/\b\d{1,2}:\d{2}:\d{2}(\s?[AP]M)?/g, "<time>");
  }
  if (Array.isArray(v)) return v.map((x) => normalise(x));
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalise(x, k)]));
  return v;
}

const callTool = (p: Peer, name: string, args: Record<string, unknown> = {}) => p.client.callTool({ name, arguments: args });
const text = (r: unknown) => ((r as { content: Array<{ text?: string }> }).content ?? []).map((c) => c.text ?? "").join("\n");

// ── the calls: each feature of the point 5 that server-everything exposes ─────────────

interface Feature {
  name: string;
  run(p: Peer): Promise<unknown>;
}

const TINY_PNG_SIGNATURE = "89504e470d0a1a0a";

const FEATURES: Feature[] = [
  {
    name: "initialize: server info, capabilities, instructions and negotiated version",
    run: async (p) => {
      const init = p.initializeResult() as { result: { protocolVersion: string; serverInfo: { name: string } } };
      expect(init.result.protocolVersion).toBe("2025-11-25");
      expect(init.result.serverInfo.name).toBe("mcp-servers/everything");
      return init;
    },
  },
  { name: "ping", run: (p) => p.client.ping() },
  {
    name: "tools/list",
    run: async (p) => {
      const tools = await p.client.listTools();
      // The tools registered only for clients that declare sampling, elicitation and roots.
      expect(tools.tools.map((t) => t.name)).toEqual(expect.arrayContaining(["echo", "trigger-sampling-request", "trigger-elicitation-request", "get-roots-list"]));
      return tools;
    },
  },
  {
    name: "tools/call: echo, get-sum, get-structured-content, get-annotated-message, get-resource-links",
    run: async (p) => {
      const results = {
        echo: await callTool(p, "echo", { message: "hello, ünïcode ✓" }),
        sum: await callTool(p, "get-sum", { a: 2.5, b: -7 }),
        structured: await callTool(p, "get-structured-content", { location: "Chicago" }),
        annotated: await callTool(p, "get-annotated-message", { messageType: "error", includeImage: true }),
        links: await callTool(p, "get-resource-links", { count: 4 }),
        unknownTool: await callTool(p, "no-such-tool"),
      };
      expect(text(results.echo)).toBe("Echo: hello, ünïcode ✓");
      expect(results.structured.structuredContent).toEqual({ temperature: 36, conditions: "Light rain / drizzle", humidity: 82 });
      expect(results.unknownTool.isError).toBe(true);
      return results;
    },
  },
  {
    name: "tools/call: get-tiny-image (base64 image content)",
    run: async (p) => {
      const r = await callTool(p, "get-tiny-image");
      const image = (r.content as Array<{ type: string; data?: string }>).find((c) => c.type === "image")!;
      expect(Buffer.from(image.data!, "base64").subarray(0, 8).toString("hex")).toBe(TINY_PNG_SIGNATURE);
      return r;
    },
  },
  {
    name: "progress: notifications/progress reach the caller of a long-running tool, before its result",
    run: async (p) => {
      const from = p.seen.length;
      const reported: unknown[] = [];
      const result = await p.client.callTool({ name: "trigger-long-running-operation", arguments: { duration: 0.3, steps: 3 } }, undefined, {
        onprogress: (x) => void reported.push(x),
      });
      // What reached the client, read at the transport: the SDK's Client runs notification
      // handlers a microtask after it settles a response, so when the last progress notification
      // and the result arrive in one chunk (usual on a legacy SSE stream) its onprogress misses
      // the last one whoever sent them.
      const arrived = p.seen.slice(from).filter((s) => s.direction === "out");
      const progress = arrived.filter((s) => "method" in s.message && s.message.method === "notifications/progress").map((s) => "params" in s.message && s.message.params);
      expect(progress.map((x) => (x as { progress: number }).progress)).toEqual([1, 2, 3]);
      expect(arrived.at(-1)?.message).toMatchObject({ result });
      expect(reported.length).toBeGreaterThanOrEqual(2);
      return { progress: progress.map((x) => ({ ...(x as object), progressToken: "<request id>" })), result };
    },
  },
  {
    name: "cancellation: an aborted call rejects at the client and the session keeps working",
    run: async (p) => {
      const abort = new AbortController();
      const outcome = await p.client
        .callTool({ name: "trigger-long-running-operation", arguments: { duration: 3, steps: 15 } }, undefined, {
          signal: abort.signal,
          onprogress: () => abort.abort("stopped by the user"),
        })
        .then(
          () => "completed",
          (err: unknown) => `rejected: ${String(err)}`,
        );
      const after = await callTool(p, "echo", { message: "still here" });
      expect(outcome).toMatch(/^rejected: .*stopped by the user/);
      expect(text(after)).toBe("Echo: still here");
      return { outcome, after };
    },
  },
  {
    name: "logging: logging/setLevel and notifications/message from simulated logging",
    run: async (p) => {
      const setLevel = await p.client.setLoggingLevel("debug");
      const from = p.logs.length;
      const on = await callTool(p, "toggle-simulated-logging");
      await waitFor(() => p.logs.slice(from).some((l) => /level[- ]message/i.test(String(l.data))), "a simulated log message");
      const off = await callTool(p, "toggle-simulated-logging");
      return { setLevel, on, off };
    },
  },
  {
    name: "resources/list, resources/templates/list, resources/read",
    run: async (p) => {
      const list = await p.client.listResources();
      const templates = await p.client.listResourceTemplates();
      const firstStatic = list.resources[0]!.uri;
      const read = {
        static: await p.client.readResource({ uri: firstStatic }),
        text: await p.client.readResource({ uri: "demo://resource/dynamic/text/1" }),
        blob: await p.client.readResource({ uri: "demo://resource/dynamic/blob/2" }),
      };
      const missing = await p.client.readResource({ uri: "demo://resource/dynamic/text/not-a-number" }).then(
        () => "found",
        (err: unknown) => String(err),
      );
      expect(missing).toMatch(/Unknown resource|not found/i);
      return { list, templates, read, missing };
    },
  },
  {
    name: "resources/subscribe and notifications/resources/updated",
    run: async (p) => {
      const uri = "demo://resource/dynamic/text/1";
      const subscribed = await p.client.subscribeResource({ uri });
      const from = p.updates.length;
      const on = await callTool(p, "toggle-subscriber-updates");
      await waitFor(() => p.updates.slice(from).includes(uri), "notifications/resources/updated");
      const off = await callTool(p, "toggle-subscriber-updates");
      const unsubscribed = await p.client.unsubscribeResource({ uri });
      return { subscribed, on, off, unsubscribed, updated: uri };
    },
  },
  {
    name: "prompts/list and prompts/get",
    run: async (p) => ({
      list: await p.client.listPrompts(),
      simple: await p.client.getPrompt({ name: "simple-prompt" }),
      args: await p.client.getPrompt({ name: "args-prompt", arguments: { city: "Lisbon", state: "PT" } }),
      completable: await p.client.getPrompt({ name: "completable-prompt", arguments: { department: "Sales", name: "Eve" } }),
      resource: await p.client.getPrompt({ name: "resource-prompt", arguments: { resourceType: "Text", resourceId: "2" } }),
    }),
  },
  {
    name: "completion/complete for prompt arguments and resource templates",
    run: async (p) => {
      const department = await p.client.complete({ ref: { type: "ref/prompt", name: "completable-prompt" }, argument: { name: "department", value: "S" } });
      const name = await p.client.complete({
        ref: { type: "ref/prompt", name: "completable-prompt" },
        argument: { name: "name", value: "" },
        context: { arguments: { department: "Engineering" } },
      });
      const resourceId = await p.client.complete({ ref: { type: "ref/resource", uri: "demo://resource/dynamic/text/{resourceId}" }, argument: { name: "resourceId", value: "7" } });
      expect(department.completion.values).toEqual(["Sales", "Support"]);
      expect(name.completion.values).toEqual(["Alice", "Bob", "Charlie"]);
      return { department, name, resourceId };
    },
  },
  {
    name: "sampling: the server's sampling/createMessage reaches the client and its answer reaches the server",
    run: async (p) => {
      const from = p.samplingRequests.length;
      const result = await callTool(p, "trigger-sampling-request", { prompt: "Say hi", maxTokens: 25 });
      const requests = p.samplingRequests.slice(from);
      expect(requests).toHaveLength(1);
      expect(text(result)).toContain("sampled answer to: Resource trigger-sampling-request context: Say hi");
      return { requests, result };
    },
  },
  {
    name: "elicitation: the server's elicitation/create reaches the client and its answer reaches the server",
    run: async (p) => {
      const from = p.elicitationRequests.length;
      const result = await callTool(p, "trigger-elicitation-request");
      const requests = p.elicitationRequests.slice(from);
      expect(requests).toHaveLength(1);
      expect(text(result)).toContain("- Name: Ada Lovelace");
      return { requests, result };
    },
  },
  {
    name: "roots: get-roots-list sees the roots the client declares, and notifications/roots/list_changed updates them",
    run: async (p) => {
      const before = await callTool(p, "get-roots-list");
      expect(text(before)).toContain("URI: file:///work/project");
      p.roots = [...p.roots, { uri: "file:///work/second", name: "second" }];
      await p.client.sendRootsListChanged();
      // The server asks for the roots again on list_changed; poll its view until it has them.
      const after = await waitFor(async () => {
        const r = await callTool(p, "get-roots-list");
        return text(r).includes("(2 total)") ? r : undefined;
      }, "the server to see the changed roots");
      return { before, after };
    },
  },
  {
    name: "list_changed: a new resource sends notifications/resources/list_changed and appears in resources/list",
    run: async (p) => {
      const from = p.resourceListChanged;
      const data = `data:text/plain;base64,${Buffer.from("fidelity of a gzipped resource\n").toString("base64")}`;
      const result = await callTool(p, "gzip-file-as-resource", { name: "fidelity.txt.gz", data, outputType: "resourceLink" });
      await waitFor(() => p.resourceListChanged > from, "notifications/resources/list_changed");
      const list = await p.client.listResources();
      expect(list.resources.map((r) => r.uri)).toContain("demo://resource/session/fidelity.txt.gz");
      const read = await p.client.readResource({ uri: "demo://resource/session/fidelity.txt.gz" });
      return { result, list, read };
    },
  },
];

const directResults = new Map<string, Promise<unknown>>();
const DEFAULT_MASKER = createMasker({ tokenKey: MASKING_KEY });
function directResult(f: Feature): Promise<unknown> {
  let r = directResults.get(f.name);
  if (!r) directResults.set(f.name, (r = f.run(direct)));
  return r;
}

const COMBOS = (["stdio", "http", "sse"] as const).flatMap((connection) =>
  (["streamable_http", "sse"] as const).map((front) => ({ connection, front })),
);

describe.each(COMBOS)("$front front → $connection upstream", ({ connection, front }) => {
  let peer: Peer;
  beforeAll(async () => {
    peer = await connectPeer(front, front === "sse" ? gw.sseUrl(connection) : gw.mcpUrl(connection));
  });
  afterAll(async () => {
    await peer?.close();
  });

  it.each(FEATURES)("$name", async (feature) => {
    // "No difference" except where masking applies: the direct result, masked as the gateway's
    // default masking does (connections mask unless configured otherwise).
    // Pseudonyms are keyed per caller and connection: the anonymous caller's scope on this one.
    const expected = normalise(DEFAULT_MASKER.maskMessage(await directResult(feature), { scope: maskingScope({ issuer: "anonymous", subject: "anonymous" }, connection) }).masked);
    const actual = normalise(await feature.run(peer));
    expect(actual).toEqual(expected);
  });

  it("records the client's notifications/cancelled for the aborted call", async () => {
    const session = await gw.db.session.findFirst({ where: { connection, frontTransport: front }, orderBy: { createdAt: "desc" } });
    const rows = await gw.db.message.findMany({ where: { sessionId: session!.id, method: "notifications/cancelled", direction: "in" } });
    expect(rows).toHaveLength(1);
    const cancelled = rows[0]!.payload as { params: { requestId: number; reason: string } };
    const call = await gw.db.message.findFirst({ where: { sessionId: session!.id, jsonrpcId: String(cancelled.params.requestId), direction: "in" } });
    expect(call?.method).toBe("tools/call");
    expect(cancelled.params.reason).toBe("stopped by the user");
    // The gateway no longer waits for an answer the upstream will not send.
    expect(gw.sessions.get(session!.id)?.pendingCount).toBe(0);
  });
});

// ── protocol versions and batches, over raw HTTP ───────────────────────────────────────────────

describe("protocol versions", () => {
  const VERSIONS = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

  it.each(VERSIONS)("initialize with %s negotiates what the upstream negotiates directly", async (version) => {
    const directInit = await rawInitialize(httpUpstream.url, version);
    await rawDelete(httpUpstream.url, directInit.sessionId);
    expect(directInit.response.result.protocolVersion).toBe(version);
    await Promise.all(
      ["stdio", "http", "sse"].map(async (connection) => {
        const viaGateway = await rawInitialize(gw.mcpUrl(connection), version);
        expect({ connection, negotiated: viaGateway.response.result.protocolVersion }).toEqual({ connection, negotiated: version });
        expect(viaGateway.response.result.serverInfo).toEqual(directInit.response.result.serverInfo);
        expect(await rawDelete(gw.mcpUrl(connection), viaGateway.sessionId)).toBe(200);
      }),
    );
  });

  it.each(["stdio", "http"])("a JSON-RPC batch after negotiating 2025-03-26 gets every response (%s upstream)", async (connection) => {
    const batch = JSON.stringify([
      { jsonrpc: "2.0", id: 2, method: "ping" },
      { jsonrpc: "2.0", id: "three", method: "tools/call", params: { name: "echo", arguments: { message: "in a batch" } } },
      { jsonrpc: "2.0", method: "notifications/roots/list_changed" },
      { jsonrpc: "2.0", id: 4, method: "tools/call", params: { name: "get-sum", arguments: { a: 1, b: 2 } } },
    ]);
    const answers = async (url: string | URL) => {
      const { sessionId, headers } = await rawInitialize(url, "2025-03-26");
      const reply = await rawPost(url, batch, headers);
      await rawDelete(url, sessionId);
      expect(reply.status).toBe(200);
      const byId = new Map(reply.messages.map((m) => [(m as { id: unknown }).id, m]));
      return [2, "three", 4].map((id) => byId.get(id));
    };
    const viaGateway = await answers(gw.mcpUrl(connection));
    expect(viaGateway).toEqual(await answers(httpUpstream.url));
    expect(viaGateway[1]).toMatchObject({ result: { content: [{ type: "text", text: "Echo: in a batch" }] } });
  });
});

// ── session lifetimes ──────────────────────────────────────────────────────────────────────────

describe("DELETE ends the upstream session", () => {
  const ping = (url: URL | string, headers: Record<string, string>) => rawPost(url, JSON.stringify({ jsonrpc: "2.0", id: 9, method: "ping" }), headers);

  it("stdio: the child exits, the session row is closed as client_delete, and the id is then unknown", async () => {
    const { sessionId, headers } = await rawInitialize(gw.mcpUrl("stdio"), "2025-11-25");
    const pid = (gw.sessions.get(sessionId)!.upstream as StdioUpstream).pid!;
    expect(isAlive(pid)).toBe(true);
    expect((await ping(gw.mcpUrl("stdio"), headers)).status).toBe(200);

    expect(await rawDelete(gw.mcpUrl("stdio"), sessionId)).toBe(200);
    await waitFor(() => !isAlive(pid), "the stdio child to exit");
    const row = await waitFor(async () => {
      const s = await gw.db.session.findUnique({ where: { id: sessionId } });
      return s?.closedAt ? s : undefined;
    }, "the session row to be closed");
    expect(row.closeReason).toBe("client_delete");

    const after = await ping(gw.mcpUrl("stdio"), headers);
    expect(after.status).toBe(404);
    expect(after.messages[0]).toMatchObject({ jsonrpc: "2.0", error: { data: { code: "CS_ERR_UNKNOWN_SESSION" } } });
  });

  it("Streamable HTTP: the upstream session is deleted at the upstream too", async () => {
    const { sessionId, headers } = await rawInitialize(gw.mcpUrl("http"), "2025-11-25");
    const upstreamSessionId = gw.sessions.get(sessionId)!.upstream.upstreamSessionId!;
    const upstreamHeaders = { "mcp-session-id": upstreamSessionId, "mcp-protocol-version": "2025-11-25" };
    expect((await ping(httpUpstream.url, upstreamHeaders)).status).toBe(200);

    expect(await rawDelete(gw.mcpUrl("http"), sessionId)).toBe(200);
    // server-everything answers 400 "No valid session ID" for a session it no longer has.
    expect((await ping(httpUpstream.url, upstreamHeaders)).status).toBeGreaterThanOrEqual(400);
    const after = await ping(gw.mcpUrl("http"), headers);
    expect(after.status).toBe(404);
    expect(after.messages[0]).toMatchObject({ error: { data: { code: "CS_ERR_UNKNOWN_SESSION" } } });
  });
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// ── the stdio child's environment ──────────────────────────────────────────────────────────────

describe("stdio child environment", () => {
  it("has what the connection's env names and none of the gateway's secrets", async () => {
    const peer = await connectPeer("streamable_http", gw.mcpUrl("envcheck"));
    try {
      const result = await callTool(peer, "get-env");
      const env = JSON.parse(text(result)) as Record<string, string>;
      expect(env.FIDELITY_CONFIGURED).toBe("from-config");
      expect(env.FIDELITY_FROM_REFERENCE).toBe("resolved-from-env-reference");
      for (const name of [...Object.keys(GATEWAY_SECRETS), "TEST_DATABASE_URL", "FIDELITY_SOURCE"]) expect(env[name], name).toBeUndefined();
      for (const value of Object.values(GATEWAY_SECRETS)) {
        expect(text(result)).not.toContain(value);
        expect(gw.logText()).not.toContain(value);
      }
      expect(gw.logText()).not.toContain("resolved-from-env-reference");
    } finally {
      await peer.close();
    }
  });
});
