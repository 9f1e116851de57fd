// Exactly one decision whatever happens: 100 concurrent clicks, Slack's retries, replayed and
// forged requests, two service instances (replicas) on one database. Plus expiry, Slack failing
// then recovering, and reminders/escalation.
import { openStore } from "../../gateway/store/pools.js";
import { afterAll, beforeAll, expect, it } from "vitest";
import { pino } from "pino";
import { ApprovalService } from "../../gateway/approvals/service.js";
import { EmailDirectory } from "../../gateway/approvals/directory.js";
import { baseRequest, blockActionPayload, CHANNEL, newActionTs, sign, SIGNING_SECRET, startStack, until, USERS, type Stack } from "./harness.js";

let s: Stack;
beforeAll(async () => {
  s = await startStack({ approvals: { reminderEveryMs: 1500, escalation: { afterMs: 2000, group: "managers" } } });
});
afterAll(async () => {
  await s?.stop();
});

it("100 concurrent clicks by several approvers: one decision, one forward claim", async () => {
  const { request } = await s.request();
  await until(async () => (await s.service.store.get(request.id))?.slack.ts, "posted");
  const clickers = ["bob", "carol", "dave"] as const;
  const responses = await Promise.all(Array.from({ length: 100 }, (_, i) => s.click(clickers[i % 3]!, i % 10 === 9 ? "deny" : "approve", request.id)));
  expect(responses.every((r) => r.status === 200)).toBe(true);
  const r = await s.service.waitForDecision(request.id, undefined, 10_000);
  expect(r.status).toBe("approved");
  const claims = await Promise.all(Array.from({ length: 20 }, () => s.service.claimForward(request.id)));
  expect(claims.filter(Boolean)).toHaveLength(1);
  expect(await s.service.store.votes(request.id)).toHaveLength(1);
  await s.recorder.drain();
  const decided = await s.prisma.event.count({ where: { type: "approval", reason: { in: ["approved", "denied"] }, detail: { path: ["requestId"], equals: request.id } } });
  expect(decided).toBe(1);
});

it("Slack's retry of a processed action and a replayed payload are acknowledged and change nothing", async () => {
  const { request } = await s.request({ approvalsNeeded: 2 });
  const actionTs = newActionTs();
  expect((await s.click("bob", "approve", request.id, { actionTs })).status).toBe(200);
  await until(async () => (await s.service.store.get(request.id))?.approveCount === 1, "first vote");
  // Slack's retry: same action, new delivery headers.
  expect((await s.click("bob", "approve", request.id, { actionTs, retryNum: 1 })).status).toBe(200);
  // A replay of the very same signed request.
  const body = new URLSearchParams({ payload: JSON.stringify(blockActionPayload("bob", "approve", request.id, actionTs)) }).toString();
  const ts = String(Math.floor(Date.now() / 1000));
  const headers = { "content-type": "application/x-www-form-urlencoded", "x-slack-request-timestamp": ts, "x-slack-signature": sign(SIGNING_SECRET, ts, body) };
  expect((await s.post(body, headers)).status).toBe(200);
  expect((await s.post(body, headers)).status).toBe(200);
  await s.recorder.drain();
  const r = (await s.service.store.get(request.id))!;
  expect(r).toMatchObject({ status: "pending", approveCount: 1 });
  expect(await s.service.store.votes(request.id)).toHaveLength(1);
  // No "already voted" noise for a retried delivery of the same click.
  expect(s.slack.callsOf("chat.postEphemeral").filter((c) => c.args.user === USERS.bob.id && String(c.args.text).includes("already voted") && JSON.stringify(c.args.blocks).includes(request.id))).toHaveLength(0);
  await s.click("carol", "approve", request.id);
  expect((await s.service.waitForDecision(request.id, undefined, 10_000)).status).toBe("approved");
});

it("forged signature, stale and future timestamps, wrong workspace: 401, nothing changes, refusals aggregated", async () => {
  const { request } = await s.request();
  const before = await s.prisma.event.count({ where: { reason: "slack_request_refused" } });
  expect((await s.click("bob", "approve", request.id, { secret: "not-the-secret" })).status).toBe(401);
  expect((await s.click("bob", "approve", request.id, { skewSeconds: -330 })).status).toBe(401);
  expect((await s.click("bob", "approve", request.id, { skewSeconds: 90 })).status).toBe(401);
  expect((await s.click("bob", "approve", request.id, { team: "TOTHER" })).status).toBe(401);
  expect((await s.post("payload=%7B%7D", { "content-type": "application/x-www-form-urlencoded" })).status).toBe(401);
  // Within the accepted window both ways.
  const many = await Promise.all(Array.from({ length: 20 }, () => s.click("bob", "approve", request.id, { secret: "forged" })));
  expect(new Set(many.map((r) => r.status))).toEqual(new Set([401]));
  expect((await s.service.store.get(request.id))!.status).toBe("pending");
  expect(s.routes!.refused).toMatchObject({ bad_signature: 21, stale_timestamp: 1, future_timestamp: 1, wrong_team: 1, missing_signature: 1 });
  s.routes!.flushRefusals();
  await s.recorder.drain();
  const rows = await s.prisma.event.findMany({ where: { reason: "slack_request_refused" }, orderBy: { id: "asc" } });
  expect(rows.length - before).toBe(1);
  expect((rows.at(-1)!.detail as { counts: Record<string, number> }).counts).toMatchObject({ bad_signature: 21 });
  // A timestamp 50 s ahead is still inside the window.
  expect((await s.click("bob", "approve", request.id, { skewSeconds: 50 })).status).toBe(200);
  await s.service.waitForDecision(request.id, undefined, 10_000);
});

