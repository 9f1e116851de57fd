// SSE event ids and Last-Event-ID resumption on the Streamable HTTP front. A client whose POST
// stream drops mid-call recovers the tool result: the SDK 1.x client reconnects with GET and
// Last-Event-ID and receives the rest of the stream. (Against server-everything 2026.8.31 directly,
// the same client's resumed GET receives nothing: the events after the drop are not replayed and
// the call times out; the gateway keeps the stream itself, so it does not depend on the upstream's
// event store.) An event id of one session reads nothing of another session; a forged or dropped id is
// refused with CS_ERR_RESUME_UNAVAILABLE, on record; the store keeps its bound.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventStream, SessionEventStore } from "../../gateway/mcp/front/event-store.js";
import { startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { rawInitialize, rawPost, startEverything, type RunningUpstream } from "../helpers/upstreams.js";

let db: TestDatabase;
let gw: TestGateway;
let direct: RunningUpstream;

beforeAll(async () => {
  db = await createTestDatabase();
  direct = await startEverything("streamableHttp");
  gw = await startTestGateway(db.url, {
    connections: [
      { name: "http", upstream: { type: "streamable_http", url: direct.url } },
    ],
  });
});
afterAll(async () => {
  await gw?.stop();
  await direct?.stop();
  await db?.drop();
});

/**
 * A fetch that cuts the response stream of the POST carrying tools/call once the first progress
 * event has reached the client (the connection is aborted, as a network drop would), and logs
 * every request's method and Last-Event-ID.
 */
function droppingFetch(log: Array<{ method: string; lastEventId: string | null }>): typeof fetch {
  return async (input, init) => {
    const headers = new Headers(init?.headers);
    log.push({ method: init?.method ?? "GET", lastEventId: headers.get("last-event-id") });
    const isCall = init?.method === "POST" && typeof init.body === "string" && init.body.includes('"tools/call"');
    if (!isCall) return fetch(input, init);
    const abort = new AbortController();
    const res = await fetch(input, { ...init, signal: abort.signal });
    const reader = res.body!.getReader();
    let seen = "";
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (seen.includes("notifications/progress")) {
          await reader.cancel().catch(() => {});
          abort.abort();
          controller.error(new Error("connection dropped"));
          return;
        }
        const { value, done } = await reader.read();
        if (done) return controller.close();
        seen += new TextDecoder().decode(value);
        controller.enqueue(value);
      },
    });
    return new Response(body, { status: res.status, headers: res.headers });
  };
}

async function callThroughDrop(url: URL | string) {
  const log: Array<{ method: string; lastEventId: string | null }> = [];
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    fetch: droppingFetch(log),
    reconnectionOptions: { initialReconnectionDelay: 100, maxReconnectionDelay: 1000, reconnectionDelayGrowFactor: 1.5, maxRetries: 3 },
  });
  const client = new Client({ name: "resume-test", version: "1.0.0" });
  await client.connect(transport);
  const progress: number[] = [];
  try {
    const result = await client.callTool({ name: "trigger-long-running-operation", arguments: { duration: 2, steps: 4 } }, undefined, {
      onprogress: (p) => progress.push(p.progress),
      timeout: 30_000,
    });
    return { result, progress, log };
  } finally {
    await client.close();
  }
}

describe("a POST stream that drops mid-call", () => {
  it("through the gateway: the same client recovers the result and every progress step, with event ids of the gateway's own", { timeout: 30_000 }, async () => {
    const { result, progress, log } = await callThroughDrop(gw.mcpUrl("http"));
    expect((result.content as Array<{ text: string }>)[0]!.text).toContain("Long running operation completed");
    expect(progress).toEqual([1, 2, 3, 4]);
    const resumed = log.find((r) => r.method === "GET" && r.lastEventId);
    expect(resumed?.lastEventId).toMatch(/^[A-Za-z0-9_-]{22}\.\d+$/);
  });
});

