// The mustache templates render to Block Kit that type-checks against @slack/types: the rendered
// JSON is written into a TypeScript file as typed constants and compiled with tsc. Also the
// folding of long values and Slack's size limits.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { expect, it } from "vitest";
import type { ApprovalRequest } from "../../gateway/approvals/types.js";
import { prettyArguments, renderDenyModal, renderDetailsModal, renderEphemeral, renderReminder, renderRequesterDm, renderRequesterFollowUp, renderRequestMessage } from "../../bot/render.js";
import { ROOT } from "../helpers/postgres.js";

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
  expect(JSON.stringify(messages.pending)).toContain("Approvals so far: 1 of 2");
}, 60_000);

it("folds long values in the message and keeps every section within Slack's limits", () => {
  const p = prettyArguments({ sql: "s".repeat(5000), list: Array.from({ length: 500 }, (_, i) => i) });
  expect(p.folded).toBe(true);
  expect(p.preview).toContain("[+4800 chars]");
  const msg = renderRequestMessage(sampleRequest({ maskedArguments: { sql: "s".repeat(5000), list: Array.from({ length: 500 }, (_, i) => i) } }));
  for (const b of msg.blocks) {
    const text = (b as { text?: { text?: string } }).text?.text;
    if (text) expect(text.length).toBeLessThanOrEqual(3000);
  }
  const details = renderDetailsModal(sampleRequest({ maskedArguments: { big: "y".repeat(10_000) } }));
  expect(details.blocks.length).toBeLessThanOrEqual(100);
  expect(JSON.stringify(details)).toContain("y".repeat(2000));
  // A value holding ``` cannot close the code block.
  expect(prettyArguments({ x: "```" }).preview).not.toContain("```");
});