it("expiry denies with reason expired, updates the message and tells the requester", async () => {
  const { request } = await s.request({ timeoutMs: 1200 });
  await until(async () => (await s.service.store.get(request.id))?.slack.ts, "posted");
  const r = await s.service.waitForDecision(request.id, undefined, 10_000);
  expect(r).toMatchObject({ status: "expired", decisionReason: "expired", decidedBy: null });
  const update = await s.slack.waitFor("chat.update", (c) => c.args.ts === r.slack.ts);
  expect(JSON.stringify(update.args.blocks)).toContain("Expired");
  expect(JSON.stringify(update.args.blocks)).not.toContain("countersign_approve");
  await s.slack.waitFor("chat.postMessage", (c) => c.args.channel === r.slack.requesterDmChannel && String(c.args.text).includes("expired"));
  // A click after expiry changes nothing.
  await s.click("bob", "approve", request.id);
  await s.slack.waitFor("chat.postEphemeral", (c) => c.args.user === USERS.bob.id && String(c.args.text).includes("already expired"));
  expect(await s.service.claimForward(request.id)).toBe(false);
});

it("reminds the channel in the thread, then escalates to a second group whose members may decide", async () => {
  const { request } = await s.request();
  const posted = await until(async () => (await s.service.store.get(request.id))?.slack.ts, "posted");
  await s.slack.waitFor("chat.postMessage", (c) => c.args.thread_ts === posted && String(c.args.text).startsWith("Reminder"));
  await s.slack.waitFor("chat.postMessage", (c) => c.args.thread_ts === posted && String(c.args.text).startsWith("Escalated"), 10_000);
  // Eve is only in the escalation group.
  await s.click("eve", "approve", request.id);
  const r = await s.service.waitForDecision(request.id, undefined, 10_000);
  expect(r).toMatchObject({ status: "approved", decidedBy: "eve@example.com", escalationGroup: "managers" });
});

it("Slack failing then recovering: the post is retried with back-off and the failure is visible", async () => {
  s.slack.failNext("chat.postMessage", 2, "internal_error");
  const { request } = await s.request();
  const posted = await until(async () => (await s.service.store.get(request.id))?.slack.ts, "posted after failures");
  expect(posted).toBeTruthy();
  const r = (await s.service.store.get(request.id))!;
  // Other work may take one of the injected failures (a DM follow-up of the previous test).
  await s.recorder.drain();
  const failures = await s.prisma.event.count({ where: { reason: "notify_failed", detail: { path: ["requestId"], equals: request.id } } });
  expect(failures).toBeGreaterThanOrEqual(1);
  expect(r.slack).toMatchObject({ state: "posted", attempts: failures + 1 });
  expect(s.service.status().slack.failures).toBeGreaterThanOrEqual(failures);
  expect(s.slack.callsOf("chat.postMessage").filter((c) => c.args.channel === CHANNEL && JSON.stringify(c.args.blocks).includes(request.id) && !c.args.thread_ts)).toHaveLength(failures + 1);
  // The update after a decision is retried too.
  s.slack.failNext("chat.update", 1, "service_unavailable", 503);
  await s.click("bob", "approve", request.id);
  await until(async () => (await s.service.store.get(request.id))?.status === "approved", "approved");
  await until(() => s.slack.callsOf("chat.update").filter((c) => c.args.ts === posted).length >= 2, "update retried");
  await until(async () => (await s.prisma.approvalRequest.findUnique({ where: { id: request.id } }))?.slackDecisionShownAt, "decision shown");
  expect(s.service.status().slack.healthy).toBe(true);
});

it("two service instances on one database: a decision taken on one releases the waiter on the other (NOTIFY)", async () => {
  // Another replica: a store (pools and LISTEN hub) of its own.
  const otherStore = openStore(s.db.url, { log: pino({ level: "silent" }) });
  const other = new ApprovalService({
    pool: otherStore.background,
    hub: otherStore.listen,
    recorder: s.recorder,
    directory: new EmailDirectory({ oncall: { emails: ["bob@example.com"], slackUserGroups: [] } }),
    log: pino({ level: "silent" }),
    // Polling effectively off: only the notification can release the waiter in time.
    pollIntervalMs: 60_000,
    sweepIntervalMs: 60_000,
  });
  await other.start();
  try {
    expect(other.status().listening).toBe(true);
    const { request } = await other.request(baseRequest(s.sessionId));
    const waiting = other.waitForDecision(request.id, undefined, 20_000);
    const started = Date.now();
    await s.click("bob", "approve", request.id);
    const r = await waiting;
    expect(r.status).toBe("approved");
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(await other.claimForward(request.id)).toBe(true);
    expect(await s.service.claimForward(request.id)).toBe(false);
  } finally {
    await other.stop();
    await otherStore.close();
  }
});

it("a channel message is posted to the channel of the approver group", async () => {
  expect(s.slack.callsOf("chat.postMessage").some((c) => c.args.channel === CHANNEL)).toBe(true);
});
