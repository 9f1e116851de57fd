// The approval message as posted to (the fake) Slack, which refuses, as Slack does, anything that
// breaks a Block Kit limit: a caller with 300 groups and a 200 KB SQL statement are asked about
// (not refused), Details opens, and a click Slack cannot resolve says what to fix. The posted
// messages are written to $TMPDIR/countersign-blockkit/ for people to read.
import { mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { CHANNEL, USERS, startStack, type Stack } from "./harness.js";

let s: Stack;
const out = join(tmpdir(), "countersign-blockkit");

beforeAll(async () => {
  s = await startStack();
  mkdirSync(out, { recursive: true });
}, 60_000);
afterAll(async () => {
  await s?.stop();
});

const posted = (id: string) => s.slack.waitFor("chat.postMessage", (c) => c.args.channel === CHANNEL && JSON.stringify(c.args.blocks ?? "").includes(`decide:${id}`));

it("a caller with 300 groups is asked about, groups capped with a count", async () => {
  const groups = ["dev", "oncall", ...Array.from({ length: 298 }, (_, i) => `entra-group-${String(i).padStart(3, "0")}-<&>`)];
  const { request } = await s.request({ requester: { subject: "alice", issuer: "https://idp.example.com", kind: "user", email: "alice@example.com", name: "Alice Requester", groups } });
  const call = await posted(request.id);
  writeFileSync(join(out, "approval-300-groups.json"), JSON.stringify({ text: call.args.text, blocks: call.args.blocks }, null, 2));
  // Slack took it (before: a Groups field of 9,315 characters, refused with invalid_blocks).
  expect(s.slack.refused.map((r) => r.problems)).toEqual([]);
  const blocks = JSON.stringify(call.args.blocks);
  expect(blocks).toMatch(/\*Groups\* \(300\)\\n`dev` `oncall` .* … \+288 more/);
  expect(s.slack.refused).toEqual([]);
});

it("a 200 KB SQL statement is asked about with its start, its end and what it does", async () => {
  const sql = `UPDATE orders SET note = '${"x".repeat(204_800)}' WHERE id = 1`;
  const { request } = await s.request({ maskedArguments: { sql }, arguments: { sql } });
  const call = await posted(request.id);
  writeFileSync(join(out, "approval-200kb-sql.json"), JSON.stringify({ text: call.args.text, blocks: call.args.blocks }, null, 2));
  const blocks = JSON.stringify(call.args.blocks);
  expect(blocks).toMatch(/UPDATE orders SET note = 'x+ … \[\+20\d,\d{3} chars\] … x+' WHERE id = 1/);
  expect(blocks).toContain("*SQL in `sql`*: *UPDATE*: changes data · tables: `orders`");
  // Details: the statement in as many chunks as a modal holds, accepted by Slack.
  await s.click("bob", "details", request.id);
  const view = await s.slack.waitFor("views.open", (c) => JSON.stringify(c.args.view).includes(request.id));
  const modal = view.args.view as { blocks: unknown[] };
  // ~205,000 characters at under 3,000 a section: some 70 sections, all of it shown.
  expect(modal.blocks.length).toBeGreaterThan(60);
  expect(JSON.stringify(modal.blocks.at(-1))).not.toContain("more characters");
  expect(s.slack.refused).toEqual([]);
});

it("a click Slack cannot resolve says what to fix, not 'try again'", async () => {
  const { request } = await s.request({ arguments: { sql: "DELETE FROM t WHERE id = 7" }, maskedArguments: { sql: "DELETE FROM t WHERE id = 7" } });
  await posted(request.id);
  s.slack.failNext("users.info", 1, "missing_scope");
  await s.click("carol", "approve", request.id);
  const told = await s.slack.waitFor("chat.postEphemeral", (c) => c.args.user === USERS.carol.id && String(c.args.text).includes("users:read"));
  expect(String(told.args.text)).toContain("approvals.slack.users");
  expect(String(told.args.text)).not.toContain("try again");
  expect((await s.service.store.get(request.id))!.status).toBe("pending");
});
