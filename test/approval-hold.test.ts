// The hold in the data path: a call that policy sends for approval is held while the caller is
// told who it waits for; approved, it is forwarded exactly once and its real result returned;
// denied, the caller gets a tool error naming who and why; undecided after holdFor, the caller gets
// "approval pending" and the identical retry later picks up the decision. Decisions go through the
// approvals service (the same entry the Slack bot and the CLI use); what the upstream received is
// read from its own log.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { LoggingMessageNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { signDevToken } from "../gateway/auth/dev-issuer.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "./helpers/postgres.js";
import { forwardedCalls, loggingServerStdio } from "./helpers/process.js";
import { DEPLOYS_NEED_ONCALL, quickApprovals } from "./helpers/held-calls.js";

let db: TestDatabase;
let gw: TestGateway;
let scratch: string;
let upstreamLog: string;

const forwarded = (marker: string) => forwardedCalls(upstreamLog, marker);

beforeAll(async () => {
  db = await createTestDatabase();
  scratch = mkdtempSync(join(tmpdir(), "countersign-hold-"));
  upstreamLog = join(scratch, "received.log");
  gw = await startTestGateway(db.url, {
    auth: { devIssuer: { enabled: true, keyFile: join(scratch, "dev.jwk") } },
    approvals: quickApprovals(["bob@example.com", "carol@example.com", "alice@example.com"], "2s"),
    connections: [
      {
        name: "ops",
        access: { groups: ["dev"] },
        upstream: loggingServerStdio(upstreamLog),
        policy: { rules: [DEPLOYS_NEED_ONCALL] },
      },
    ],
  });
});
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

