// The configuration's history: one config_changed/applied event per transition, written by
// gateway/config/reload.ts.
import type { Db } from "./client.js";

/**
 * Records that the configuration `hash` is in force, unless the last applied one already is:
 * replicas applying the same change race for an advisory lock, and the loser sees the winner's row.
 */
export async function recordConfigApplied(db: Db, hash: string, subject: string | null, detail: Record<string, unknown>): Promise<void> {
  await db.$transaction(async (tx) => {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext('countersign-config-change'))`;
    // At start there is no "previous" of our own: the last applied configuration in the record is.
    const last = await tx.$queryRaw<Array<{ hash: string | null }>>`
      SELECT detail->>'hash' AS hash FROM events WHERE type = 'config_changed' AND reason = 'applied' ORDER BY id DESC LIMIT 1`;
    if (last[0]?.hash === hash) return;
    await tx.$executeRaw`INSERT INTO events (type, reason, subject, detail) VALUES ('config_changed', 'applied', ${subject}, ${JSON.stringify(detail)}::jsonb)`;
  });
}
