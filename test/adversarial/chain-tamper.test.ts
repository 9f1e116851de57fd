// An insider with SQL access edits the record: for every chained table (messages, events,
// sessions, approval requests, approval votes), an update of a sealed column, a deletion, and a
// reordering of chain entries are each found by `verify`, which names the sequence number and
// what happened; legitimate later changes (a session closing, a request decided) are not.
import fc from "fast-check";
import type pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { closeChainClient, connectChainClient } from "../../gateway/store/chain/pg.js";
import { sealAll } from "../../gateway/audit/chain/sealer.js";
import { verifyChain } from "../../gateway/audit/chain/verify.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import * as t from "../chain/lib.js";

let db: TestDatabase;
let client: pg.Client;
const keys = new Map();

beforeAll(async () => {
  db = await createTestDatabase();
  client = await connectChainClient(db.url);
});
afterAll(async () => {
  await closeChainClient(client);
  await db?.drop();
});

/** One row of every chained table, sealed, then the legitimate changes a running gateway makes. */
async function history(): Promise<void> {
  await t.resetAudit(client);
  await client.query(`INSERT INTO instances (id, host, pid, version) VALUES ('i1', 'h', 1, 'v') ON CONFLICT DO NOTHING`);
  await client.query(`INSERT INTO sessions (id, connection, "frontTransport", "upstreamKind", "ownerInstanceId", subject, issuer) VALUES ('s1', 'ops', 'streamable_http', 'stdio', 'i1', 'alice', 'https://idp')`);
  await t.insertMessage(client, { call: 1 });
  await client.query(
    `INSERT INTO approval_requests (id, "sessionId", connection, tool, "argumentsHash", "maskedArguments", "requesterSubject", "requesterIssuer", "requesterKind", "approverGroup", "expiresAt")
     VALUES ('apr_1', 's1', 'ops', 'deploy', 'h', '{}', 'alice', 'https://idp', 'user', 'oncall', now() + interval '1 hour')`,
  );
  await client.query(`INSERT INTO approval_votes ("requestId", approver, decision, via) VALUES ('apr_1', 'bob@example.com', 'approve', 'slack')`);
  await t.insertEvent(client, { approved: "apr_1" });
  await t.insertMessage(client, { call: 2 });
  await sealAll(client);
  await client.query(`UPDATE approval_requests SET status = 'approved', "decidedBy" = 'bob@example.com', "decidedAt" = now(), "forwardedAt" = now() WHERE id = 'apr_1'`);
  await client.query(`UPDATE sessions SET "closedAt" = now(), "closeReason" = 'client_closed' WHERE id = 's1'`);
}

const UPDATES: Record<string, string> = {
  messages: `UPDATE messages SET payload = '{"call": 99}' WHERE id = (SELECT min(id) FROM messages)`,
  events: `UPDATE events SET reason = 'allow' WHERE id = (SELECT min(id) FROM events)`,
  sessions: `UPDATE sessions SET subject = 'mallory' WHERE id = 's1'`,
  approval_requests: `UPDATE approval_requests SET "requesterSubject" = 'bob' WHERE id = 'apr_1'`,
  approval_votes: `UPDATE approval_votes SET approver = 'alice@example.com'`,
};
const DELETES: Record<string, string> = {
  messages: `DELETE FROM messages WHERE id = (SELECT min(id) FROM messages)`,
  events: `DELETE FROM events WHERE id = (SELECT min(id) FROM events)`,
  // Rows others point at go with what points at them, as an insider would have to do.
  sessions: `UPDATE messages SET "sessionId" = NULL; UPDATE approval_requests SET "sessionId" = NULL; DELETE FROM sessions WHERE id = 's1'`,
  approval_requests: `DELETE FROM approval_votes; DELETE FROM approval_requests WHERE id = 'apr_1'`,
  approval_votes: `DELETE FROM approval_votes`,
};

it("legitimate later changes leave the chain valid", async () => {
  await history();
  const r = await verifyChain(client, { keys });
  expect(r.ok, JSON.stringify(r.problems)).toBe(true);
  expect(r.range?.records).toBe(6);
});

it("an update, a deletion or a reordering in any chained table is found, at its sequence number", async () => {
  const tables = Object.keys(UPDATES);
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...tables), fc.constantFrom("update", "delete", "reorder"), fc.constantFrom(...tables), async (table, how, other) => {
      await history();
      const es = await t.entries(client);
      const target = es.find((e) => e.source === table)!;
      if (how === "update") await client.query(UPDATES[table]!);
      else if (how === "delete") await client.query(DELETES[table]!);
      else {
        const swapWith = es.find((e) => e.source === other && e.seq !== target.seq) ?? es.find((e) => e.seq !== target.seq)!;
        await t.swapRecords(client, target, swapWith);
      }
      const r = await verifyChain(client, { keys });
      expect(r.ok, `${how} ${table}`).toBe(false);
      const expected = how === "update" ? ["modified"] : how === "delete" ? ["missing", "modified"] : ["reordered", "modified"];
      expect(expected, `${how} ${table}: ${JSON.stringify(r.firstBad)}`).toContain(r.firstBad!.kind);
      if (how !== "reorder") expect(r.firstBad!.seq, `${how} ${table}`).toBeLessThanOrEqual(target.seq);
    }),
    { numRuns: 30, seed: 13 },
  );
});