describe("event ids are bound to their session and stream", () => {
  /** A session with one answered call on a POST stream; returns the ids of that stream's events. */
  async function sessionWithEvents() {
    // 2025-11-25: the stream starts with a priming event (an id, no data), then the answer.
    const s = await rawInitialize(gw.mcpUrl("http"), "2025-11-25");
    const call = await rawPost(gw.mcpUrl("http"), JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/call", params: { name: "echo", arguments: { message: "secret-of-" + s.sessionId } } }), s.headers);
    expect(call.headers.get("content-type")).toContain("text/event-stream");
    const ids = [...call.text.matchAll(/^id: (.+)$/gm)].map((m) => m[1]!);
    expect(ids.length).toBeGreaterThan(0);
    // The priming event tells the client how long to wait before resuming (SEP-1699).
    expect(call.text).toMatch(/^id: [^\n]+\nretry: 1000\nevent: message\ndata: \n\n/);
    return { ...s, ids, text: call.text };
  }
  const resumeGet = (sessionHeaders: Record<string, string>, lastEventId: string) =>
    fetch(gw.mcpUrl("http"), { headers: { accept: "text/event-stream", ...sessionHeaders, "last-event-id": lastEventId } });

  it("a session replays its own ended stream after an id; another session's id, or a forged one, is refused and reads nothing", async () => {
    const a = await sessionWithEvents();
    const b = await sessionWithEvents();
    // A's own id on A's session: accepted (what followed it is replayed, then the response ends).
    const own = await resumeGet(a.headers, a.ids[0]!);
    expect(own.status).toBe(200);
    await own.text();

    const before = await gw.db.event.count({ where: { type: "message_rejected", reason: "resume_unavailable" } });
    // B presents A's event id on B's session: refused, nothing of A's in the answer.
    const cross = await resumeGet(b.headers, a.ids[0]!);
    const crossText = await cross.text();
    expect(cross.status).toBe(410);
    expect(JSON.parse(crossText).error.data.code).toBe("CS_ERR_RESUME_UNAVAILABLE");
    expect(crossText).not.toContain("secret-of-" + a.sessionId);
    // An id with B's own sequence but a made-up stream part, and one past B's stream's end.
    const forged = await resumeGet(b.headers, `AAAAAAAAAAAAAAAAAAAAAA.1`);
    expect(forged.status).toBe(410);
    await forged.text();
    const [bStream, bSeq] = b.ids.at(-1)!.split(".");
    const future = await resumeGet(b.headers, `${bStream}.${Number(bSeq) + 5}`);
    expect(future.status).toBe(410);
    await future.text();
    await expect.poll(() => gw.db.event.count({ where: { type: "message_rejected", reason: "resume_unavailable" } })).toBe(before + 3);
  });

  it("a session's own id before the answer replays the answer", async () => {
    const a = await sessionWithEvents();
    // The answer is the last event; resuming after the priming event before it replays it.
    const last = a.ids.at(-1)!;
    const [stream, seq] = last.split(".");
    const res = await resumeGet(a.headers, `${stream}.${Number(seq) - 1}`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain(`id: ${last}`);
    expect(text).toContain("secret-of-" + a.sessionId);
  });
});

describe("the per-session event store's bound", () => {
  it("drops the oldest events past its count or bytes, and refuses to resume across a gap", () => {
    const store = new SessionEventStore(3, 1000);
    const s = new EventStream(store, () => false);
    s.send("one");
    const afterOne = `${s.id}.1`;
    s.send("two");
    s.send("three");
    expect(store.after(afterOne)).toMatchObject({ ok: true, events: [{ data: "two" }, { data: "three" }] });
    s.send("four"); // "one" dropped: resuming after it still works ("two" is kept)
    expect(store.after(afterOne)).toMatchObject({ ok: true, events: [{ data: "two" }, { data: "three" }, { data: "four" }] });
    s.send("five"); // "two" dropped: resuming after "one" would skip it
    expect(store.after(afterOne)).toEqual({ ok: false, reason: "dropped" });
    expect(store.size.events).toBe(3);
    const big = new EventStream(store, () => false);
    big.send("x".repeat(600));
    big.send("y".repeat(600)); // past the bytes: the oldest go first
    expect(store.size.bytes).toBeLessThanOrEqual(1000);
    expect(store.after(`${big.id}.1`)).toMatchObject({ ok: true, events: [{ data: "y".repeat(600) }] });
    // An event larger than the whole bound is not kept: resuming before it is refused.
    big.send("z".repeat(2000));
    expect(store.after(`${big.id}.2`)).toEqual({ ok: false, reason: "dropped" });
    // Ended streams with nothing kept are forgotten: the map of streams is bounded too.
    s.end();
    expect(store.after(`${s.id}.1`)).toEqual({ ok: false, reason: "unknown" });
  });
});