async function aliceClient(onLog?: (text: string) => void) {
  const d = gw.identity.devIssuer!;
  const token = await signDevToken(d.key, d.url, {
    subject: "alice",
    email: "alice@example.com",
    groups: ["dev"],
    audience: [`${gw.config.publicUrl}/mcp/ops`],
    ttlSeconds: 600,
  });
  const c = new Client({ name: "hold-test", version: "1" });
  if (onLog) c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => onLog(String(n.params.data)));
  await c.connect(new StreamableHTTPClientTransport(gw.mcpUrl("ops"), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  return c;
}

/** Resolves with the pending request for `marker` once the gateway has opened it. */
async function pendingRequest(marker: string): Promise<string> {
  return vi.waitFor(async () => {
    const rows = await gw.db.$queryRawUnsafe<Array<{ id: string; status: string }>>(
      `SELECT id, status FROM approval_requests WHERE "maskedArguments"::text LIKE $1 ORDER BY "createdAt" DESC LIMIT 1`,
      `%${marker}%`,
    );
    if (!rows[0]) throw new Error(`no approval request for ${marker} yet`);
    return rows[0].id;
  }, { timeout: 10_000, interval: 50 });
}

const vote = (requestId: string, email: string, decision: "approve" | "deny", reason?: string) =>
  gw.approvals!.service.vote({ requestId, approver: { email }, decision, reason, via: "cli" });

describe("holding a call for approval", () => {
  it("tells the caller who it waits for, forwards once on approval, and returns the real result", async () => {
    const logs: string[] = [];
    const client = await aliceClient((t) => logs.push(t));
    const progress: number[] = [];
    const call = client.callTool({ name: "echo", arguments: { message: "deploy v1" } }, undefined, {
      onprogress: (p) => progress.push(p.progress),
      timeout: 30_000,
    });
    const id = await pendingRequest("deploy v1");
    expect(forwarded("deploy v1")).toBe(0);
    // The requester cannot approve her own call, admins and group members included.
    expect((await vote(id, "alice@example.com", "approve")).kind).toBe("self_approval_refused");
    expect((await vote(id, "bob@example.com", "approve")).kind).toBe("decided");
    const result = await call;
    expect(result.isError).toBeFalsy();
    expect(result.content).toEqual([{ type: "text", text: "Echo: deploy v1" }]);
    expect(forwarded("deploy v1")).toBe(1);
    expect(logs.some((l) => l.includes("Paused for approval by oncall") && l.includes("expires in") && l.includes(id))).toBe(true);
    await client.close();
  });

  it("answers a denial with a tool error naming who denied and why, forwarding nothing", async () => {
    const client = await aliceClient();
    const call = client.callTool({ name: "echo", arguments: { message: "deploy v2" } }, undefined, { timeout: 30_000 });
    const id = await pendingRequest("deploy v2");
    await vote(id, "carol@example.com", "deny", "freeze until Monday");
    const result = await call;
    expect(result.isError).toBe(true);
    const text = (result.content as Array<{ text: string }>)[0]!.text;
    expect(text).toContain("carol@example.com");
    expect(text).toContain("freeze until Monday");
    expect(forwarded("deploy v2")).toBe(0);
    await client.close();
  });

  it("returns 'approval pending' after holdFor, and the identical retry gets the decision, forwarded at most once", async () => {
    const client = await aliceClient();
    const first = await client.callTool({ name: "echo", arguments: { message: "deploy v3" } }, undefined, { timeout: 30_000 });
    expect(first.isError).toBe(true);
    const pendingText = (first.content as Array<{ text: string }>)[0]!.text;
    expect(pendingText).toMatch(/approval pending, request apr_\w+, expires .*retry the same call/);
    const id = await pendingRequest("deploy v3");
    expect(pendingText).toContain(id);

    await vote(id, "bob@example.com", "approve");
    const retry = await client.callTool({ name: "echo", arguments: { message: "deploy v3" } }, undefined, { timeout: 30_000 });
    expect(retry.content).toEqual([{ type: "text", text: "Echo: deploy v3" }]);
    // One approval covers one call: the same call again is a new request, held anew.
    const again = await client.callTool({ name: "echo", arguments: { message: "deploy v3" } }, undefined, { timeout: 30_000 });
    expect(again.isError).toBe(true);
    const againText = (again.content as Array<{ text: string }>)[0]!.text;
    expect(againText).toMatch(/approval pending, request apr_\w+/);
    expect(againText).not.toContain(id);
    expect(forwarded("deploy v3")).toBe(1);
    await client.close();
  });

  it("lets calls no rule holds through at once", async () => {
    const client = await aliceClient();
    const result = await client.callTool({ name: "echo", arguments: { message: "status" } });
    expect(result.content).toEqual([{ type: "text", text: "Echo: status" }]);
    await client.close();
  });
});

describe("holding across cancels and restarts", () => {
  it("a client that cancels mid-hold is not forwarded to, even when the approval comes later", async () => {
    const client = await aliceClient();
    const abort = new AbortController();
    const call = client.callTool({ name: "echo", arguments: { message: "deploy v4" } }, undefined, { signal: abort.signal, timeout: 30_000 });
    const id = await pendingRequest("deploy v4");
    abort.abort();
    await expect(call).rejects.toThrow();
    // The cancel reaches the gateway and ends the hold; the session has nothing pending.
    await expect.poll(() => gw.sessions.all().every((s) => s.pendingCount === 0)).toBe(true);
    await vote(id, "bob@example.com", "approve");
    expect(forwarded("deploy v4")).toBe(0);
    // The approval is not lost: the identical retry picks it up and is forwarded once. An approval
    // is claimed exactly once, so the retry's forward also proves the cancelled call never claimed it.
    const retry = await client.callTool({ name: "echo", arguments: { message: "deploy v4" } }, undefined, { timeout: 30_000 });
    expect(retry.content).toEqual([{ type: "text", text: "Echo: deploy v4" }]);
    expect(forwarded("deploy v4")).toBe(1);
    const [claimed] = await gw.db.$queryRawUnsafe<Array<{ forwardedAt: Date | null }>>(`SELECT "forwardedAt" FROM approval_requests WHERE id = $1`, id);
    expect(claimed!.forwardedAt).not.toBeNull();
    await client.close();
  });

  it("a request pending when the gateway restarts is decided afterwards, and the identical retry gets the decision without a second request", async () => {
    const client = await aliceClient();
    const pending = await client.callTool({ name: "echo", arguments: { message: "deploy v5" } }, undefined, { timeout: 30_000 });
    expect((pending.content as Array<{ text: string }>)[0]!.text).toMatch(/approval pending/);
    const id = await pendingRequest("deploy v5");
    await client.close().catch(() => {});

    // Restart: a new gateway process state on the same database and configuration.
    const config = gw.config;
    await gw.stop();
    gw = await startTestGateway(db.url, {
      auth: { devIssuer: { enabled: true, keyFile: join(scratch, "dev.jwk") } },
      approvals: { groups: { oncall: { emails: ["bob@example.com", "carol@example.com", "alice@example.com"] } }, holdFor: "2s", sweepIntervalMs: 200, pollIntervalMs: 200 },
      connections: [
        {
          name: "ops",
          access: { groups: ["dev"] },
          upstream: loggingServerStdio(upstreamLog),
          policy: { rules: (config.connections[0]!.policy as { rules: unknown[] }).rules },
        },
      ],
    });
    await vote(id, "bob@example.com", "approve");
    const after = await aliceClient();
    const retry = await after.callTool({ name: "echo", arguments: { message: "deploy v5" } }, undefined, { timeout: 30_000 });
    expect(retry.content).toEqual([{ type: "text", text: "Echo: deploy v5" }]);
    expect(forwarded("deploy v5")).toBe(1);
    const requests = await gw.db.$queryRawUnsafe<Array<{ n: number }>>(
      `SELECT count(*)::int AS n FROM approval_requests WHERE "maskedArguments"::text LIKE '%deploy v5%'`,
    );
    expect(requests[0]!.n).toBe(1);
    await after.close();
  });
});
