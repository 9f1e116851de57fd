// What `verify` reads of the chain (gateway/audit/chain/verify.ts judges it).
import type pg from "pg";
import { quoteIdent } from "../../audit/chain/sources.js";
import { idType } from "./pg.js";

export interface Entry {
  seq: number;
  source: string;
  sourceId: string;
  hash: string;
  missing: boolean;
  sealedAt: Date;
}

const ENTRY_COLUMNS = `seq::text AS seq, source, "sourceId", hash, missing, "sealedAt"`;
type EntryRow = { seq: string; source: string; sourceId: string; hash: string; missing: boolean; sealedAt: Date };
const toEntry = (r: EntryRow): Entry => ({ seq: Number(r.seq), source: r.source, sourceId: r.sourceId, hash: r.hash, missing: r.missing, sealedAt: r.sealedAt });
const num = (v: string | null | undefined): number | null => (v ? Number(v) : null);

/** Entries with after < seq <= through, in order, at most `limit`. */
export async function entriesAfter(client: pg.Client, after: number, through: number, limit: number): Promise<Entry[]> {
  const res = await client.query<EntryRow>(`SELECT ${ENTRY_COLUMNS} FROM audit_chain WHERE seq > $1 AND seq <= $2 ORDER BY audit_chain.seq LIMIT $3`, [after, through, limit]);
  return res.rows.map(toEntry);
}

/** The first and last sequence numbers kept (null when the chain is empty). */
export async function chainBounds(client: pg.Client): Promise<{ min: number | null; max: number | null }> {
  const bounds = await client.query<{ min: string | null; max: string | null }>(`SELECT min(seq)::text AS min, max(seq)::text AS max FROM audit_chain`);
  return { min: num(bounds.rows[0]?.min), max: num(bounds.rows[0]?.max) };
}

/** How far the sealed retention records say the chain was cut (null: no such record). */
export async function sealedRetentionThrough(client: pg.Client): Promise<number | null> {
  const retention = await client.query<{ through: string | null }>(
    `SELECT max((e.detail->>'throughSequence')::bigint)::text AS through FROM events e
     WHERE e.type = 'audit_retention' AND EXISTS (SELECT 1 FROM audit_chain c WHERE c.source = 'events' AND c."sourceId" = e.id::text)`,
  );
  return num(retention.rows[0]?.through);
}

/** The last sequence number sealed at or before `until` (null: none). */
export async function lastSeqSealedBy(client: pg.Client, until: Date): Promise<number | null> {
  const res = await client.query<{ max: string | null }>(`SELECT max(seq)::text AS max FROM audit_chain WHERE "sealedAt" <= $1`, [until]);
  return num(res.rows[0]?.max);
}

/** The stored hash at `seq`, if that entry is kept. */
export async function hashAt(client: pg.Client, seq: number): Promise<string | undefined> {
  const res = await client.query<{ hash: string }>(`SELECT hash FROM audit_chain WHERE seq = $1`, [seq]);
  return res.rows[0]?.hash;
}

/** When the entry at `seq` was sealed, if it is kept. */
export async function sealedAtOf(client: pg.Client, seq: number): Promise<Date | undefined> {
  const res = await client.query<{ at: Date }>(`SELECT "sealedAt" AS at FROM audit_chain WHERE seq = $1`, [seq]);
  return res.rows[0]?.at;
}

/** Every table with the enqueue trigger: the chain's sources. */
export async function sourcesInUse(client: pg.Client): Promise<string[]> {
  const res = await client.query<{ table: string }>(
    `SELECT DISTINCT c.relname AS table FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid
     WHERE p.proname = 'audit_enqueue' AND NOT t.tgisinternal ORDER BY 1`,
  );
  return res.rows.map((r) => r.table);
}

/** Ids of a source's rows in neither the chain nor the seal queue (at most `limit`; none for a dropped table). */
export async function rowsOutsideChain(client: pg.Client, source: string, limit: number): Promise<string[]> {
  const type = await idType(client, source).catch(() => undefined);
  if (!type) return [];
  const res = await client.query<{ id: string }>(
    `SELECT t."id"::text AS id FROM ${quoteIdent(source)} t
     WHERE NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.source = $1 AND c."sourceId" = t."id"::text)
       AND NOT EXISTS (SELECT 1 FROM audit_unsealed q WHERE q.source = $1 AND q."sourceId" = t."id"::text)
     ORDER BY t."id" LIMIT ${Number(limit)}`,
    [source],
  );
  return res.rows.map((r) => r.id);
}

/** The seal queue: how many rows wait, and since when. */
export async function unsealedQueue(client: pg.Client): Promise<{ count: number; oldest: Date | null }> {
  const queue = await client.query<{ n: string; oldest: Date | null }>(`SELECT count(*)::text AS n, min("queuedAt") AS oldest FROM audit_unsealed`);
  return { count: Number(queue.rows[0]?.n ?? 0), oldest: queue.rows[0]?.oldest ?? null };
}
