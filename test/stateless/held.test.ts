// Held calls for MCP 2026-07-28 callers: input_required with a URL elicitation to the console's
// approval page and a sealed requestState; the retry gets the decision; an approved call is
// forwarded once; a tampered, misbound or replayed state is refused and recorded.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { signDevToken } from "../../gateway/auth/dev-issuer.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { everythingStdio, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { DEPLOYS_NEED_ONCALL, quickApprovals } from "../helpers/held-calls.js";
import { rawPost } from "../helpers/upstreams.js";

let db: TestDatabase;
let gw: TestGateway;
let scratch: string;

beforeAll(async () => {
  db = await createTestDatabase();
  scratch = mkdtempSync(join(tmpdir(), "countersign-stateless-held-"));
  gw = await startTestGateway(db.url, {
    auth: { devIssuer: { enabled: true, keyFile: join(scratch, "dev.jwk") } },
    approvals: quickApprovals(["bob@example.com", "alice@example.com"], "2s"),
    connections: [{ name: "ops", access: { groups: ["dev"] }, upstream: everythingStdio(), policy: { rules: [DEPLOYS_NEED_ONCALL] } }],
  });
});
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

async function token(who: string): Promise<string> {
  const d = gw.identity.devIssuer!;
  return signDevToken(d.key, d.url, { subject: who, email: `${who}@example.com`, groups: ["dev"], audience: [`${gw.config.publicUrl}/mcp/ops`], ttlSeconds: 600 });
}

type Reply = Awaited<ReturnType<typeof rawPost>>;
let nextId = 1;
async function call(who: string, message: string, extra: Record<string, unknown> = {}, capabilities: Record<string, unknown> = { elicitation: { url: {} } }): Promise<{ reply: Reply; msg: { id: number; result?: Record<string, unknown>; error?: { code: number; data: Record<string, unknown> } } }> {
  const id = nextId++;
  const meta = { "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": capabilities, "io.modelcontextprotocol/clientInfo": { name: "held", version: "1" } };
  const body = { jsonrpc: "2.0", id, method: "tools/call", params: { name: "echo", arguments: { message }, _meta: meta, ...extra } };
  const reply = await rawPost(gw.mcpUrl("ops"), JSON.stringify(body), {
    authorization: `Bearer ${await token(who)}`,
    "mcp-protocol-version": "2026-07-28",
    "mcp-method": "tools/call",
    "mcp-name": "echo",
  });
  const msg = reply.messages[0] as { id: number; result?: Record<string, unknown>; error?: { code: number; data: Record<string, unknown> } };
  expect(msg.id).toBe(id);
  return { reply, msg };
}

const upstreamCalls = (message: string) =>
  gw.db.message.count({ where: { method: "tools/call", direction: "out", origin: "upstream", payload: { path: ["result", "content", "0", "text"], equals: `Echo: ${message}` } } });

async function rejected(reason: string): Promise<void> {
  await expect.poll(() => gw.db.event.count({ where: { type: "message_rejected", reason, connection: "ops" } })).toBeGreaterThan(0);
}

it("answers a held call with input_required; the retry with its state gets the decision and the approved call goes out once", async () => {
  const first = await call("alice", "deploy v1");
  expect(first.reply.status).toBe(200);
  const result = first.msg.result!;
  expect(result.resultType).toBe("input_required");
  const input = (result.inputRequests as Record<string, { method: string; params: { mode: string; url: string } }>)["countersign/approval"]!;
  expect(input.method).toBe("elicitation/create");
  expect(input.params.mode).toBe("url");
  const approvalId = /\/console\/approvals\/([^/?#]+)$/.exec(input.params.url)?.[1];
  expect(approvalId).toBeTruthy();
  const state = result.requestState as string;

  // Still pending: input_required again, the same approval.
  const again = await call("alice", "deploy v1", { requestState: state, inputResponses: { "countersign/approval": { action: "accept" } } });
  expect(again.msg.result?.resultType).toBe("input_required");
  expect(JSON.stringify(again.msg.result?.inputRequests)).toContain(approvalId!);
  expect(await upstreamCalls("deploy v1")).toBe(0);

  expect((await gw.approvals!.service.vote({ requestId: decodeURIComponent(approvalId!), approver: { email: "bob@example.com" }, decision: "approve", via: "cli" })).kind).toBe("decided");
  const approved = await call("alice", "deploy v1", { requestState: state, inputResponses: { "countersign/approval": { action: "accept" } } });
  expect(approved.msg.result).toMatchObject({ resultType: "complete", content: [{ type: "text", text: "Echo: deploy v1" }] });
  expect(await upstreamCalls("deploy v1")).toBe(1);
  // What went upstream carried none of the round-trip fields.
  const forwarded = await gw.db.message.findFirstOrThrow({ where: { method: "tools/call", direction: "in", payload: { path: ["params", "arguments", "message"], equals: "deploy v1" } }, orderBy: { id: "desc" } });
  expect(JSON.stringify(forwarded.payload)).not.toContain("requestState");

  // The same state again: its approval's one forward is used.
  const replay = await call("alice", "deploy v1", { requestState: state });
  expect(replay.reply.status).toBe(409);
  expect(replay.msg.error).toMatchObject({ code: -32602, data: { code: "CS_ERR_REQUEST_STATE_REPLAYED" } });
  await rejected("request_state_replayed");
  expect(await upstreamCalls("deploy v1")).toBe(1);
});

it("refuses a tampered state, and one sealed for other arguments or another caller, and records it", async () => {
  const first = await call("alice", "deploy v2");
  const state = first.msg.result!.requestState as string;
  const [payload, mac] = state.split(".") as [string, string];
  const body = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as Record<string, unknown>;
  const forged = `${Buffer.from(JSON.stringify({ ...body, exp: Date.now() + 86_400_000 * 365 })).toString("base64url")}.${mac}`;
  for (const [who, message, s] of [
    ["alice", "deploy v2", forged],
    ["alice", "deploy v2", `${payload}.${mac.slice(0, -2)}AA`],
    ["alice", "deploy v3", state],
    ["bob", "deploy v2", state],
  ] as const) {
    const r = await call(who, message, { requestState: s });
    expect(r.reply.status).toBe(400);
    expect(r.msg.error).toMatchObject({ code: -32602, data: { code: "CS_ERR_REQUEST_STATE_INVALID" } });
  }
  await rejected("request_state_invalid");
  expect(await upstreamCalls("deploy v2")).toBe(0);
});

it("a caller that cannot follow a URL elicitation is told which capability the held call needs, before any approval request is opened", async () => {
  const before = await gw.db.approvalRequest.count();
  const r = await call("alice", "deploy v4", {}, {});
  expect(r.reply.status).toBe(400);
  expect(r.msg.error).toMatchObject({ code: -32021, data: { code: "CS_ERR_MISSING_CLIENT_CAPABILITY", requiredCapabilities: { elicitation: { url: {} } } } });
  await rejected("missing_client_capability");
  // Nobody is asked to approve a call whose caller could never follow the approval.
  expect(await gw.db.approvalRequest.count()).toBe(before);
  expect(await upstreamCalls("deploy v4")).toBe(0);
});
