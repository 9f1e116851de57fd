// The approval messages render to Block Kit that type-checks against @slack/types (the rendered
// JSON is written into a TypeScript file as typed constants and compiled with tsc), and that stays
// within Slack's documented limits (test/helpers/blockkit-limits.ts) whatever the input: 300
// groups, 500 keys, 200 KB values, strings of <&>, mentions and links.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect, it } from "vitest";
import type { ApprovalRequest } from "../../gateway/approvals/types.js";
import { renderDenyModal, renderDetailsModal, renderEphemeral, renderReminder, renderRequesterDm, renderRequesterFollowUp, renderRequestMessage } from "../../bot/render.js";
import { ROOT } from "../helpers/postgres.js";
import { assertValidMessage, assertValidView } from "../helpers/blockkit-limits.js";

export function sampleRequest(over: Partial<ApprovalRequest> = {}): ApprovalRequest {
  return {
    id: "apr_3kTq9ZbW1xYc",
    sessionId: "sess-1",
    connection: "prod-db",
    method: "tools/call",
    tool: "query",
    argumentsHash: "0".repeat(64),
    maskedArguments: { sql: "DELETE FROM orders WHERE created_at < now() - interval '1 year'", password: "[MASKED:password]", rows: "x".repeat(900) },
    requester: { subject: "alice", issuer: "https://idp.example.com", kind: "user", email: "alice@example.com", name: "Alice <Requester> & co", groups: ["dev", "oncall"] },
    ruleId: "sql-writes-need-approval",
    ruleDescription: "Writes to the production database need an on-call approval",
    approverGroup: "oncall",
    approvalsNeeded: 2,
    approveCount: 1,
    justification: "Quarterly cleanup, ticket OPS-1234 \"urgent\"",
    createdAt: new Date("2026-11-24T09:00:00Z"),
    expiresAt: new Date("2026-11-24T09:15:00Z"),
    status: "pending",
    decidedAt: null,
    decidedBy: null,
    decisionReason: null,
    forwardedAt: null,
    slack: { channel: "C0APPROVALS", ts: "1.000001", permalink: "https://example.slack.com/archives/C0APPROVALS/p1000001", requesterDmChannel: "DUALICE", requesterDmTs: "1.000002", state: "posted", attempts: 1, error: null },
    reminderCount: 0,
    escalatedAt: null,
    escalationGroup: null,
    ...over,
  };
}

const vote = { approver: "bob@example.com", slackUserId: "UBOB", decision: "approve" as const, reason: null, via: "slack", at: new Date() };

