// Property: for random histories, an untampered chain always verifies, and every kind of
// tampering (modify, delete, reorder, insert, truncate, forge a checkpoint) makes verify fail and
// name the first bad sequence number and what is wrong. Real PostgreSQL, real signatures.
import fc from "fast-check";
import type pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { GENESIS_HASH } from "../../gateway/audit/chain/canonical.js";
import { listCheckpoints, takeCheckpoint } from "../../gateway/audit/chain/checkpoint.js";
import { closeChainClient, connectChainClient } from "../../gateway/store/chain/pg.js";
import { sealBatch, sealAll } from "../../gateway/audit/chain/sealer.js";
import { verifyChain, type ProblemKind } from "../../gateway/audit/chain/verify.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import * as t from "./lib.js";

let db: TestDatabase;
let client: pg.Client;
const key = t.newKey("audit-2026");
const intruder = t.newKey("audit-2026");
const keys = t.keyMap(key.verifier);

beforeAll(async () => {
  db = await createTestDatabase();
  client = await connectChainClient(db.url);
});
afterAll(async () => {
  await closeChainClient(client);
  await db?.drop();
});

const text = fc.string({ maxLength: 12 }).map((s) => s.replace(/\u0000/g, ""));
const value = fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), text, fc.boolean(), fc.constant(null));
const payload = fc.dictionary(text, fc.oneof(value, fc.array(value, { maxLength: 3 })), { maxKeys: 4 });
type Step = { t: "message"; payload: unknown } | { t: "event"; detail: unknown } | { t: "seal"; max: number } | { t: "checkpoint" };
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: payload.map((p) => ({ t: "message" as const, payload: p })) },
  { weight: 2, arbitrary: payload.map((d) => ({ t: "event" as const, detail: d })) },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 5 }).map((max) => ({ t: "seal" as const, max })) },
  { weight: 1, arbitrary: fc.constant({ t: "checkpoint" as const }) },
);
// At least three records, so there is something to reorder.
const history = fc.tuple(fc.array(step, { maxLength: 25 }), fc.array(payload, { minLength: 3, maxLength: 3 }));

async function replay([steps, base]: [Step[], unknown[]], finalCheckpoint: boolean): Promise<void> {
  await t.resetAudit(client);
  for (const p of base) await t.insertMessage(client, p);
  for (const s of steps) {
    if (s.t === "message") await t.insertMessage(client, s.payload);
    else if (s.t === "event") await t.insertEvent(client, s.detail);
    else if (s.t === "seal") await sealBatch(client, s.max);
    else await takeCheckpoint(client, key.signer);
  }
  await sealAll(client);
  if (finalCheckpoint) await takeCheckpoint(client, key.signer);
}

it("an untampered history always verifies, over its whole range", async () => {
  await fc.assert(
    fc.asyncProperty(history, fc.boolean(), async (h, final) => {
      await replay(h, final);
      const n = (await t.entries(client)).length;
      const r = await verifyChain(client, { keys });
      expect(r.problems).toEqual([]);
      expect(r.ok).toBe(true);
      expect(r.range).toMatchObject({ from: 1, to: n, records: n });
      expect(r.unsealed.count).toBe(0);
    }),
    { numRuns: 30 },
  );
}, 60_000);

type Tamper =
  | { kind: "modify"; a: number }
  | { kind: "delete_record"; a: number }
  | { kind: "delete_entry"; a: number }
  | { kind: "reorder"; a: number; b: number }
  | { kind: "insert"; a: number; rehash: boolean }
  | { kind: "truncate"; a: number }
  | { kind: "forge"; a: number; mode: t.ForgeMode };

const tamper: fc.Arbitrary<Tamper> = fc.oneof(
  fc.record({ kind: fc.constant("modify" as const), a: fc.nat() }),
  fc.record({ kind: fc.constant("delete_record" as const), a: fc.nat() }),
  fc.record({ kind: fc.constant("delete_entry" as const), a: fc.nat() }),
  fc.record({ kind: fc.constant("reorder" as const), a: fc.nat(), b: fc.nat() }),
  fc.record({ kind: fc.constant("insert" as const), a: fc.nat(), rehash: fc.boolean() }),
  fc.record({ kind: fc.constant("truncate" as const), a: fc.nat() }),
  fc.record({ kind: fc.constant("forge" as const), a: fc.nat(), mode: fc.constantFrom<t.ForgeMode>("head", "foreign_key", "signature", "unknown_key") }),
);

/** Applies the tampering; returns the first bad sequence number and the kind verify must report. */
async function apply(x: Tamper): Promise<{ seq: number; kind: ProblemKind }> {
  const all = await t.entries(client);
  const n = all.length;
  const at = (seq: number) => all[seq - 1]!;
  switch (x.kind) {
    case "modify": {
      const s = 1 + (x.a % n);
      await t.modifyRecord(client, at(s));
      return { seq: s, kind: "modified" };
    }
    case "delete_record": {
      const s = 1 + (x.a % n);
      await t.deleteRecord(client, at(s));
      return { seq: s, kind: "missing" };
    }
    case "delete_entry": {
      const s = 1 + (x.a % (n - 1)); // not the last: that one is the truncate case
      await t.deleteEntryAndRecord(client, at(s));
      return { seq: s, kind: "missing" };
    }
    case "reorder": {
      const s = 1 + (x.a % (n - 1));
      const u = s + 1 + (x.b % (n - s));
      await t.swapRecords(client, at(s), at(u));
      return { seq: s, kind: "reordered" };
    }
    case "insert": {
      const s = 1 + (x.a % n);
      await t.insertForged(client, s, s === 1 ? GENESIS_HASH : at(s - 1).hash, x.rehash);
      return { seq: s, kind: "inserted" };
    }
    case "truncate": {
      const keep = x.a % n;
      await t.truncateAfter(client, keep);
      return { seq: keep + 1, kind: "truncated" };
    }
    case "forge": {
      const cps = await listCheckpoints(client);
      const cp = cps[x.a % cps.length]!;
      await t.forgeCheckpoint(client, cp.id, x.mode, intruder.signer);
      return { seq: cp.body.sequence, kind: "forged_checkpoint" };
    }
  }
}

it("any tampering fails verification and names the first bad sequence and what is wrong", async () => {
  await fc.assert(
    fc.asyncProperty(history, tamper, async (h, x) => {
      await replay(h, true);
      const expected = await apply(x);
      const r = await verifyChain(client, { keys });
      expect(r.ok).toBe(false);
      expect({ seq: r.firstBad?.seq, kind: r.firstBad?.kind }).toEqual(expected);
      // The range reported as verified never includes the bad entry.
      if (expected.kind !== "forged_checkpoint") expect(r.range?.to ?? 0).toBeLessThan(expected.seq);
    }),
    { numRuns: 120 },
  );
}, 60_000);
