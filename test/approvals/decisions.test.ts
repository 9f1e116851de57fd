// The rules of decision, through real Bolt and real signed interactivity requests: approve, deny
// with a reason (modal), self-approval refused, non-approvers refused with an ephemeral message,
// N-of-M, Slack group membership, the requester's DM and follow-up.
import { afterAll, beforeAll, expect, it } from "vitest";
import { CHANNEL, startStack, until, USERS, type Stack } from "./harness.js";

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

it("posts one message, DMs the requester with its permalink, and an approval updates both", async () => {
  const { request, created } = await s.request();
  expect(created).toBe(true);
  const post = await s.slack.waitFor("chat.postMessage", (c) => c.args.channel === CHANNEL && JSON.stringify(c.args.blocks).includes(request.id));
  const blocks = JSON.stringify(post.args.blocks);
  expect(blocks).toContain("countersign_approve");
  expect(blocks).toContain("[MASKED:password]");
  expect(blocks).toContain("sql-writes-need-approval");
  expect(blocks).toContain("OPS-1234");
  const dm = await s.slack.waitFor("chat.postMessage", (c) => String(c.args.channel).startsWith("D") && String(c.args.text).includes("paused waiting"));
  await until(async () => (await s.service.store.get(request.id))?.slack.permalink, "the permalink stored");
  const stored = (await s.service.store.get(request.id))!;
  expect(JSON.stringify(dm.args.blocks)).toContain(stored.slack.permalink!);

  const waiting = s.service.waitForDecision(request.id, undefined, 10_000);
  const res = await s.click("bob", "approve", request.id);
  expect(res.status).toBe(200);
  const decided = await waiting;
  expect(decided.status).toBe("approved");
  expect(decided.decidedBy).toBe("bob@example.com");

  const update = await s.slack.waitFor("chat.update", (c) => c.args.ts === stored.slack.ts);
  const updated = JSON.stringify(update.args.blocks);
  expect(updated).not.toContain("countersign_approve");
  expect(updated).toContain("Approved");
  expect(updated).toContain("by <@UBOB>");
  expect(updated).not.toContain("expires");
  await s.slack.waitFor("chat.postMessage", (c) => c.args.channel === stored.slack.requesterDmChannel && String(c.args.text).includes("approved"));

  expect(await s.service.claimForward(request.id)).toBe(true);
  expect(await s.service.claimForward(request.id)).toBe(false);
  // Two-phase: "forwarded" is evidence only once the send resolved.
  await s.service.confirmForward(request.id);
  const reasons = (await eventsOf(request.id)).map((e) => e.reason);
  expect(reasons).toEqual(expect.arrayContaining(["requested", "notified", "vote", "approved", "forwarded"]));
});

it("Deny opens a modal; its submission denies with the reason, shown to everyone", async () => {
  const { request } = await s.request();
  await until(async () => (await s.service.store.get(request.id))?.slack.ts, "the message posted");
  await s.click("carol", "deny", request.id);
  const open = await s.slack.waitFor("views.open", (c) => JSON.stringify(c.args.view).includes(request.id));
  expect((open.args.view as { callback_id: string }).callback_id).toBe("countersign_deny");
  const res = await s.submitDeny("carol", request.id, "Not during the freeze");
  expect(res.status).toBe(200);
  const r = await s.service.waitForDecision(request.id, undefined, 10_000);
  expect(r).toMatchObject({ status: "denied", decidedBy: "carol@example.com", decisionReason: "Not during the freeze" });
  const update = await s.slack.waitFor("chat.update", (c) => c.args.ts === r.slack.ts);
  expect(JSON.stringify(update.args.blocks)).toContain("Not during the freeze");
  expect(await s.service.claimForward(request.id)).toBe(false);
});

it("an empty deny reason is refused in the modal and decides nothing", async () => {
  const { request } = await s.request();
  const res = await s.submitDeny("carol", request.id, "   ");
  expect(res.status).toBe(200);
  expect(await res.json()).toMatchObject({ response_action: "errors" });
  expect((await s.service.store.get(request.id))!.status).toBe("pending");
});

it("the requester cannot approve their own call, though in the approver group", async () => {
  const { request } = await s.request();
  await until(async () => (await s.service.store.get(request.id))?.slack.ts, "the message posted");
  expect((await s.click("alice", "approve", request.id)).status).toBe(200);
  const eph = await s.slack.waitFor("chat.postEphemeral", (c) => c.args.user === USERS.alice.id && JSON.stringify(c.args.blocks).includes(request.id));
  expect(String(eph.args.text)).toContain("four-eyes");
  expect((await s.service.store.get(request.id))!.status).toBe("pending");
  expect((await eventsOf(request.id)).map((e) => e.reason)).toContain("self_approval_refused");
  // Her Deny does not open the modal either.
  await s.click("alice", "deny", request.id);
  await until(() => s.slack.callsOf("chat.postEphemeral").filter((c) => c.args.user === USERS.alice.id && JSON.stringify(c.args.blocks).includes(request.id)).length >= 2, "a second ephemeral");
  expect(s.slack.callsOf("views.open").some((c) => JSON.stringify(c.args.view).includes(request.id))).toBe(false);
});

