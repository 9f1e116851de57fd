// The weekly evidence digest over a seeded week of known records (test/evidence/seed.ts): every
// figure, the rendered reports, the signature, the stored row and its event, an empty week, and
// a break in the chain.
import { createPublicKey } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { computeDigest, toolDefinitionChangesRecorded, type DigestContent, type DigestSection } from "../../gateway/evidence/digest.js";
import { generateDigest } from "../../gateway/evidence/generate.js";
import { renderDigest } from "../../gateway/evidence/render.js";
import { verifyDigestSignature } from "../../gateway/evidence/sign.js";
import { lastCompleteWeek, parseIsoWeek } from "../../gateway/evidence/week.js";
import { keyMap, newKey } from "../chain/lib.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { SEED_WEEK, SEED_ZONE, seedWeek, type SeededWeek } from "./seed.js";

let db: TestDatabase;
let client: pg.Client;
let seeded: SeededWeek;
const key = newKey("digest-test");
const verifiers = keyMap(key.verifier);

const sectionOf = (d: DigestContent, id: string): DigestSection => {
  const s = d.sections.find((x) => x.id === id);
  if (!s) throw new Error(`no section ${id}`);
  return s;
};
const countsOf = (d: DigestContent, id: string) => Object.fromEntries(sectionOf(d, id).counts.map((c) => [c.key, c.value]));
const tableOf = (d: DigestContent, id: string, table: string) => sectionOf(d, id).tables.find((t) => t.key === table)!.rows;

beforeAll(async () => {
  db = await createTestDatabase();
  client = new pg.Client({ connectionString: db.url });
  await client.connect();
  await client.query("SET TIME ZONE 'UTC'");
  seeded = await seedWeek(client, key.signer);
});

afterAll(async () => {
  await client?.end();
  await db?.drop();
});

describe("week boundaries", () => {
  it("ISO week in the configured zone, across daylight saving and year ends", () => {
    const paris = parseIsoWeek("2026-W47", "Europe/Paris");
    expect([paris.start.toISOString(), paris.end.toISOString(), paris.firstDay, paris.lastDay]).toEqual(["2026-11-15T23:00:00.000Z", "2026-11-22T23:00:00.000Z", "2026-11-16", "2026-11-22"]);
    const ny = parseIsoWeek("2026-W10", "America/New_York"); // clocks go forward on Sunday 8 March
    expect((ny.end.getTime() - ny.start.getTime()) / 3_600_000).toBe(167);
    expect(parseIsoWeek("2020-W53", "UTC").firstDay).toBe("2020-12-28");
    expect(lastCompleteWeek(new Date("2026-11-23T08:30:00Z"), "Europe/Paris").label).toBe("2026-W47"); // Monday 09:30 Paris
    expect(lastCompleteWeek(new Date("2026-11-22T22:30:00Z"), "Europe/Paris").label).toBe("2026-W46"); // Sunday 23:30 Paris
    expect(() => parseIsoWeek("2026-W54", "UTC")).toThrow(/weeks 01 to 53/);
    expect(() => parseIsoWeek("2026-47", "UTC")).toThrow(/YYYY-Www/);
  });
});

