// Shared by the audit chain tests: signing keys, writing audit rows, and the ways an attacker
// with write access to the database might alter the record.
import { createPublicKey, generateKeyPairSync, randomBytes } from "node:crypto";
import type pg from "pg";
import { recordHash } from "../../gateway/audit/chain/canonical.js";
import type { SignerKey, VerifierKey } from "../../gateway/audit/chain/keys.js";

export function newKey(id: string, window: { notBefore?: Date; notAfter?: Date } = {}): { signer: SignerKey; verifier: VerifierKey; pem: string; publicPem: string } {
  const { privateKey } = generateKeyPairSync("ed25519");
  return {
    signer: { id, key: privateKey },
    verifier: { id, key: createPublicKey(privateKey), ...window },
    pem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicPem: createPublicKey(privateKey).export({ type: "spki", format: "pem" }).toString(),
  };
}

export function keyMap(...keys: VerifierKey[]): Map<string, VerifierKey> {
  return new Map(keys.map((k) => [k.id, k]));
}

export async function resetAudit(client: pg.Client): Promise<void> {
  // Sessions and approvals are chained too: they go with the rest.
  await client.query(`TRUNCATE messages, events, approval_votes, approval_requests, sessions, audit_chain, audit_unsealed, audit_checkpoints RESTART IDENTITY`);
}

export async function insertMessage(client: pg.Client, payload: unknown, extra: { method?: string } = {}): Promise<string> {
  const res = await client.query<{ id: string }>(
    `INSERT INTO messages ("connection", "direction", "origin", "kind", "method", "size", "payload") VALUES ('everything', 'in', 'client', 'request', $1, $2, $3::jsonb) RETURNING id::text`,
    [extra.method ?? "tools/call", JSON.stringify(payload).length, JSON.stringify(payload)],
  );
  return res.rows[0]!.id;
}

export async function insertEvent(client: pg.Client, detail: unknown): Promise<string> {
  const res = await client.query<{ id: string }>(`INSERT INTO events (type, reason, detail) VALUES ('policy_decision', 'block', $1::jsonb) RETURNING id::text`, [JSON.stringify(detail)]);
  return res.rows[0]!.id;
}

export interface EntryRef {
  seq: number;
  source: string;
  sourceId: string;
  hash: string;
}

export async function entries(client: pg.Client): Promise<EntryRef[]> {
  const res = await client.query<{ seq: string; source: string; sourceId: string; hash: string }>(`SELECT seq::text, source, "sourceId", hash FROM audit_chain ORDER BY audit_chain.seq`);
  return res.rows.map((r) => ({ seq: Number(r.seq), source: r.source, sourceId: r.sourceId, hash: r.hash }));
}

// ---- Tampering, as someone with SQL access to the audit database would do it ----

/** Changes the content of the record sealed at `seq`. */
export async function modifyRecord(client: pg.Client, e: EntryRef): Promise<void> {
  const mark = randomBytes(6).toString("hex");
  if (e.source === "messages") await client.query(`UPDATE messages SET payload = jsonb_build_object('tampered', $1::text) WHERE id = $2::bigint`, [mark, e.sourceId]);
  else await client.query(`UPDATE events SET reason = 'allow', detail = jsonb_build_object('tampered', $1::text) WHERE id = $2::bigint`, [mark, e.sourceId]);
}

export async function deleteRecord(client: pg.Client, e: EntryRef): Promise<void> {
  await client.query(`DELETE FROM ${e.source} WHERE id = $1::bigint`, [e.sourceId]);
}

export async function deleteEntryAndRecord(client: pg.Client, e: EntryRef): Promise<void> {
  await deleteRecord(client, e);
  await client.query(`DELETE FROM audit_chain WHERE seq = $1`, [e.seq]);
}

/** Swaps the positions of two sealed records. */
export async function swapRecords(client: pg.Client, a: EntryRef, b: EntryRef): Promise<void> {
  await client.query(`UPDATE audit_chain SET "sourceId" = 'swapping' WHERE seq = $1`, [a.seq]);
  await client.query(`UPDATE audit_chain SET source = $2, "sourceId" = $3 WHERE seq = $1`, [b.seq, a.source, a.sourceId]);
  await client.query(`UPDATE audit_chain SET source = $2, "sourceId" = $3 WHERE seq = $1`, [a.seq, b.source, b.sourceId]);
}

