// Retention: audit records older than `retentionDays` may be deleted, but only up to a signed
// checkpoint (the newest one taken before the cut-off), so the chain that remains starts at a
// signed head and verifies from there. The deletion is itself an audit record (an
// `audit_retention` event, which joins the chain), written in the same transaction as the delete.
import type pg from "pg";
import { APPEND_LOCK_KEY, idType, inTransaction } from "./pg.js";
import { KEPT_BY_RETENTION, quoteIdent } from "../../audit/chain/sources.js";

export interface RetentionResult {
  /** Everything up to this sequence number was deleted; null when nothing was due. */
  throughSequence: number | null;
  checkpointId?: string;
  deleted: Record<string, number>;
}

export async function purgeExpired(client: pg.Client, retentionDays: number, now = new Date()): Promise<RetentionResult> {
  const cutoff = new Date(now.getTime() - retentionDays * 86_400_000);
  return inTransaction(client, async () => {
    await client.query("SELECT pg_advisory_xact_lock($1)", [APPEND_LOCK_KEY.toString()]);
    const cp = await client.query<{ id: string; seq: string }>(
      `SELECT id::text, seq::text FROM audit_checkpoints WHERE at <= $1 AND seq > 0 ORDER BY audit_checkpoints.seq DESC, audit_checkpoints.id DESC LIMIT 1`,
      [cutoff],
    );
    const anchor = cp.rows[0];
    if (!anchor) return { throughSequence: null, deleted: {} };
    const pending = await client.query<{ source: string; n: string }>(
      `SELECT source, count(*)::text AS n FROM audit_chain WHERE seq <= $1 GROUP BY source ORDER BY source`,
      [anchor.seq],
    );
    if (pending.rows.length === 0) return { throughSequence: null, deleted: {} };
    const deleted: Record<string, number> = {};
    for (const { source } of pending.rows) {
      const type = await idType(client, source).catch(() => undefined);
      if (!type) continue;
      if (KEPT_BY_RETENTION.has(source)) {
        // Kept (records still point at them), so they stay under the chain: sealed again at the head.
        await client.query(
          `INSERT INTO audit_unsealed (source, "sourceId") SELECT c.source, c."sourceId" FROM audit_chain c
           WHERE c.source = $1 AND c.seq <= $2 AND NOT c.missing ORDER BY c.seq`,
          [source, anchor.seq],
        );
        continue;
      }
      const res = await client.query(
        `DELETE FROM ${quoteIdent(source)} t WHERE t."id" IN (SELECT c."sourceId"::${type} FROM audit_chain c WHERE c.source = $1 AND c.seq <= $2 AND NOT c.missing)`,
        [source, anchor.seq],
      );
      deleted[source] = res.rowCount ?? 0;
    }
    await client.query(`DELETE FROM audit_chain WHERE seq <= $1`, [anchor.seq]);
    const detail = { throughSequence: Number(anchor.seq), checkpointId: anchor.id, cutoff: cutoff.toISOString(), retentionDays, deleted };
    await client.query(`INSERT INTO events (type, reason, detail) VALUES ('audit_retention', 'purged', $1::jsonb)`, [JSON.stringify(detail)]);
    return { throughSequence: Number(anchor.seq), checkpointId: anchor.id, deleted };
  });
}