describe("a seeded week", () => {
  let d: DigestContent;
  beforeAll(async () => {
    d = await computeDigest(client, { week: seeded.week, verifiers, generatedBy: "test" });
  });

  it("states its week, zone and period", () => {
    expect(d.week).toBe(SEED_WEEK);
    expect(d.timeZone).toBe(SEED_ZONE);
    expect(d.period).toMatchObject({ start: "2026-11-15T23:00:00.000Z", end: "2026-11-22T23:00:00.000Z", startLocal: "2026-11-16 00:00 Europe/Paris", endLocal: "2026-11-23 00:00 Europe/Paris" });
    expect(d.sections.map((s) => s.id)).toEqual(["cc6_1", "cc6_2", "cc7_2", "privacy", "cc8_1", "integrity"]);
    expect(d.summary).toEqual({ sections: 6, exceptions: 5, noData: 0 });
  });

  it("CC6.1: identities per connection, authentication failures by reason (aggregated events counted in full)", () => {
    expect(countsOf(d, "cc6_1")).toEqual({ identities: 3, sessions: 5, authFailures: 51, accessDenied: 3 });
    expect(tableOf(d, "cc6_1", "identitiesPerConnection")).toEqual([["github", 2, 3, 0], ["postgres", 1, 2, 1]]);
    expect(tableOf(d, "cc6_1", "authFailuresByReason")).toEqual([["bad_signature", 41], ["wrong_audience", 7], ["expired", 3]]);
    expect(tableOf(d, "cc6_1", "accessDeniedByReason")).toEqual([["tool_denied", 2], ["session_identity_mismatch", 1]]);
    expect(sectionOf(d, "cc6_1").exceptions).toHaveLength(1);
    expect(sectionOf(d, "cc6_1").status).toBe("exceptions");
  });

  it("CC6.2/CC6.3: requests, decisions, approvers, time to decision, self-approvals", () => {
    expect(countsOf(d, "cc6_2")).toEqual({
      requests: 5, approved: 2, denied: 1, expired: 1, pending: 1, decidingApprovers: 2,
      medianSecondsToDecision: 120, p95SecondsToDecision: 282,
      selfApprovalRefused: 2, selfApprovalGranted: 0, unauthorizedClicks: 1, breakGlass: 0,
    });
    expect(tableOf(d, "cc6_2", "votesByApprover")).toEqual([["ann@example.com", 1, 1], ["ben@example.com", 1, 0]]);
    expect(sectionOf(d, "cc6_2").status).toBe("ok");
  });

  it("CC7.2: blocks by rule, masking by type, tool changes, shadow decisions, unusual volume", () => {
    expect(countsOf(d, "cc7_2")).toEqual({ blocked: 4, valuesMasked: 5, toolDefinitionChanges: 1, changedToolCallsHeldOrBlocked: 1, shadowWouldBlock: 3, identitiesCalling: 3, unusualVolume: 1 });
    expect(tableOf(d, "cc7_2", "blockedByRule")).toEqual([["no-drop", "postgres", 3], ["no-delete-repo", "github", 1]]);
    expect(tableOf(d, "cc7_2", "maskingByType")).toEqual([["email", 3, 2], ["aws_access_key", 1, 1], ["card", 1, 1]]);
    expect(tableOf(d, "cc7_2", "toolDefinitionChanges")).toEqual([["github", "create_issue", 1, 2, 1, 0, "2026-11-21T09:00:00.000Z"]]);
    expect(tableOf(d, "cc7_2", "shadowWouldBlock")).toEqual([["shadow_block", "shadow-writes", "postgres", 2], ["shadow_require_approval", "prod-deploys", "github", 1]]);
    expect(tableOf(d, "cc7_2", "volumePerIdentity")).toEqual([["alice", 60, 9, "yes"], ["bob", 55, 20, "no"], ["carol", 5, 0, "no"]]);
    const s = sectionOf(d, "cc7_2");
    expect(s.exceptions).toEqual([
      "Unusual volume: alice made 60 calls (trailing weekly median 9)",
      "Tool definition changed: github / create_issue (1 time(s); 2 call(s) allowed to the changed tool)",
    ]);
    expect(s.notes.join(" ")).toMatch(/at least 50 tools\/call requests in the week and more than 3× the median/);
  });

  it("Privacy: who received unmasked data, how often, why", () => {
    expect(countsOf(d, "privacy")).toEqual({ deliveries: 4, recipients: 2, withoutReason: 1 });
    expect(tableOf(d, "privacy", "unmaskedDeliveries")).toEqual([["alice", "github", "incident INC-42", 3, "email, phone"], ["carol", "postgres", "(none given)", 1, "email"]]);
    expect(sectionOf(d, "privacy").exceptions).toEqual(["carol received unmasked data 1 time(s) on postgres without stating a reason"]);
  });

  it("CC8.1: configuration changes with who, when, hash and diff", () => {
    expect(countsOf(d, "cc8_1")).toEqual({ applied: 2, rejected: 1 });
    const rows = tableOf(d, "cc8_1", "configChanges");
    expect(rows).toHaveLength(3);
    expect(rows[0]).toEqual(["2026-11-16T08:00:00.000Z", "applied", "(startup)", "a".repeat(16), "", "configuration in force at start"]);
    expect(rows[1]).toEqual([
      "2026-11-18T13:00:00.000Z", "applied", "ops@example.com (admin)", "b".repeat(16), "a".repeat(16),
      'connections[0].policy.rules[1].action: "allow" → "block"; connections[1].upstream.headers.Authorization: [redacted] → {"env":"SEARCH_AUTH"}; ' +
        'connections[1].upstream.env.API_KEY: [redacted] → [redacted]; connections[2].upstream.url: "https://svc:***@legacy.internal/sse" → "https://legacy.internal/sse"',
    ]);
    // Credentials written inline in the file never reach the digest.
    expect(JSON.stringify(d)).not.toMatch(/old-inline-token|inline-secret|hunter2/);
    expect(rows[2]![1]).toBe("rejected");
    expect(sectionOf(d, "cc8_1").exceptions).toHaveLength(1);
  });

  it("Integrity: sequence range, no gaps, chain head, last checkpoint, verification passed", () => {
    const c = countsOf(d, "integrity");
    expect(c).toMatchObject({
      firstSeq: seeded.auditRowsBefore + 1,
      lastSeq: seeded.auditRowsBefore + seeded.auditRowsInWeek,
      entries: seeded.auditRowsInWeek,
      gaps: 0,
      chainHeadSeq: seeded.auditRowsTotal,
      lastCheckpoint: `#${seeded.checkpoint.id} at seq ${seeded.checkpoint.seq}, ${seeded.checkpoint.time}, key digest-test`,
      verification: "passed",
      verifiedRange: `1..${seeded.auditRowsBefore + seeded.auditRowsInWeek}`,
    });
    expect(c.chainHead).toMatch(/^[0-9a-f]{64}$/);
    expect(seeded.auditRowsInWeek).toBeGreaterThan(100);
    expect(sectionOf(d, "integrity").status).toBe("ok");
  });

  it("every section shows the SQL that produced it", () => {
    for (const s of d.sections) {
      expect(s.queries.length).toBeGreaterThan(0);
      for (const q of s.queries) expect(q.sql).toMatch(/^\s*(--[^\n]*\n\s*)*(SELECT|WITH)\b/);
    }
    expect(sectionOf(d, "cc6_1").queries.map((q) => q.sql).join("\n")).toContain("WHERE type = 'auth_failed' AND at >= $1 AND at < $2");
  });

  it("Markdown and HTML carry the same figures, exceptions and queries", () => {
    const seal = { sha256: "0".repeat(64), signature: "c2ln", keyId: "digest-test", publicKey: null };
    const md = renderDigest(d, seal, "md");
    const html = renderDigest(d, seal, "html");
    for (const line of [
      "| Authentication failures | 51 |",
      "| bad_signature | 41 |",
      "| github | 2 | 3 | 0 |",
      "| Median time to decision (s) | 120 |",
      "| 95th percentile time to decision (s) | 282 |",
      "| Self-approvals granted (must be 0) | 0 |",
      "| no-drop | postgres | 3 |",
      "| email | 3 | 2 |",
      "| alice | 60 | 9 | yes |",
      "| alice | github | incident INC-42 | 3 | email, phone |",
      `| Gaps (must be 0) | 0 |`,
      `| Entries sealed | ${seeded.auditRowsInWeek} |`,
      "| Verification at generation | passed |",
      "- Unusual volume: alice made 60 calls (trailing weekly median 9)",
      "WHERE type = 'auth_failed' AND at >= $1 AND at < $2",
      "- **Signature** (Ed25519, checkpoint key `digest-test`): `c2ln`",
    ]) expect(md).toContain(line);
    expect(md).toContain("connections[0].policy.rules[1].action: \"allow\" → \"block\"");
    for (const cell of ["<td class=\"num\">51</td>", "<td>bad_signature</td><td>41</td>", "<td>alice</td><td>60</td><td>9</td><td>yes</td>", "<li>Unusual volume: alice made 60 calls (trailing weekly median 9)</li>"]) {
      expect(html).toContain(cell);
    }
    expect(html).toContain("WHERE type = &#39;auth_failed&#39; AND at &gt;= $1");
  });
});