it("every template renders to Block Kit that type-checks against @slack/types", () => {
  const pending = sampleRequest();
  const denied = sampleRequest({ status: "denied", decidedAt: new Date("2026-11-24T09:03:00Z"), decidedBy: "carol@example.com", decisionReason: "Not during the freeze <script>" });
  const messages = {
    pending: renderRequestMessage(pending, [vote]),
    denied: renderRequestMessage(denied, [vote]),
    expired: renderRequestMessage(sampleRequest({ status: "expired", decidedAt: new Date(), decisionReason: "expired" })),
    dm: renderRequesterDm(pending, pending.slack.permalink!),
    followUp: renderRequesterFollowUp(denied),
    reminder: renderReminder(pending),
    escalation: renderReminder(sampleRequest({ escalationGroup: "managers" }), { group: "managers", mentions: ["S0MGRS"] }),
    escalationNote: renderReminder(sampleRequest({ escalationGroup: "managers" }), { group: "managers", mentions: [], channel: "C0MANAGERS" }),
    escalationCopy: renderRequestMessage(sampleRequest({ escalationGroup: "managers" }), [vote], { mentions: ["S0MGRS"], originalPermalink: "https://fake.slack.com/archives/C0APPROVALS/p1?a=1&b=<2>" }),
    ephemeral: renderEphemeral(pending.id, "You are not in the approver group *oncall*."),
  };
  const modals = { deny: renderDenyModal(pending), details: renderDetailsModal(sampleRequest({ maskedArguments: { big: "y".repeat(10_000) } })) };
  const dir = mkdtempSync(join(ROOT, "test", "approvals", ".blockkit-"));
  try {
    const lines = [
      `import type { KnownBlock, ModalView } from "@slack/types";`,
      ...Object.entries(messages).map(([k, m]) => `export const ${k}: { text: string; blocks: KnownBlock[] } = ${JSON.stringify(m, null, 1)};`),
      ...Object.entries(modals).map(([k, v]) => `export const ${k}Modal: ModalView = ${JSON.stringify(v, null, 1)};`),
    ];
    writeFileSync(join(dir, "check.ts"), lines.join("\n"));
    const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
    try {
      execFileSync(process.execPath, [tsc, "--noEmit", "--strict", "--skipLibCheck", "--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022", join(dir, "check.ts")], { cwd: ROOT, encoding: "utf8" });
    } catch (err) {
      throw new Error(`rendered Block Kit does not type-check:\n${(err as { stdout?: string }).stdout ?? String(err)}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // Escaped for mrkdwn: user text cannot inject links or mentions.
  expect(JSON.stringify(messages.pending)).toContain("Alice &lt;Requester&gt; &amp; co");
  expect(JSON.stringify(messages.denied)).not.toContain("<script>");
  expect(JSON.stringify(messages.pending)).toContain("countersign_approve");
  expect(JSON.stringify(messages.denied)).not.toContain("countersign_approve");
  expect(JSON.stringify(messages.pending)).toContain("*1 of 2* approvals: <@UBOB>");
  for (const m of Object.values(messages)) assertValidMessage(m);
  for (const v of Object.values(modals)) assertValidView(v);
}, 60_000);


/** Every surface of one request, checked against Slack's limits. */
function renderAll(r: ApprovalRequest, votes = [vote]) {
  const decided = { ...r, status: "denied" as const, decidedAt: new Date("2026-11-24T09:03:00Z"), decidedBy: r.requester.email ?? "x@example.com", decisionReason: r.justification };
  const messages = [
    renderRequestMessage(r, { votes, confirm: true, session: { sessionId: r.sessionId ?? "s", clientName: r.requester.name, clientVersion: "1.0 <&>", remoteAddress: "10.0.0.5" } }),
    renderRequestMessage(decided, votes),
    renderRequestMessage(r, votes, { mentions: ["S0MGRS", "<!channel>"], originalPermalink: "https://x.slack.com/a?b=<c>&d" }),
    renderRequesterDm(r, { permalink: r.slack.permalink, channel: "C0APPROVALS" }),
    renderRequesterFollowUp(decided, votes),
    renderRequesterFollowUp({ ...r, status: "expired", decidedAt: new Date() }),
    renderReminder(r, { approverMentions: ["S0ONCALL"] }),
    renderReminder(r, { group: r.approverGroup, mentions: ["S0MGRS"], channel: "C0MGRS" }),
    renderEphemeral(r.id, "short"),
  ];
  const views = [renderDenyModal(r), renderDetailsModal(r)];
  for (const m of messages) assertValidMessage(m);
  for (const v of views) assertValidView(v);
  return { messages, views, json: JSON.stringify({ messages, views }) };
}

const lt = "<".repeat(3000);
const adversarial: Record<string, Partial<ApprovalRequest>> = {
  "300 groups": { requester: { ...sampleRequest().requester, groups: Array.from({ length: 300 }, (_, i) => (i === 0 ? "dev" : i === 1 ? "oncall" : `group-${i}-<&>`)) } },
  "500 keys": { maskedArguments: Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`key_${i}`, `value ${i} <&>`])) },
  "200 KB SQL": { maskedArguments: { sql: `UPDATE orders SET note = '${"x".repeat(204_800)}' WHERE id = 1` } },
  "20 values of <": { maskedArguments: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, lt])) },
  "strings of <&>": {
    connection: "<&>".repeat(100),
    tool: "&".repeat(400),
    ruleId: "<".repeat(100),
    ruleDescription: "<&>".repeat(2000),
    justification: "&".repeat(5000),
    approverGroup: ">".repeat(300),
    requester: { subject: "<".repeat(2000), issuer: "i", kind: "user", email: `${"&".repeat(300)}@x`, name: "<>".repeat(2000), groups: ["<&>".repeat(200)] },
  },
  "mentions and links": {
    requester: { ...sampleRequest().requester, name: "<!channel> <!here> <@U0ADMIN>", groups: ["<!subteam^S0ALL>", "<https://evil.example|click me>"] },
    maskedArguments: { text: "<!channel> please approve <https://evil.example|this>", who: "<@U0ADMIN>" },
    justification: "<!everyone> <https://evil.example|urgent>",
  },
  "a huge key": { maskedArguments: { ["k".repeat(10_000)]: "v", ["<".repeat(5000)]: { nested: "<".repeat(5000) } } },
};

for (const [name, over] of Object.entries(adversarial)) {
  it(`stays within Slack's limits: ${name}`, () => {
    const { json } = renderAll(sampleRequest(over));
    // Nothing a caller wrote can mention, link or format: <, > and & reach Slack as entities.
    for (const raw of ["<!channel>", "<!here>", "<!everyone>", "<@U0ADMIN>", "<https://evil", "<!subteam^S0ALL>"]) expect(json).not.toContain(raw);
  });
}

it("says what was left out: groups, keys, and the middle of long strings", () => {
  const groups = renderRequestMessage(sampleRequest(adversarial["300 groups"]!));
  const g = JSON.stringify(groups.blocks);
  expect(g).toMatch(/`dev` `oncall` .* … \+288 more/);
  expect(g).toContain("*Groups* (300)");

  const keys = JSON.stringify(renderRequestMessage(sampleRequest(adversarial["500 keys"]!)).blocks);
  expect(keys).toMatch(/\d+ of 500 keys shown/);

  const sql = JSON.stringify(renderRequestMessage(sampleRequest(adversarial["200 KB SQL"]!)).blocks);
  // Head and tail: the WHERE at the end of a 200 KB statement stays visible.
  expect(sql).toMatch(/UPDATE orders SET note = 'x+ … \[\+20\d,\d{3} chars\] … x+' WHERE id = 1/);
  expect(sql).toContain("*SQL in `sql`*");
  expect(sql).toContain("tables: `orders`");
  expect(sql).not.toContain("unknown (?)");
});

it("the approval message: confirm on Approve, voters as mentions, break-glass marked, no expiry once decided", () => {
  const pending = renderRequestMessage(sampleRequest(), { votes: [vote], confirm: true, session: { sessionId: "sess-1", clientName: "claude-code", clientVersion: "2.1.0", remoteAddress: "10.1.2.3" } });
  const p = JSON.stringify(pending.blocks);
  expect(p).toContain('"confirm":{"title":{"type":"plain_text","text":"Approve this call?"');
  expect(p).toContain(":computer: claude-code 2.1.0 · from 10.1.2.3 · session `sess-1`");
  expect(p).toContain("<@UBOB>");
  expect(p).toContain("expires <!date^");
  expect(JSON.stringify(renderRequestMessage(sampleRequest(), [vote]).blocks)).not.toContain('"confirm"');

  const glass = { approver: "root@example.com", slackUserId: null, decision: "approve" as const, reason: "database down, incident INC-9", via: "break_glass", at: new Date() };
  const approved = sampleRequest({ status: "approved", approveCount: 2, decidedAt: new Date("2026-11-24T09:05:00Z"), decidedBy: "root@example.com", decisionReason: "database down, incident INC-9" });
  const a = JSON.stringify(renderRequestMessage(approved, [vote, glass]).blocks);
  expect(a).toContain("*Approved by break-glass* by root@example.com");
  expect(a).toContain("database down, incident INC-9");
  expect(a).toContain("<@UBOB>, root@example.com (break-glass)");
  expect(a).not.toContain("expires");

  const clicked = JSON.stringify(renderRequestMessage({ ...approved, decidedBy: "bob@example.com" }, [vote]).blocks);
  expect(clicked).toContain(":white_check_mark: *Approved* by <@UBOB>");
  expect(clicked).not.toContain("break-glass");
});

it("reminders mention the approver group; the expiry DM says how to ask again", () => {
  const r = JSON.stringify(renderReminder(sampleRequest(), { approverMentions: ["S0ONCALL", "not-an-id"] }).blocks);
  expect(r).toContain(":bell: Reminder <!subteam^S0ONCALL>:");
  expect(r).not.toContain("not-an-id");
  const expired = JSON.stringify(renderRequesterFollowUp(sampleRequest({ status: "expired", decidedAt: new Date() })).blocks);
  expect(expired).toContain("To ask again, make the same call again");
  const dm = JSON.stringify(renderRequesterDm(sampleRequest(), { permalink: "https://example.slack.com/archives/C0APPROVALS/p1", channel: "C0APPROVALS" }).blocks);
  expect(dm).toContain("in <#C0APPROVALS>");
  expect(dm).toContain("It waits up to 15m 00s");
  expect(dm).toContain("I will write here when it is decided");
});

it("any text in any field stays within the limits (property)", async () => {
  const fc = await import("fast-check");
  const text = fc.string({ unit: fc.constantFrom("<", ">", "&", "a", "`", "*", "é", "😀", "\n"), maxLength: 6000 });
  fc.assert(
    fc.property(text, text, text, fc.array(text, { maxLength: 40 }), fc.dictionary(text, text, { maxKeys: 30 }), (a, b, c, groups, args) => {
      renderAll(sampleRequest({ connection: a, tool: b, justification: c || null, ruleDescription: a, requester: { ...sampleRequest().requester, name: b, groups }, maskedArguments: args }));
    }),
    { numRuns: 60 },
  );
});