it("a non-approver's click is refused with an ephemeral explanation and recorded", async () => {
  const { request } = await s.request();
  await s.click("eve", "approve", request.id);
  const eph = await s.slack.waitFor("chat.postEphemeral", (c) => c.args.user === USERS.eve.id && JSON.stringify(c.args.blocks).includes(request.id));
  expect(String(eph.args.text)).toContain("not in the approver group");
  await s.click("nomail", "approve", request.id);
  const eph2 = await s.slack.waitFor("chat.postEphemeral", (c) => c.args.user === USERS.nomail.id);
  expect(String(eph2.args.text)).toContain("no e-mail");
  expect((await s.service.store.get(request.id))!.status).toBe("pending");
  const refused = (await eventsOf(request.id)).filter((e) => e.reason === "unauthorized_click");
  expect(refused.map((e) => e.subject)).toEqual(["eve@example.com", "slack:unomail"]);
});

it("a member of the approver group's Slack user group may decide (looked up live)", async () => {
  const { request } = await s.request();
  await s.click("dave", "approve", request.id);
  const r = await s.service.waitForDecision(request.id, undefined, 10_000);
  expect(r).toMatchObject({ status: "approved", decidedBy: "dave@example.com" });
  expect(s.slack.callsOf("usergroups.users.list").some((c) => c.args.usergroup === "S0ONCALL")).toBe(true);
});

it("N-of-M: two distinct approvers are needed; the same approver twice counts once", async () => {
  const { request } = await s.request({ approvalsNeeded: 2 });
  await until(async () => (await s.service.store.get(request.id))?.slack.ts, "the message posted");
  await s.click("bob", "approve", request.id);
  await s.slack.waitFor("chat.postEphemeral", (c) => c.args.user === USERS.bob.id && String(c.args.text).includes("1 of 2"));
  await s.click("bob", "approve", request.id);
  await s.slack.waitFor("chat.postEphemeral", (c) => c.args.user === USERS.bob.id && String(c.args.text).includes("already voted"));
  expect((await s.service.store.get(request.id))!).toMatchObject({ status: "pending", approveCount: 1 });
  // The message shows the vote so far.
  const progress = await s.slack.waitFor("chat.update", (c) => JSON.stringify(c.args.blocks).includes("*1 of 2* approvals: <@UBOB>"));
  expect(JSON.stringify(progress.args.blocks)).toContain("countersign_approve");
  await s.click("carol", "approve", request.id);
  const r = await s.service.waitForDecision(request.id, undefined, 10_000);
  expect(r).toMatchObject({ status: "approved", approveCount: 2, decidedBy: "carol@example.com" });
  expect((await s.service.store.votes(request.id)).map((v) => v.approver)).toEqual(["bob@example.com", "carol@example.com"]);
});

it("one Deny ends a request that needed several approvals", async () => {
  const { request } = await s.request({ approvalsNeeded: 3 });
  await s.click("bob", "approve", request.id);
  await until(async () => (await s.service.store.get(request.id))?.approveCount === 1, "the first vote");
  await s.submitDeny("carol", request.id, "no");
  const r = await s.service.waitForDecision(request.id, undefined, 10_000);
  expect(r.status).toBe("denied");
});

it("an identical retry gets the same request (and its decision); a different call gets a new one", async () => {
  const args = { sql: "DROP TABLE audit", n: 1 };
  const first = await s.request({ arguments: args });
  const again = await s.request({ arguments: { n: 1, sql: "DROP TABLE audit" } });
  expect(again.created).toBe(false);
  expect(again.request.id).toBe(first.request.id);
  const other = await s.request({ arguments: { sql: "DROP TABLE audit", n: 2 } });
  expect(other.request.id).not.toBe(first.request.id);
  await s.submitDeny("bob", first.request.id, "never");
  await s.service.waitForDecision(first.request.id, undefined, 10_000);
  const retry = await s.request({ arguments: args });
  expect(retry).toMatchObject({ created: false, request: { id: first.request.id, status: "denied" } });
  // One Slack message for the request, however often it was retried.
  await until(async () => (await s.service.store.get(first.request.id))?.slack.ts, "posted");
  expect(s.slack.callsOf("chat.postMessage").filter((c) => c.args.channel === CHANNEL && JSON.stringify(c.args.blocks).includes(first.request.id) && !c.args.thread_ts)).toHaveLength(1);
});
