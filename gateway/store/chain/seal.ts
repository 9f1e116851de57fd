// Appending to the chain: the head, and sealing queued rows in one transaction each (the sealer
// and the CLI call these; gateway/audit/chain/sealer.ts says how and when).
import type pg from "pg";
import { GENESIS_HASH, recordHash } from "../../audit/chain/canonical.js";
import { APPEND_LOCK_KEY, inTransaction } from "./pg.js";
import { fetchRecords, recordKey } from "./records.js";

export interface ChainHead {
  seq: bigint;
  hash: string;
}

/**
 * The chain's head: its last entry, or, when retention removed every entry, the checkpoint the
 * removal was cut at (the chain continues from the signed head).
 */
export async function readHead(client: pg.Client): Promise<ChainHead> {
  const res = await client.query<{ seq: string; hash: string }>(
    `SELECT seq::text, hash FROM (
       (SELECT seq, hash FROM audit_chain ORDER BY seq DESC LIMIT 1)
       UNION ALL
       (SELECT seq, head AS hash FROM audit_checkpoints ORDER BY seq DESC LIMIT 1)
     ) h ORDER BY h.seq DESC LIMIT 1`,
  );
  const row = res.rows[0];
  return row ? { seq: BigInt(row.seq), hash: row.hash } : { seq: 0n, hash: GENESIS_HASH };
}

/**
 * Seals up to `max` queued rows in one transaction; returns how many. Safe to call from any
 * process at any time: appends are serialised by a transaction-level advisory lock.
 */
export async function sealBatch(client: pg.Client, max = 1000): Promise<number> {
  return inTransaction(client, async () => {
    await client.query("SELECT pg_advisory_xact_lock($1)", [APPEND_LOCK_KEY.toString()]);
    const queued = await client.query<{ id: string; source: string; sourceId: string }>(
      `SELECT id::text, source, "sourceId" FROM audit_unsealed ORDER BY audit_unsealed.id LIMIT $1`,
      [max],
    );
    if (queued.rows.length === 0) return 0;
    const head = await readHead(client);
    const rows = await fetchRecords(client, queued.rows);
    const seqs: string[] = [];
    const hashes: string[] = [];
    const missing: boolean[] = [];
    let seq = head.seq;
    let prev = head.hash;
    for (const q of queued.rows) {
      const row = rows.get(recordKey(q.source, q.sourceId)) ?? null;
      seq += 1n;
      prev = recordHash(prev, { source: q.source, sourceId: q.sourceId, row });
      seqs.push(seq.toString());
      hashes.push(prev);
      missing.push(row === null);
    }
    await client.query(
      `INSERT INTO audit_chain (seq, source, "sourceId", hash, missing)
       SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::boolean[])`,
      [seqs, queued.rows.map((q) => q.source), queued.rows.map((q) => q.sourceId), hashes, missing],
    );
    await client.query(`DELETE FROM audit_unsealed WHERE id = ANY($1::bigint[])`, [queued.rows.map((q) => q.id)]);
    return queued.rows.length;
  });
}

/**
 * Seals until the queue is empty (or `maxRows` are sealed); returns how many. `onProgress`
 * (sealed so far, queued at the start) is for a person watching a long backlog (the CLI's bar).
 */
export async function sealAll(client: pg.Client, maxRows = Number.POSITIVE_INFINITY, batch = 1000, onProgress?: (done: number, total: number) => void): Promise<number> {
  const queued = onProgress ? Number((await client.query<{ n: string }>("SELECT count(*)::text AS n FROM audit_unsealed")).rows[0]?.n ?? 0) : 0;
  let total = 0;
  for (;;) {
    const n = await sealBatch(client, batch);
    total += n;
    onProgress?.(total, Math.max(queued, total));
    if (n < batch || total >= maxRows) return total;
  }
}

