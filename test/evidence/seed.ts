// A week of known records, written by SQL into the real schema (the audit triggers queue them for
// the chain as they would for the gateway's own writes): the digest tests check every figure
// against what is written here. Rows are written in time order and sealed; each entry's sealing
// time is then set to its record's time, as a running sealer (which seals within moments of the
// commit) would have stamped it.
import type pg from "pg";
import { sealAll } from "../../gateway/audit/chain/sealer.js";
import { takeCheckpoint } from "../../gateway/audit/chain/checkpoint.js";
import type { SignerKey } from "../../gateway/audit/chain/keys.js";
import { parseIsoWeek, type IsoWeek } from "../../gateway/evidence/week.js";

export const SEED_ZONE = "Europe/Paris";
export const SEED_WEEK = "2026-W47";

type Row = { at: Date; write: (c: pg.Client) => Promise<void> };

export interface SeededWeek {
  week: IsoWeek;
  /** Audit rows (messages and events) written before the week, inside it, and in all. */
  auditRowsBefore: number;
  auditRowsInWeek: number;
  auditRowsTotal: number;
  checkpoint: { id: string; seq: number; time: string };
}

export async function seedWeek(client: pg.Client, signer: SignerKey): Promise<SeededWeek> {
  const week = parseIsoWeek(SEED_WEEK, SEED_ZONE);
  const H = 3_600_000;
  const D = 24 * H;
  const at = (day: number, hour: number, minutes = 0) => new Date(week.start.getTime() + day * D + hour * H + minutes * 60_000);
  const rows: Row[] = [];
  const auditTimes: Date[] = [];

  await client.query(`INSERT INTO instances (id, host, pid, version) VALUES ('seed-1', 'seed', 1, 'test')`);

  // Sessions, approval requests and votes are chained too: each is an audit row at its time.
  const session = (id: string, connection: string, subject: string | null, when: Date) =>
    auditTimes.push(when) && rows.push({
      at: when,
      write: (c) =>
        c.query(`INSERT INTO sessions (id, connection, "frontTransport", "upstreamKind", "ownerInstanceId", subject, "createdAt") VALUES ($1, $2, 'streamable_http', 'stdio', 'seed-1', $3, $4)`, [id, connection, subject, when]).then(() => {}),
    });
  const event = (type: string, reason: string, when: Date, f: { connection?: string | null; subject?: string | null; detail?: unknown } = {}) => {
    auditTimes.push(when);
    rows.push({
      at: when,
      write: (c) =>
        c.query(`INSERT INTO events (type, reason, connection, subject, detail, at) VALUES ($1, $2, $3, $4, $5::jsonb, $6)`, [type, reason, f.connection ?? null, f.subject ?? null, JSON.stringify(f.detail ?? {}), when]).then(() => {}),
    });
  };
  const message = (when: Date, m: { connection: string; direction: "in" | "out"; kind: string; method: string | null; subject: string | null; maskHits?: Record<string, number> }) => {
    auditTimes.push(when);
    rows.push({
      at: when,
      write: (c) =>
        c.query(
          `INSERT INTO messages (connection, direction, origin, kind, method, size, payload, "maskHits", subject, at) VALUES ($1, $2, $3, $4, $5, 2, '{}'::jsonb, $6::jsonb, $7, $8)`,
          [m.connection, m.direction, m.direction === "in" ? "client" : "upstream", m.kind, m.method, m.maskHits ? JSON.stringify(m.maskHits) : null, m.subject, when],
        ).then(() => {}),
    });
  };
  const calls = (subject: string, n: number, from: Date) => {
    for (let i = 0; i < n; i++) message(new Date(from.getTime() + i * 60_000), { connection: "github", direction: "in", kind: "request", method: "tools/call", subject });
  };

  // CC6.1: sessions (one the evening before the week, local time: not counted).
  session("s-out", "github", "dave", new Date(week.start.getTime() - 30 * 60_000));
  session("s1", "github", "alice", at(0, 0, 30)); // Monday 00:30 Paris = Sunday 23:30 UTC: in the week
  session("s2", "github", "bob", at(1, 9));
  session("s3", "github", "alice", at(2, 9));
  session("s4", "postgres", "carol", at(2, 10));
  session("s5", "postgres", null, at(3, 11));
  // Authentication failures: 3 expired, 1 + 40 (aggregated) bad_signature, 7 (aggregated) wrong_audience.
  for (const h of [1, 2, 3]) event("auth_failed", "expired", at(1, h), { connection: "github", detail: { issuer: "https://idp.example" } });
  event("auth_failed", "bad_signature", at(2, 1), { connection: "github" });
  event("auth_failed", "bad_signature", at(2, 2), { connection: "github", detail: { aggregated: true, count: 40, windowSeconds: 1 } });
  event("auth_failed", "wrong_audience", at(2, 3), { connection: "postgres", detail: { aggregated: true, count: 7, windowSeconds: 1 } });
  event("auth_failed", "expired", new Date(week.end.getTime() + 60_000), { connection: "github" }); // next week
  event("access_denied", "tool_denied", at(3, 1), { connection: "github", subject: "bob" });
  event("access_denied", "tool_denied", at(3, 2), { connection: "github", subject: "bob" });
  event("access_denied", "session_identity_mismatch", at(3, 3), { connection: "github", subject: "mallory" });

  // CC6.2/CC6.3: approvals (decided after 60, 120 and 300 s), votes and refused self-approvals.
  const request = (id: string, created: Date, status: string, decidedAfterS: number | null, decidedBy: string | null) =>
    auditTimes.push(created) && rows.push({
      at: created,
      write: (c) =>
        c.query(
          `INSERT INTO approval_requests (id, connection, tool, "argumentsHash", "maskedArguments", "requesterSubject", "requesterIssuer", "requesterKind", "requesterEmail", "approverGroup", "createdAt", "expiresAt", status, "decidedAt", "decidedBy")
           VALUES ($1, 'postgres', 'query', 'h', '{}'::jsonb, 'alice', 'https://idp.example', 'user', 'alice@example.com', 'dba', $2, $3, $4, $5, $6)`,
          [id, created, new Date(created.getTime() + D), status, decidedAfterS === null ? null : new Date(created.getTime() + decidedAfterS * 1000), decidedBy],
        ).then(() => {}),
    });
  const vote = (requestId: string, approver: string, decision: string, when: Date) =>
    auditTimes.push(when) && rows.push({
      at: when,
      write: (c) => c.query(`INSERT INTO approval_votes ("requestId", approver, decision, at) VALUES ($1, $2, $3, $4)`, [requestId, approver, decision, when]).then(() => {}),
    });
  request("r-out", new Date(week.start.getTime() - H), "approved", 30, "ann@example.com");
  request("r1", at(1, 10), "approved", 60, "ann@example.com");
  request("r2", at(2, 10), "approved", 120, "ben@example.com");
  request("r3", at(3, 10), "denied", 300, "ann@example.com");
  request("r4", at(4, 10), "expired", null, null);
  request("r5", at(6, 20), "pending", null, null);
  vote("r1", "ann@example.com", "approve", at(1, 10, 1));
  vote("r2", "ben@example.com", "approve", at(2, 10, 2));
  vote("r3", "ann@example.com", "deny", at(3, 10, 5));
  event("approval", "self_approval_refused", at(1, 10, 0.5), { connection: "postgres", subject: "alice@example.com", detail: { requestId: "r1" } });
  event("approval", "self_approval_refused", at(2, 10, 0.5), { connection: "postgres", subject: "alice@example.com", detail: { requestId: "r2" } });
  event("approval", "unauthorized_click", at(2, 10, 1), { connection: "postgres", subject: "eve@example.com", detail: { requestId: "r2" } });

  // CC7.2: blocks, shadow decisions, masking, a tool definition change, call volume.
  for (const h of [1, 2, 3]) event("policy_decision", "block", at(4, h), { connection: "postgres", subject: "bob", detail: { ruleId: "no-drop" } });
  event("policy_decision", "block", at(4, 4), { connection: "github", subject: "carol", detail: { ruleId: "no-delete-repo" } });
  for (const h of [5, 6, 7, 8, 9]) event("policy_decision", "allow", at(4, h), { connection: "github", subject: "alice", detail: { ruleId: null } });
  event("policy_decision", "shadow_block", at(5, 1), { connection: "postgres", subject: "bob", detail: { ruleId: "shadow-writes" } });
  event("policy_decision", "shadow_block", at(5, 2), { connection: "postgres", subject: "bob", detail: { ruleId: "shadow-writes" } });
  event("policy_decision", "shadow_require_approval", at(5, 3), { connection: "github", subject: "alice", detail: { ruleId: "prod-deploys" } });
  message(at(5, 4), { connection: "github", direction: "out", kind: "response", method: "tools/call", subject: "alice", maskHits: { email: 2, card: 1 } });
  message(at(5, 5), { connection: "github", direction: "out", kind: "response", method: "tools/call", subject: "bob", maskHits: { email: 1 } });
  message(at(5, 6), { connection: "postgres", direction: "out", kind: "response", method: "tools/call", subject: "carol", maskHits: { aws_access_key: 1 } });
  event("tool_definition_changed", "detected", at(5, 7), { connection: "github", detail: { tool: "create_issue", oldHash: "a", newHash: "b" } });
  event("tool_definition_changed", "call_held", at(5, 8), { connection: "github", subject: "bob", detail: { tool: "create_issue", action: "require_approval" } });
  for (const h of [9, 10]) event("tool_definition_changed", "call_allowed", at(5, h), { connection: "github", subject: "alice", detail: { tool: "create_issue", action: "allow" } });
  // alice: 60 calls this week against 10, 12, 0, 8 before (median 9): unusual.
  // bob: 55 against 20 each week (median 20; 3x = 60): not unusual. carol: 5, never before.
  const before = (k: number) => new Date(week.start.getTime() - (k - 1) * 7 * D - 2 * H);
  calls("alice", 60, at(6, 1));
  calls("alice", 10, before(1));
  calls("alice", 12, before(2));
  calls("alice", 8, before(4));
  calls("bob", 55, at(6, 3));
  for (const k of [1, 2, 3, 4]) calls("bob", 20, new Date(before(k).getTime() - 3 * H));
  calls("carol", 5, at(6, 5));

  // Privacy: unmasked deliveries under a role exemption.
  for (const h of [1, 2]) event("unmasked_delivery", "role_exemption", at(6, 10 + h), { connection: "github", subject: "alice", detail: { types: { email: 1 }, justification: "incident INC-42" } });
  event("unmasked_delivery", "role_exemption", at(6, 13), { connection: "github", subject: "alice", detail: { types: { phone: 1 }, justification: "incident INC-42" } });
  event("unmasked_delivery", "role_exemption", at(6, 14), { connection: "postgres", subject: "carol", detail: { types: { email: 2 }, justification: null } });

  // CC8.1: the configuration at start, one applied change, one refused reload.
  const hashA = "a".repeat(64);
  const hashB = "b".repeat(64);
  event("config_changed", "applied", at(0, 9), { detail: { hash: hashA, previousHash: null, by: { kind: "startup", instance: "seed-1" }, changes: [] } });
  event("config_changed", "applied", at(2, 14), {
    subject: "ops",
    detail: { hash: hashB, previousHash: hashA, by: { kind: "admin", subject: "ops", email: "ops@example.com" }, changes: [
      { path: "connections[0].policy.rules[1].action", before: "allow", after: "block" },
      { path: "connections[1].upstream.headers.Authorization", before: "Bearer old-inline-token", after: { env: "SEARCH_AUTH" } },
      { path: "connections[1].upstream.env.API_KEY", before: "inline-secret", after: "other-inline-secret" },
      { path: "connections[2].upstream.url", before: "https://svc:hunter2@legacy.internal/sse", after: "https://legacy.internal/sse" },
    ] },
  });
  event("config_changed", "rejected", at(3, 15), { detail: { problems: ["server: changes here take effect only at start; restart the gateway (nothing was applied)"], by: { kind: "signal" } } });

  rows.sort((a, b) => a.at.getTime() - b.at.getTime());
  for (const r of rows) await r.write(client);
  await sealAll(client);
  for (const [source, column] of [["events", "at"], ["messages", "at"], ["sessions", '"createdAt"'], ["approval_requests", '"createdAt"'], ["approval_votes", "at"]] as const) {
    await client.query(`UPDATE audit_chain c SET "sealedAt" = t.${column} FROM ${source} t WHERE c.source = $1 AND c."sourceId" = t.id::text`, [source]);
  }
  const cp = await takeCheckpoint(client, signer, { now: at(6, 23) });
  const inWeek = auditTimes.filter((t) => t >= week.start && t < week.end).length;
  return { week, auditRowsBefore: auditTimes.filter((t) => t < week.start).length, auditRowsInWeek: inWeek, auditRowsTotal: auditTimes.length, checkpoint: { id: cp.id, seq: cp.body.sequence, time: cp.body.time } };
}