/**
 * Slips a forged record in at position `seq`, renumbering the entries after it. `rehash`: the
 * forged entry's own hash is computed properly from its predecessor (a careful forger).
 */
export async function insertForged(client: pg.Client, seq: number, previousHash: string, rehash: boolean): Promise<void> {
  const id = await insertMessage(client, { forged: randomBytes(6).toString("hex") });
  await client.query(`DELETE FROM audit_unsealed WHERE source = 'messages' AND "sourceId" = $1`, [id]);
  await client.query(`UPDATE audit_chain SET seq = -(seq + 1) WHERE seq >= $1`, [seq]);
  await client.query(`UPDATE audit_chain SET seq = -seq WHERE seq < 0`);
  const row = (await client.query<{ row: Record<string, unknown> }>(`SELECT to_jsonb(t) AS row FROM messages t WHERE id = $1::bigint`, [id])).rows[0]!.row;
  const hash = rehash ? recordHash(previousHash, { source: "messages", sourceId: id, row }) : randomBytes(32).toString("hex");
  await client.query(`INSERT INTO audit_chain (seq, source, "sourceId", hash) VALUES ($1, 'messages', $2, $3)`, [seq, id, hash]);
}

/** Removes every entry after `seq`, and the records. */
export async function truncateAfter(client: pg.Client, seq: number): Promise<void> {
  for (const source of ["messages", "events"]) {
    await client.query(`DELETE FROM ${source} t WHERE t.id::text IN (SELECT "sourceId" FROM audit_chain WHERE source = $1 AND seq > $2)`, [source, seq]);
  }
  await client.query(`DELETE FROM audit_chain WHERE seq > $1`, [seq]);
}

export type ForgeMode = "head" | "foreign_key" | "signature" | "unknown_key";

/** Alters a stored checkpoint. */
export async function forgeCheckpoint(client: pg.Client, id: string, mode: ForgeMode, foreign: SignerKey): Promise<void> {
  const fake = randomBytes(32).toString("hex");
  if (mode === "head") await client.query(`UPDATE audit_checkpoints SET head = $2 WHERE id = $1::bigint`, [id, fake]);
  if (mode === "signature") await client.query(`UPDATE audit_checkpoints SET signature = $2 WHERE id = $1::bigint`, [id, randomBytes(64).toString("base64")]);
  if (mode === "unknown_key") await client.query(`UPDATE audit_checkpoints SET "keyId" = 'someone-else' WHERE id = $1::bigint`, [id]);
  if (mode === "foreign_key") {
    // A well-formed checkpoint over a different head, signed by a key nobody published, under the real key's id.
    const { signCheckpointBody } = await import("../../gateway/audit/chain/checkpoint.js");
    const row = (await client.query<{ seq: string; at: Date; previous: string | null; keyId: string }>(`SELECT seq::text, at, previous, "keyId" FROM audit_checkpoints WHERE id = $1::bigint`, [id])).rows[0]!;
    const body = { v: 1 as const, sequence: Number(row.seq), head: fake, time: row.at.toISOString(), previous: row.previous, keyId: row.keyId };
    await client.query(`UPDATE audit_checkpoints SET head = $2, signature = $3 WHERE id = $1::bigint`, [id, fake, signCheckpointBody(body, foreign)]);
  }
}

/** Polls `probe` until it returns something truthy, failing after `timeoutMs` with what it waited for. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Recomputes every stored hash from `fromSeq` on, as a careful forger would after editing records. */
export async function rehashFrom(client: pg.Client, fromSeq: number): Promise<void> {
  const { fetchRecords, recordKey } = await import("../../gateway/store/chain/records.js");
  const all = await entries(client);
  let prev = fromSeq > 1 ? all.find((e) => e.seq === fromSeq - 1)!.hash : "0".repeat(64);
  const rows = await fetchRecords(client, all);
  for (const e of all.filter((x) => x.seq >= fromSeq)) {
    prev = recordHash(prev, { source: e.source, sourceId: e.sourceId, row: rows.get(recordKey(e.source, e.sourceId)) ?? null });
    await client.query(`UPDATE audit_chain SET hash = $2 WHERE seq = $1`, [e.seq, prev]);
  }
}