describe("generation", () => {
  it("signs the content, stores it and records digest_generated in the chain's queue", async () => {
    const g = await generateDigest(client, { week: seeded.week, trigger: "on_demand", signer: key.signer, verifiers, generatedBy: "test" });
    const row = (await client.query(`SELECT content, sha256, signature, "keyId", trigger, week, "timeZone" FROM digests WHERE id = $1`, [g.stored.id])).rows[0];
    expect(row).toMatchObject({ sha256: g.seal.sha256, signature: g.seal.signature, keyId: "digest-test", trigger: "on_demand", week: SEED_WEEK, timeZone: SEED_ZONE });
    // The stored content (read back from jsonb) verifies with the public key; a changed figure does not.
    expect(verifyDigestSignature(row.content, row.signature, createPublicKey(key.pem))).toBe(true);
    const forged = structuredClone(row.content) as DigestContent;
    sectionOf(forged, "cc6_1").counts[2]!.value = 0;
    expect(verifyDigestSignature(forged, row.signature, createPublicKey(key.pem))).toBe(false);
    // The JSON output is the signed content with its seal.
    const json = JSON.parse(renderDigest(g.content, g.seal, "json"));
    expect(json.digest).toEqual(row.content);
    expect(json).toMatchObject({ sha256: g.seal.sha256, signature: g.seal.signature, keyId: "digest-test" });
    expect(verifyDigestSignature(json.digest, json.signature, createPublicKey(json.publicKey))).toBe(true);
    const ev = (await client.query(`SELECT e.id::text, e.reason, e.detail FROM events e WHERE e.type = 'digest_generated' ORDER BY e.id DESC LIMIT 1`)).rows[0];
    expect(ev).toMatchObject({ reason: "on_demand", detail: { week: SEED_WEEK, digestId: g.stored.id, sha256: g.seal.sha256, keyId: "digest-test" } });
    const queued = await client.query(`SELECT 1 FROM audit_unsealed WHERE source = 'events' AND "sourceId" = $1`, [ev.id]);
    expect(queued.rowCount).toBe(1);
  });

  it("an empty week says 'no data' in every section, honestly", async () => {
    const week = parseIsoWeek("2026-W40", SEED_ZONE);
    const d = await computeDigest(client, { week, verifiers });
    expect(d.sections.map((s) => s.status)).toEqual(["no_data", "no_data", "no_data", "no_data", "no_data", "no_data"]);
    expect(countsOf(d, "cc6_1")).toEqual({ identities: 0, sessions: 0, authFailures: 0, accessDenied: 0 });
    expect(countsOf(d, "cc6_2")).toMatchObject({ requests: 0, medianSecondsToDecision: null, p95SecondsToDecision: null });
    expect(countsOf(d, "cc7_2").toolDefinitionChanges).toBe(toolDefinitionChangesRecorded() ? 0 : "no data");
    expect(toolDefinitionChangesRecorded()).toBe(true); // the catalogue declares tool_definition_changed
    expect(countsOf(d, "integrity")).toMatchObject({ entries: 0, gaps: 0, firstSeq: null, lastSeq: null });
    const md = renderDigest(d, { sha256: "0".repeat(64), signature: null, keyId: null, publicKey: null }, "md");
    expect(md).toContain("> **No data.** Nobody received unmasked personal data under a role exemption in this week.");
    expect(md).toContain("| Median time to decision (s) | — |");
    expect(md).toContain("**Not signed:** no audit checkpoint key is configured");
    expect(md.match(/> \*\*No data\.\*\*/g)).toHaveLength(6);
  });

  it("a self-approval granted and a missing chain entry are exceptions", async () => {
    // Last: this alters the seeded record.
    await client.query(`INSERT INTO approval_votes ("requestId", approver, decision, at) VALUES ('r5', 'Alice@example.com', 'approve', $1)`, [new Date(seeded.week.start.getTime() + 6 * 86_400_000 + 21 * 3_600_000)]);
    const mid = seeded.auditRowsBefore + 10;
    await client.query(`DELETE FROM audit_chain WHERE seq = $1`, [mid]);
    const d = await computeDigest(client, { week: seeded.week, verifiers });
    expect(countsOf(d, "cc6_2").selfApprovalGranted).toBe(1);
    expect(sectionOf(d, "cc6_2").exceptions).toEqual(["1 approval(s) were granted by the requester on their own request: segregation of duties failed"]);
    const c = countsOf(d, "integrity");
    expect(c.gaps).toBe(1);
    expect(c.entries).toBe(seeded.auditRowsInWeek - 1);
    expect(String(c.verification)).toMatch(new RegExp(`^failed at seq ${mid}: missing`));
    expect(sectionOf(d, "integrity").status).toBe("exceptions");
    // The failed verification is told at once, with the command to look closer.
    const { chainFailureAlert } = await import("../../gateway/evidence/alert.js");
    expect(chainFailureAlert(d)).toMatchObject({ kind: "chain_verification_failed", title: expect.stringMatching(new RegExp(`does not verify: failed at seq ${mid}`)), command: expect.stringMatching(/^countersign verify --since /) });
  });
});

