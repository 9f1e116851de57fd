// Existing evidence keeps verifying: a database written with the chain as it was before sessions
// and approvals joined it (every migration before 20261204120000), sealed and checkpointed, is
// upgraded with the new migration; `verify` still passes over the old entries and the rows that
// joined; legitimate later changes (a session closes, a request is decided) keep it passing; and
// tampering with who owned a session, who asked, or who voted is then caught.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { takeCheckpoint } from "../../gateway/audit/chain/checkpoint.js";
import { closeChainClient, connectChainClient } from "../../gateway/store/chain/pg.js";
import { sealAll } from "../../gateway/audit/chain/sealer.js";
import { verifyChain } from "../../gateway/audit/chain/verify.js";
import { adminQuery, adminUrl, ROOT, withDatabase } from "../helpers/postgres.js";
import * as t from "./lib.js";

const UPGRADE = "20261204120000_hardening_evidence";
const name = `t_${Math.floor(Date.now() / 1000)}_upgrade_${process.pid}`;
const url = withDatabase(adminUrl(), name);
let client: pg.Client;
const key = t.newKey("audit-2026");
const keys = t.keyMap(key.verifier);

const migrations = readdirSync(join(ROOT, "prisma", "migrations"))
  .filter((d) => !d.endsWith(".toml"))
  .sort();
const sqlOf = (d: string) => readFileSync(join(ROOT, "prisma", "migrations", d, "migration.sql"), "utf8");

beforeAll(async () => {
  await adminQuery(`CREATE DATABASE ${name}`);
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  for (const d of migrations.filter((m) => m < UPGRADE)) await c.query(sqlOf(d));
  await c.end();
  client = await connectChainClient(url);
});
afterAll(async () => {
  await closeChainClient(client);
  await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
});

const verify = () => verifyChain(client, { keys });

it("verifies before and after the upgrade, over old and new entries, and catches tampering of sessions and approvals after it", async () => {
  // Written as today's release writes it.
  await client.query(`INSERT INTO instances (id, host, pid, version) VALUES ('i1', 'h', 1, 'v1')`);
  await client.query(`INSERT INTO sessions (id, connection, "frontTransport", "upstreamKind", "ownerInstanceId", subject, issuer, email) VALUES ('s1', 'prod-db', 'streamable_http', 'stdio', 'i1', 'alice', 'https://idp', 'alice@example.com')`);
  for (let i = 0; i < 5; i++) await t.insertMessage(client, { n: i });
  await t.insertEvent(client, { rule: "r" });
  await client.query(
    `INSERT INTO approval_requests (id, "sessionId", connection, tool, "argumentsHash", "maskedArguments", "requesterSubject", "requesterIssuer", "requesterKind", "approverGroup", "expiresAt")
     VALUES ('apr_old', 's1', 'prod-db', 'deploy', 'h', '{}', 'alice', 'https://idp', 'user', 'oncall', now() + interval '1 hour')`,
  );
  await client.query(`INSERT INTO approval_votes ("requestId", approver, decision, via) VALUES ('apr_old', 'bob@example.com', 'approve', 'slack')`);
  await sealAll(client);
  await takeCheckpoint(client, key.signer);
  const before = await verify();
  expect(before.ok, JSON.stringify(before.problems)).toBe(true);
  const sealedBefore = before.range!.to;

  // The upgrade.
  await client.query(sqlOf(UPGRADE));
  await sealAll(client);
  const after = await verify();
  expect(after.ok, JSON.stringify(after.problems)).toBe(true);
  expect(after.range).toMatchObject({ from: 1, to: sealedBefore + 3 });
  const joined = await client.query<{ source: string }>(`SELECT source FROM audit_chain WHERE seq > $1 ORDER BY seq`, [sealedBefore]);
  expect(joined.rows.map((r) => r.source)).toEqual(["sessions", "approval_requests", "approval_votes"]);

  // New rows join as they are written; legitimate later changes leave the chain valid.
  await client.query(
    `INSERT INTO approval_requests (id, "sessionId", connection, tool, "argumentsHash", "maskedArguments", "requesterSubject", "requesterIssuer", "requesterKind", "approverGroup", "expiresAt")
     VALUES ('apr_new', 's1', 'prod-db', 'drop', 'h2', '{}', 'alice', 'https://idp', 'user', 'dba', now() + interval '1 hour')`,
  );
  await client.query(`INSERT INTO approval_votes ("requestId", approver, decision, via) VALUES ('apr_new', 'carol@example.com', 'deny', 'slack')`);
  await client.query(`UPDATE approval_requests SET status = 'denied', "decidedAt" = now(), "decidedBy" = 'carol@example.com', "slackTs" = '1.2' WHERE id = 'apr_new'`);
  await client.query(`UPDATE sessions SET "closedAt" = now(), "closeReason" = 'client_closed' WHERE id = 's1'`);
  await sealAll(client);
  await takeCheckpoint(client, key.signer);
  expect((await verify()).ok).toBe(true);

  // Tampering, each undone before the next.
  const tamper = async (sql: string, undo: string, seqOf: string) => {
    const seq = Number((await client.query<{ seq: string }>(`SELECT seq::text FROM audit_chain WHERE source || '#' || "sourceId" = $1`, [seqOf])).rows[0]!.seq);
    await client.query(sql);
    const r = await verify();
    await client.query(undo);
    return { r, seq };
  };
  const owner = await tamper(`UPDATE sessions SET subject = 'mallory' WHERE id = 's1'`, `UPDATE sessions SET subject = 'alice' WHERE id = 's1'`, "sessions#s1");
  expect(owner.r.ok).toBe(false);
  expect(owner.r.firstBad).toMatchObject({ seq: owner.seq, kind: "modified" });
  const voter = await tamper(`UPDATE approval_votes SET approver = 'alice@example.com' WHERE "requestId" = 'apr_old'`, `UPDATE approval_votes SET approver = 'bob@example.com' WHERE "requestId" = 'apr_old'`, "approval_votes#1");
  expect(voter.r.firstBad).toMatchObject({ seq: voter.seq, kind: "modified" });
  const asker = await tamper(`UPDATE approval_requests SET "requesterSubject" = 'bob', "approverGroup" = 'nobody' WHERE id = 'apr_new'`, `UPDATE approval_requests SET "requesterSubject" = 'alice', "approverGroup" = 'dba' WHERE id = 'apr_new'`, "approval_requests#apr_new");
  expect(asker.r.firstBad).toMatchObject({ seq: asker.seq, kind: "modified" });
  expect((await verify()).ok).toBe(true);

  // A vote removed (and the rows after it left in place) is missing.
  const voteSeq = Number((await client.query<{ seq: string }>(`SELECT seq::text FROM audit_chain WHERE source = 'approval_votes' ORDER BY audit_chain.seq DESC LIMIT 1`)).rows[0]!.seq);
  await client.query(`DELETE FROM approval_votes WHERE "requestId" = 'apr_new'`);
  const gone = await verify();
  expect(gone.firstBad).toMatchObject({ seq: voteSeq, kind: "missing" });
});
