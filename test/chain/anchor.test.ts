// Evidence that survives an insider: rows deleted while queued for sealing fail `verify` (a flag
// may accept them as a warning, never the default); checkpoints and the chain's head anchored
// outside the database (the checkpoint directory) let `verify` find the unvouched tail cut
// together with the last checkpoint; `--require-anchor` fails when nothing (recent) outside the
// database vouches for the chain.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type pg from "pg";
import { afterAll, beforeAll, beforeEach, expect, it } from "vitest";
import { takeCheckpoint, writeHeadAnchor } from "../../gateway/audit/chain/checkpoint.js";
import { closeChainClient, connectChainClient } from "../../gateway/store/chain/pg.js";
import { readHead, sealAll } from "../../gateway/audit/chain/sealer.js";
import { verifyChain } from "../../gateway/audit/chain/verify.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import * as t from "./lib.js";

let db: TestDatabase;
let client: pg.Client;
let dir: string;
const key = t.newKey("audit-2026");
const keys = t.keyMap(key.verifier);

beforeAll(async () => {
  db = await createTestDatabase();
  client = await connectChainClient(db.url);
});
afterAll(async () => {
  await closeChainClient(client);
  await db?.drop();
});
beforeEach(async () => {
  await t.resetAudit(client);
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = mkdtempSync(join(tmpdir(), "cs-anchor-"));
});

it("rows deleted while queued for sealing fail verify; --allow-missing turns that into a warning", async () => {
  await t.insertMessage(client, { n: 1 });
  const doomed = await t.insertMessage(client, { n: 2, secret: "evidence" });
  await t.insertMessage(client, { n: 3 });
  await client.query(`DELETE FROM messages WHERE id = $1`, [doomed]); // e.g. while the gateway is down
  await sealAll(client);
  const r = await verifyChain(client, { keys });
  expect(r.ok).toBe(false);
  expect(r.firstBad).toMatchObject({ seq: 2, kind: "missing" });
  expect(r.firstBad!.detail).toContain(`messages#${doomed}`);
  const allowed = await verifyChain(client, { keys, allowMissing: true });
  expect(allowed.ok).toBe(true);
  expect(allowed.warnings.join("\n")).toContain(`messages#${doomed}`);
});

it("the tail after the last checkpoint, cut together with that checkpoint, is found by the head anchored outside the database", async () => {
  for (let i = 0; i < 3; i++) await t.insertMessage(client, { i });
  await sealAll(client);
  await takeCheckpoint(client, key.signer, { directory: dir });
  for (let i = 0; i < 3; i++) await t.insertMessage(client, { tail: i });
  await sealAll(client);
  await takeCheckpoint(client, key.signer); // stored in the database only (its file copy failed)
  for (let i = 0; i < 2; i++) await t.insertMessage(client, { tail2: i });
  await sealAll(client);
  writeHeadAnchor(dir, await readHead(client), key.signer);
  expect((await verifyChain(client, { keys, checkpointsDir: dir, requireAnchor: true })).ok).toBe(true);

  // The insider cuts entries 4..8, their rows and the checkpoint that vouched for 6.
  await client.query(`DELETE FROM messages WHERE id IN (SELECT "sourceId"::bigint FROM audit_chain WHERE seq > 3)`);
  await client.query(`DELETE FROM audit_chain WHERE seq > 3`);
  await client.query(`DELETE FROM audit_checkpoints WHERE seq > 3`);
  // From the database alone the chain looks whole.
  expect((await verifyChain(client, { keys })).ok).toBe(true);
  const r = await verifyChain(client, { keys, checkpointsDir: dir });
  expect(r.ok).toBe(false);
  expect(r.firstBad).toMatchObject({ seq: 4, kind: "truncated" });
  expect(r.firstBad!.detail).toContain("head anchored outside the database");
});

it("a rewritten tail is found by the head anchor too", async () => {
  for (let i = 0; i < 4; i++) await t.insertMessage(client, { i });
  await sealAll(client);
  writeHeadAnchor(dir, await readHead(client), key.signer);
  // Re-hash the whole chain after changing a record: internally consistent again.
  const [, second] = await t.entries(client);
  await t.modifyRecord(client, second!);
  await t.rehashFrom(client, 1);
  expect((await verifyChain(client, { keys })).ok).toBe(true);
  const r = await verifyChain(client, { keys, checkpointsDir: dir });
  expect(r.ok).toBe(false);
  expect(r.firstBad!.kind).toBe("rewritten");
});

it("--require-anchor fails without an anchor outside the database, or with one too old to vouch for the tail", async () => {
  await t.insertMessage(client, { a: 1 });
  await sealAll(client);
  await takeCheckpoint(client, key.signer);
  expect((await verifyChain(client, { keys })).ok).toBe(true);
  const none = await verifyChain(client, { keys, requireAnchor: true });
  expect(none.firstBad).toMatchObject({ kind: "unanchored" });
  const empty = await verifyChain(client, { keys, requireAnchor: true, checkpointsDir: dir });
  expect(empty.firstBad).toMatchObject({ kind: "unanchored" });

  await takeCheckpoint(client, key.signer, { directory: dir });
  expect((await verifyChain(client, { keys, requireAnchor: true, checkpointsDir: dir, checkpointIntervalMinutes: 60 })).ok).toBe(true);
  const later = new Date(Date.now() + 3 * 3_600_000);
  const stale = await verifyChain(client, { keys, requireAnchor: true, checkpointsDir: dir, checkpointIntervalMinutes: 60, now: later });
  expect(stale.firstBad).toMatchObject({ kind: "unanchored" });
  // A forged head anchor (another key) is a failure, not a trust.
  writeHeadAnchor(dir, await readHead(client), t.newKey("audit-2026").signer);
  expect((await verifyChain(client, { keys, checkpointsDir: dir })).firstBad).toMatchObject({ kind: "forged_checkpoint" });
});