describe("one digest per week", () => {
  it("a complete week is stored and signed once, and every render reuses it; a partial week is never stored or signed", async () => {
    const { digestForWeek } = await import("../../gateway/evidence/generate.js");
    const { chainFailureAlert } = await import("../../gateway/evidence/alert.js");
    const week = parseIsoWeek("2026-W45", SEED_ZONE);
    const rows = async () => Number((await client.query(`SELECT count(*) AS n FROM digests WHERE week = '2026-W45'`)).rows[0].n);
    const first = await digestForWeek(client, { week, trigger: "on_demand", signer: key.signer, verifiers });
    const again = await digestForWeek(client, { week, trigger: "on_demand", signer: key.signer, verifiers });
    expect(first.reused).toBe(false);
    expect(again).toMatchObject({ reused: true, stored: { id: first.stored!.id } });
    expect(again.seal.sha256).toBe(first.seal.sha256);
    expect(await rows()).toBe(1);
    expect(JSON.parse(renderDigest(again.content, again.seal, "json")).digest).toEqual(JSON.parse(renderDigest(first.content, first.seal, "json")).digest);

    const current = lastCompleteWeek(new Date(Date.now() + 7 * 86_400_000), SEED_ZONE);
    const before = Number((await client.query(`SELECT count(*) AS n FROM digests`)).rows[0].n);
    const partial = await digestForWeek(client, { week: current, trigger: "on_demand", signer: key.signer, verifiers });
    expect(partial.stored).toBeUndefined();
    expect(partial).toMatchObject({ reused: false, content: { partial: true }, seal: { signature: null, keyId: null } });
    expect(Number((await client.query(`SELECT count(*) AS n FROM digests`)).rows[0].n)).toBe(before);
    expect(renderDigest(partial.content, partial.seal, "html")).toContain("Partial week: the week is not over");
    expect(renderDigest(partial.content, partial.seal, "md")).toContain("(partial week)");
    // A verified week raises no chain alert.
    expect(chainFailureAlert(first.content)).toBeUndefined();
  });
});
