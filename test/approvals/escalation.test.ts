// Escalation to a group with a channel of its own: the full request, with working buttons, is
// posted in that channel (its members may now decide); the original message notes the escalation;
// the decision, taken from the escalation channel, updates both messages. Real Bolt, signed
// payloads, the fake Slack.
import { afterAll, beforeAll, expect, it } from "vitest";
import { CHANNEL, startStack, until, type Stack } from "./harness.js";

const MANAGERS_CHANNEL = "C0MANAGERS";
let s: Stack;

beforeAll(async () => {
  s = await startStack({
    approvals: {
      groups: {
        oncall: { emails: ["alice@example.com", "bob@example.com", "carol@example.com"], slackUserGroups: ["S0ONCALL"] },
        managers: { emails: ["eve@example.com"], slackUserGroups: ["S0MGRS"], channel: MANAGERS_CHANNEL },
      },
      escalation: { afterMs: 2000, group: "managers" },
    },
  });
}, 60_000);
afterAll(async () => {
  await s?.stop();
});

type Call = { args: Record<string, unknown> };
const blocksOf = (c: Call) => JSON.stringify(c.args.blocks ?? []);
const hasButtons = (c: Call) => blocksOf(c).includes("countersign_approve") && blocksOf(c).includes("countersign_deny");

it("posts the full request with working buttons in the escalation group's channel and notes it on the original", async () => {
  const { request } = await s.request({ approvalsNeeded: 2 });
  const original = await until(async () => (await s.service.store.get(request.id))?.slack.ts, "the original message");

  // The copy in the managers' channel: who, what (masked), why, and the buttons.
  const copy = await s.slack.waitFor("chat.postMessage", (c) => c.args.channel === MANAGERS_CHANNEL && blocksOf(c).includes(request.id), 10_000);
  expect(copy.args.thread_ts).toBeUndefined();
  expect(hasButtons(copy)).toBe(true);
  const blocks = blocksOf(copy);
  for (const part of ["Escalated to managers", "<!subteam^S0MGRS>", "alice@example.com", "`query`", "[MASKED:password]", "sql-writes-need-approval", "Quarterly cleanup"]) expect(blocks).toContain(part);
  expect(String(copy.args.text)).toContain("Escalated to managers");

  // The original: a note in its thread naming the channel, and the message itself names the group.
  const note = await s.slack.waitFor("chat.postMessage", (c) => c.args.channel === CHANNEL && c.args.thread_ts === original && String(c.args.text).startsWith("Escalated"));
  expect(blocksOf(note)).toContain(`<#${MANAGERS_CHANNEL}>`);
  const updated = await s.slack.waitFor("chat.update", (c) => c.args.ts === original && blocksOf(c).includes("escalated to *managers*"));
  expect(hasButtons(updated)).toBe(true);

  // The copy's reference is recorded, so the decision reaches it.
  const notified = await until(() => s.prisma.event.findFirst({ where: { reason: "notified", detail: { path: ["escalation"], equals: true } } }), "the copy's recorded reference");
  expect(notified?.detail).toMatchObject({ requestId: request.id, channel: MANAGERS_CHANNEL, escalation: true, group: "managers" });

  // A member of the escalation group only decides from the copy; a second approval from on-call completes it.
  const copyTs = (notified!.detail as { ts: string }).ts;
  expect(s.slack.message(MANAGERS_CHANNEL, copyTs)).toBeTruthy();
  await s.click("eve", "approve", request.id);
  await s.slack.waitFor("chat.update", (c) => c.args.channel === MANAGERS_CHANNEL && c.args.ts === copyTs && blocksOf(c).includes("<@UEVE>"));
  await s.click("bob", "approve", request.id);
  const r = await s.service.waitForDecision(request.id, undefined, 10_000);
  expect(r).toMatchObject({ status: "approved", escalationGroup: "managers" });

  // Both messages show the outcome, without buttons.
  const doneCopy = await s.slack.waitFor("chat.update", (c) => c.args.channel === MANAGERS_CHANNEL && c.args.ts === copyTs && blocksOf(c).includes("Approved"));
  expect(hasButtons(doneCopy)).toBe(false);
  const doneOriginal = await s.slack.waitFor("chat.update", (c) => c.args.ts === original && blocksOf(c).includes("Approved"));
  expect(hasButtons(doneOriginal)).toBe(false);
}, 60_000);
