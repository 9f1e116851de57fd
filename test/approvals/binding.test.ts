// An approval releases only the call it was asked for (caller, connection, method, tool or URI,
// arguments, rule and approver group), and the four-eyes rule holds by identity: a vote that
// cannot be shown to come from someone other than the requester is refused, with a way to decide
// instead, and recorded. Real Bolt, real signed Slack payloads, a real Postgres.
import { afterAll, beforeAll, expect, it } from "vitest";
import { startStack, until, USERS, type Stack } from "./harness.js";

let s: Stack;
beforeAll(async () => {
  s = await startStack();
});
afterAll(async () => {
  await s?.stop();
});

const eventsOf = async (requestId: string) => {
  await s.recorder.drain();
  const rows = await s.prisma.event.findMany({ where: { type: "approval" }, orderBy: { id: "asc" } });
  return rows.filter((r) => (r.detail as { requestId?: string } | null)?.requestId === requestId);
};

it("approving prompts/get deploy does not release tools/call deploy, nor another rule's or group's hold", async () => {
  const args = { arguments: { env: "prod" }, maskedArguments: { env: "prod" } };
  const { request: prompt } = await s.request({ ...args, method: "prompts/get", tool: "deploy" });
  await s.click("bob", "approve", prompt.id);
  expect((await s.service.waitForDecision(prompt.id, undefined, 10_000)).status).toBe("approved");

  // The same caller, connection, name and arguments, through another method: a new, pending request.
  const tool = await s.request({ ...args, method: "tools/call", tool: "deploy" });
  expect(tool.created).toBe(true);
  expect(tool.request.id).not.toBe(prompt.id);
  expect(tool.request.status).toBe("pending");
  // Another rule, or another approver group, on the very same call: new requests too.
  const otherRule = await s.request({ ...args, method: "prompts/get", tool: "deploy", rule: { id: "deploys-need-dba" } });
  expect(otherRule.created).toBe(true);
  const otherGroup = await s.request({ ...args, method: "prompts/get", tool: "deploy", approverGroup: "managers" });
  expect(otherGroup.created).toBe(true);
  // The identical call gets its approval, once.
  const again = await s.request({ ...args, method: "prompts/get", tool: "deploy" });
  expect(again).toMatchObject({ created: false, request: { id: prompt.id, status: "approved" } });
  expect(await s.service.claimForward(prompt.id)).toBe(true);
  expect(await s.service.claimForward(tool.request.id)).toBe(false);
  const rows = await s.prisma.$queryRawUnsafe<Array<{ method: string; status: string; forwardedAt: Date | null }>>(
    `SELECT method, status, "forwardedAt" FROM approval_requests WHERE id = ANY($1::text[]) ORDER BY "createdAt"`,
    [prompt.id, tool.request.id],
  );
  expect(rows.map((r) => [r.method, r.status, r.forwardedAt !== null])).toEqual([
    ["prompts/get", "approved", true],
    ["tools/call", "pending", false],
  ]);
});

it("a Slack vote on a request whose requester's token carries no e-mail is refused, explained and recorded", async () => {
  // Alice's token has no e-mail claim: her Slack account (alice@example.com) may be her.
  const noMail = { subject: "alice", issuer: "https://idp.example.com", kind: "user" as const, groups: ["dev"] };
  const { request } = await s.request({ requester: noMail });
  await until(async () => (await s.service.store.get(request.id))?.slack.ts, "the message posted");
  for (const who of ["alice", "bob"] as const) {
    expect((await s.click(who, "approve", request.id)).status).toBe(200);
    const eph = await s.slack.waitFor("chat.postEphemeral", (c) => c.args.user === USERS[who].id && JSON.stringify(c.args.blocks).includes(request.id));
    expect(String(eph.args.text)).toContain("not counted");
    expect(String(eph.args.text)).toContain(`countersign approvals approve ${request.id}`);
  }
  expect((await s.service.store.get(request.id))!).toMatchObject({ status: "pending", approveCount: 0 });
  expect(await s.service.store.votes(request.id)).toEqual([]);
  const refused = (await eventsOf(request.id)).filter((e) => e.reason === "approver_unproven");
  expect(refused.map((e) => e.subject)).toEqual(["alice@example.com", "bob@example.com"]);

  // A token of the requester's issuer with another subject is someone else: that vote counts.
  const viaApi = await s.service.vote({ requestId: request.id, approver: { email: "bob@example.com", subject: "bob", issuer: "https://idp.example.com" }, decision: "approve", via: "api" });
  expect(viaApi.kind).toBe("decided");
  // And her own token never does, e-mail or not.
  const { request: second } = await s.request({ requester: noMail, arguments: { n: 2 } });
  const own = await s.service.vote({ requestId: second.id, approver: { email: "alice@example.com", subject: "alice", issuer: "https://idp.example.com" }, decision: "approve", via: "api" });
  expect(own.kind).toBe("self_approval_refused");
});

it("a requester with an e-mail is still refused under another spelling of it, and approved by someone else", async () => {
  const { request } = await s.request({ requester: { subject: "u-123", issuer: "https://idp.example.com", kind: "user", email: "Alice@Example.com", groups: [] } });
  const self = await s.service.vote({ requestId: request.id, approver: { email: " alice@example.COM " }, decision: "approve", via: "slack" });
  expect(self.kind).toBe("self_approval_refused");
  await s.click("bob", "approve", request.id);
  expect((await s.service.waitForDecision(request.id, undefined, 10_000)).decidedBy).toBe("bob@example.com");
});
