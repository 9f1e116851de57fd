// Faults of the data path a caller or an auditor would notice: a held call judged by the
// upstream's clock, a cancel sent upstream for an id it never saw, a justification still
// percent-encoded in front of approvers, governed calls sent as notifications, concurrent
// initialize past the session cap, an upstream flooding the client with requests. What the
// upstream received is read from its own log; what was recorded, from the database.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signDevToken } from "../gateway/auth/dev-issuer.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "./helpers/postgres.js";
import { forwardedCalls, loggingServerStdio } from "./helpers/process.js";
import { DEPLOYS_NEED_ONCALL, quickApprovals } from "./helpers/held-calls.js";

const FIXTURE = new URL("./fixtures/misbehaving-server.mjs", import.meta.url).pathname;
const UPSTREAM_TIMEOUT_MS = 2000;

let db: TestDatabase;
let gw: TestGateway;
let scratch: string;
let upstreamLog: string;
const clients: Client[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  scratch = mkdtempSync(join(tmpdir(), "countersign-datapath-"));
  upstreamLog = join(scratch, "received.log");
  gw = await startTestGateway(db.url, {
    auth: { devIssuer: { enabled: true, keyFile: join(scratch, "dev.jwk") } },
    approvals: quickApprovals(["bob@example.com"], "15s"),
    limits: { upstreamTimeoutMs: UPSTREAM_TIMEOUT_MS },
    connections: [
      { name: "ops", access: { groups: ["dev"] }, upstream: loggingServerStdio(upstreamLog), policy: { rules: [DEPLOYS_NEED_ONCALL] } },
      { name: "single", maxSessions: 1, upstream: loggingServerStdio(join(scratch, "single.log")) },
      { name: "asks", upstream: { type: "stdio", command: process.execPath, args: [FIXTURE, "request-flood"], env: { FLOOD_COUNT: "10000" } } },
    ],
  });
}, 60_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  await gw?.stop();
  await db?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

async function opsClient(headers: Record<string, string> = {}): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const d = gw.identity.devIssuer!;
  const token = await signDevToken(d.key, d.url, { subject: "alice", email: "alice@example.com", groups: ["dev"], audience: [`${gw.config.publicUrl}/mcp/ops`], ttlSeconds: 600 });
  const client = new Client({ name: "datapath-test", version: "1" });
  const transport = new StreamableHTTPClientTransport(gw.mcpUrl("ops"), { requestInit: { headers: { authorization: `Bearer ${token}`, ...headers } } });
  await client.connect(transport);
  clients.push(client);
  return { client, transport };
}

