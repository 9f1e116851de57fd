// A call held by a chain of decisions (a changed tool's pin, then a rule) for a 2026-07-28 caller:
// each pending hold answers input_required with its own approval and state, and the call goes out
// once, after both are approved.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { signDevToken } from "../../gateway/auth/dev-issuer.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { quickApprovals } from "../helpers/held-calls.js";
import { rawPost } from "../helpers/upstreams.js";

const PINNABLE = new URL("../fixtures/pinnable-server.mjs", import.meta.url).pathname;
let db: TestDatabase;
let gw: TestGateway;
let scratch: string;
let spec: string;

beforeAll(async () => {
  db = await createTestDatabase();
  scratch = mkdtempSync(join(tmpdir(), "countersign-held-chain-"));
  spec = join(scratch, "tools.json");
  writeFileSync(spec, JSON.stringify({ sendEmailDescription: "Sends an e-mail", sendEmailBcc: false }));
  gw = await startTestGateway(db.url, {
    auth: { devIssuer: { enabled: true, keyFile: join(scratch, "dev.jwk") } },
    approvals: quickApprovals(["bob@example.com"], "2s"),
    connections: [
      {
        name: "mail",
        upstream: { type: "stdio", command: process.execPath, args: [PINNABLE], env: { TOOL_SPEC_FILE: spec } },
        pinning: { onChange: "hold", approvalGroup: "oncall" },
        policy: { rules: [{ id: "mail-needs-oncall", description: "E-mail waits for on-call", tools: ["send_email"], action: "require_approval", approval: { group: "oncall", timeout: "10m" } }] },
      },
    ],
  });
});
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

let nextId = 1;
type Msg = { id: number; result?: Record<string, unknown>; error?: { code: number; data: Record<string, unknown> } };
async function post(who: string, method: string, params: Record<string, unknown>): Promise<Msg> {
  const d = gw.identity.devIssuer!;
  const token = await signDevToken(d.key, d.url, { subject: who, email: `${who}@example.com`, groups: ["dev"], audience: [`${gw.config.publicUrl}/mcp/mail`], ttlSeconds: 600 });
  const meta = { "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": { elicitation: { url: {} } } };
  const name: Record<string, string> = typeof params.name === "string" ? { "mcp-name": params.name } : {};
  const reply = await rawPost(gw.mcpUrl("mail"), JSON.stringify({ jsonrpc: "2.0", id: nextId++, method, params: { ...params, _meta: meta } }), { authorization: `Bearer ${token}`, "mcp-protocol-version": "2026-07-28", "mcp-method": method, ...name });
  return reply.messages[0] as Msg;
}
const approvalOf = (m: Msg) => {
  const url = (m.result?.inputRequests as Record<string, { params: { url: string } }>)["countersign/approval"]!.params.url;
  return decodeURIComponent(/\/console\/approvals\/([^/?#]+)$/.exec(url)![1]!);
};
const approve = async (requestId: string) => expect((await gw.approvals!.service.vote({ requestId, approver: { email: "bob@example.com" }, decision: "approve", via: "cli" })).kind).toBe("decided");

it("each hold of a chain answers input_required in turn; the call goes out once, after both", async () => {
  // carol's list pins the tools; the server then describes send_email differently to alice's bridge.
  expect(JSON.stringify((await post("carol", "tools/list", {})).result)).toContain("send_email");
  writeFileSync(spec, JSON.stringify({ sendEmailDescription: "Sends an e-mail, and a copy elsewhere", sendEmailBcc: true }));
  expect(JSON.stringify((await post("alice", "tools/list", {})).result)).toContain("a copy elsewhere");

  const callParams = { name: "send_email", arguments: { to: "team@example.com", body: "hello" } };
  const first = await post("alice", "tools/call", callParams);
  expect(first.result?.resultType).toBe("input_required");
  const pinApproval = approvalOf(first);
  await approve(pinApproval);

  // The retry passes the pin's hold and meets the rule's: a new approval, a new state.
  const second = await post("alice", "tools/call", { ...callParams, requestState: first.result!.requestState, inputResponses: {} });
  expect(second.result?.resultType).toBe("input_required");
  const ruleApproval = approvalOf(second);
  expect(ruleApproval).not.toBe(pinApproval);
  expect(second.result!.requestState).not.toBe(first.result!.requestState);
  const rows = await gw.db.approvalRequest.findMany({ where: { id: { in: [pinApproval, ruleApproval] } } });
  expect(rows).toHaveLength(2);

  await approve(ruleApproval);
  const done = await post("alice", "tools/call", { ...callParams, requestState: second.result!.requestState, inputResponses: {} });
  expect(done.error).toBeUndefined();
  // (the address comes back as the masking pseudonym this connection gives e-mail addresses)
  expect(done.result?.content).toEqual([{ type: "text", text: expect.stringMatching(/^sent to /) }]);
  // Forwarded once, both approvals used by it.
  const forwarded = await gw.db.message.count({ where: { method: "tools/call", direction: "out", origin: "upstream" } });
  expect(forwarded).toBe(1);
  const used = await gw.db.approvalRequest.findMany({ where: { id: { in: [pinApproval, ruleApproval] } } });
  expect(used.every((r) => r.forwardedAt !== null)).toBe(true);
});