async function pendingRequest(marker: string): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const rows = await gw.db.$queryRawUnsafe<Array<{ id: string }>>(`SELECT id FROM approval_requests WHERE "maskedArguments"::text LIKE $1 ORDER BY "createdAt" DESC LIMIT 1`, `%${marker}%`);
    if (rows[0]) return rows[0].id;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no approval request for ${marker}`);
}

/** Every message the logging server received, in order. */
const received = () =>
  readFileSync(upstreamLog, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { msg?: { method?: string; params?: Record<string, unknown> } })
    .flatMap((e) => (e.msg ? [e.msg] : []));

const cancelsReceived = () => received().filter((m) => m.method === "notifications/cancelled").length;

describe("holding and the upstream timeout", () => {
  it("a hold longer than limits.upstreamTimeoutMs is not answered 'upstream did not answer', and the upstream hears no cancel", async () => {
    const { client } = await opsClient();
    const started = Date.now();
    const call = client.callTool({ name: "echo", arguments: { message: "deploy slow-approver" } }, undefined, { timeout: 30_000 });
    const id = await pendingRequest("deploy slow-approver");
    // The approver takes longer than the upstream timeout; the upstream has not seen the call yet.
    await new Promise((r) => setTimeout(r, Math.max(0, UPSTREAM_TIMEOUT_MS + 700 - (Date.now() - started))));
    expect((await gw.approvals!.service.vote({ requestId: id, approver: { email: "bob@example.com" }, decision: "approve", via: "cli" })).kind).toBe("decided");
    const result = await call;
    expect(result.content).toEqual([{ type: "text", text: "Echo: deploy slow-approver" }]);
    expect(forwardedCalls(upstreamLog, "deploy slow-approver")).toBe(1);
    expect(cancelsReceived()).toBe(0);
  });

  it("a cancel for a held call ends the hold without telling the upstream about an id it never saw", async () => {
    const { client } = await opsClient();
    const abort = new AbortController();
    const call = client.callTool({ name: "echo", arguments: { message: "deploy cancelled-early" } }, undefined, { timeout: 30_000, signal: abort.signal });
    const id = await pendingRequest("deploy cancelled-early");
    abort.abort("changed my mind");
    await expect(call).rejects.toThrow();
    // The cancel was recorded as the client sent it, and the approval stays open for a retry.
    await expect.poll(async () => {
      const rows = await gw.db.$queryRawUnsafe<Array<{ n: bigint }>>(`SELECT count(*) AS n FROM messages WHERE connection = 'ops' AND method = 'notifications/cancelled' AND origin = 'client'`);
      return Number(rows[0]!.n);
    }).toBeGreaterThan(0);
    // A positive signal that the upstream has read everything sent before it: a later call's answer.
    expect((await client.callTool({ name: "echo", arguments: { message: "after the cancel" } })).content).toEqual([{ type: "text", text: "Echo: after the cancel" }]);
    expect(cancelsReceived()).toBe(0);
    expect(forwardedCalls(upstreamLog, "deploy cancelled-early")).toBe(0);
    const [row] = await gw.db.$queryRawUnsafe<Array<{ status: string }>>(`SELECT status FROM approval_requests WHERE id = $1`, id);
    expect(row!.status).toBe("pending");
  });

  it("shows approvers the header's justification percent-decoded", async () => {
    const { client } = await opsClient({ "x-countersign-justification": "St%C3%B6rung%3A%20Kunde" });
    const call = client.callTool({ name: "echo", arguments: { message: "deploy with-reason" } }, undefined, { timeout: 30_000 });
    const id = await pendingRequest("deploy with-reason");
    const [row] = await gw.db.$queryRawUnsafe<Array<{ justification: string | null }>>(`SELECT justification FROM approval_requests WHERE id = $1`, id);
    expect(row!.justification).toBe("Störung: Kunde");
    await gw.approvals!.service.vote({ requestId: id, approver: { email: "bob@example.com" }, decision: "deny", reason: "test over", via: "cli" });
    expect((await call).isError).toBe(true);
  });
});

describe("governed methods sent as notifications", () => {
  it("a held tools/call sent without an id is recorded and dropped, never forwarded; an allowed one goes on", async () => {
    const { transport } = await opsClient();
    await transport.send({ jsonrpc: "2.0", method: "tools/call", params: { name: "echo", arguments: { message: "deploy sneaky" } } });
    await transport.send({ jsonrpc: "2.0", method: "tools/call", params: { name: "echo", arguments: { message: "harmless notification" } } });
    await expect.poll(() => forwardedCalls(upstreamLog, "harmless notification"), { timeout: 10_000 }).toBe(1);
    await expect.poll(async () => {
      const rows = await gw.db.$queryRawUnsafe<Array<{ n: bigint }>>(`SELECT count(*) AS n FROM events WHERE type = 'message_rejected' AND reason = 'governed_notification' AND connection = 'ops'`);
      return Number(rows[0]!.n);
    }).toBe(1);
    expect(forwardedCalls(upstreamLog, "deploy sneaky")).toBe(0);
    const decisions = await gw.db.$queryRawUnsafe<Array<{ reason: string }>>(`SELECT reason FROM events WHERE type = 'policy_decision' AND detail->>'requestId' IS NULL AND connection = 'ops' ORDER BY id`);
    expect(decisions.map((d) => d.reason)).toEqual(["require_approval", "allow"]);
  });
});

describe("the session cap", () => {
  it("six concurrent initialize calls with maxSessions 1 open exactly one session", async () => {
    const init = (i: number) =>
      fetch(gw.mcpUrl("single"), {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
        body: JSON.stringify({ jsonrpc: "2.0", id: i, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: `racer-${i}`, version: "1" } } }),
      });
    const responses = await Promise.all(Array.from({ length: 6 }, (_, i) => init(i)));
    const statuses = responses.map((r) => r.status).sort();
    await Promise.all(responses.map((r) => r.body?.cancel() ?? Promise.resolve()));
    expect(statuses).toEqual([200, 503, 503, 503, 503, 503]);
    expect(gw.sessions.countFor("single")).toBe(1);
    // /readyz shows the limit next to the count.
    const ready = (await (await fetch(`${gw.address}/readyz`)).json()) as { sessionLimits: Record<string, { open: number; limit: number }> };
    expect(ready.sessionLimits.single).toEqual({ open: 1, limit: 1, perIdentity: 1 });
  });
});

describe("requests from the upstream to the client", () => {
  it("are capped while unanswered: beyond the cap the upstream gets a JSON-RPC error, recorded", async () => {
    const client = new Client({ name: "asked", version: "1" });
    await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl("asks")));
    clients.push(client);
    await client.callTool({ name: "echo", arguments: { message: "go" } });
    const tally = async () => JSON.parse(((await client.callTool({ name: "tally", arguments: {} })).content as Array<{ text: string }>)[0]!.text) as { ok: number; errors: number; codes: Record<string, number> };
    await expect.poll(async () => { const t = await tally(); return t.ok + t.errors; }, { timeout: 20_000 }).toBe(10_000);
    const t = await tally();
    expect(t.errors).toBeGreaterThan(0);
    expect(Object.keys(t.codes)).toEqual(["CS_ERR_UPSTREAM_REQUEST_LIMIT"]);
    await gw.recorder.drain();
    // Recorded as one event per second with a count, not a row per refusal: a flood must not fill
    // the audit queue every caller shares.
    const [events] = await gw.db.$queryRawUnsafe<Array<{ n: bigint; refused: bigint }>>(
      `SELECT count(*) AS n, sum((detail->>'refusedSinceLastEvent')::int) AS refused FROM events WHERE type = 'message_rejected' AND reason = 'upstream_request_limit' AND connection = 'asks'`,
    );
    expect(Number(events!.n)).toBeGreaterThan(0);
    expect(Number(events!.n)).toBeLessThan(t.errors);
    expect(Number(events!.refused)).toBeLessThanOrEqual(t.errors);
  });
});
