// Digests in PostgreSQL (table `digests`): each generation is stored with its seal, and recorded
// in the same transaction as a `digest_generated` event, which the audit chain seals.
import type pg from "pg";
import { inTransaction } from "./chain/pg.js";
import type { DigestContent } from "../evidence/digest.js";
import type { DigestSeal } from "../evidence/sign.js";

/** A connection or a pool: what a single statement needs. */
type Queryable = pg.ClientBase | pg.Pool;

export interface StoredDigest {
  id: string;
  week: string;
  timeZone: string;
  trigger: "scheduled" | "on_demand";
  generatedAt: Date;
  content: DigestContent;
  sha256: string;
  signature: string | null;
  keyId: string | null;
  postedAt: Date | null;
  slackChannel: string | null;
  slackTs: string | null;
}

const COLUMNS = `id::text, week, "timeZone", trigger, "generatedAt", content, sha256, signature, "keyId", "postedAt", "slackChannel", "slackTs"`;

export async function storeDigest(
  client: pg.Client,
  content: DigestContent,
  seal: DigestSeal,
  trigger: "scheduled" | "on_demand",
): Promise<StoredDigest> {
  return inTransaction(client, async () => {
    const res = await client.query<StoredDigest>(
      `INSERT INTO digests (week, "timeZone", trigger, "generatedAt", "generatedBy", content, sha256, signature, "keyId")
       VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9) RETURNING ${COLUMNS}`,
      [content.week, content.timeZone, trigger, content.generatedAt, content.generatedBy, JSON.stringify(content), seal.sha256, seal.signature, seal.keyId],
    );
    const row = res.rows[0]!;
    await client.query(`INSERT INTO events (type, reason, subject, detail) VALUES ('digest_generated', $1, $2, $3::jsonb)`, [
      trigger,
      content.generatedBy,
      JSON.stringify({ week: content.week, timeZone: content.timeZone, digestId: row.id, sha256: seal.sha256, keyId: seal.keyId, exceptions: content.summary.exceptions }),
    ]);
    return row;
  });
}

/**
 * The digest of a complete week, whichever way it was made (schedule or CLI): there is one per
 * week and time zone, and every format and every post reuses it.
 */
export async function storedDigest(client: Queryable, week: string, timeZone: string): Promise<StoredDigest | undefined> {
  const res = await client.query<StoredDigest>(`SELECT ${COLUMNS} FROM digests WHERE week = $1 AND "timeZone" = $2 ORDER BY id LIMIT 1`, [week, timeZone]);
  return res.rows[0];
}

/** The stored digests of the `n` weeks before `week` (newest first), for comparisons. */
export async function earlierDigests(client: pg.Client, week: string, timeZone: string, n = 4): Promise<DigestContent[]> {
  const res = await client.query<{ content: DigestContent }>(
    `SELECT DISTINCT ON (week) week, content FROM digests WHERE week < $1 AND "timeZone" = $2 ORDER BY week DESC, id LIMIT $3`,
    [week, timeZone, n],
  );
  return res.rows.map((r) => r.content);
}

/** The latest scheduled digest of a week, if any. */
export async function scheduledDigest(client: pg.Client, week: string, timeZone: string): Promise<StoredDigest | undefined> {
  const res = await client.query<StoredDigest>(
    `SELECT ${COLUMNS} FROM digests WHERE week = $1 AND "timeZone" = $2 AND trigger = 'scheduled' ORDER BY id DESC LIMIT 1`,
    [week, timeZone],
  );
  return res.rows[0];
}

/** Whether any digest of the week was posted (on schedule or with `countersign digest --post`). */
export async function weekPosted(client: Queryable, week: string, timeZone: string): Promise<boolean> {
  const res = await client.query(`SELECT 1 FROM digests WHERE week = $1 AND "timeZone" = $2 AND "postedAt" IS NOT NULL LIMIT 1`, [week, timeZone]);
  return (res.rowCount ?? 0) > 0;
}

export async function markPosted(client: pg.Client, digest: StoredDigest, post: { channel: string; ts: string; fileId: string | null }): Promise<void> {
  await inTransaction(client, async () => {
    await client.query(`UPDATE digests SET "postedAt" = now(), "slackChannel" = $2, "slackTs" = $3, "slackFileId" = $4 WHERE id = $1`, [digest.id, post.channel, post.ts, post.fileId]);
    await client.query(`INSERT INTO events (type, reason, detail) VALUES ('digest_posted', 'posted', $1::jsonb)`, [
      JSON.stringify({ week: digest.week, digestId: digest.id, channel: post.channel, ts: post.ts, fileId: post.fileId }),
    ]);
  });
}

export async function recordPostFailure(client: pg.Client, digest: StoredDigest, channel: string, error: string): Promise<void> {
  await client.query(`INSERT INTO events (type, reason, detail) VALUES ('digest_posted', 'failed', $1::jsonb)`, [
    JSON.stringify({ week: digest.week, digestId: digest.id, channel, error }),
  ]);
}

const DIGEST_COLUMNS = `id::text, week, "timeZone", trigger, "generatedAt", content, sha256, signature, "keyId", "postedAt", "slackChannel", "slackTs"`;

/** One page of digests, newest first (the console's evidence page). */
export async function listDigests(client: Queryable, limit: number, offset: number): Promise<StoredDigest[]> {
  return (await client.query<StoredDigest>(`SELECT ${DIGEST_COLUMNS} FROM digests ORDER BY id DESC LIMIT $1 OFFSET $2`, [limit, offset])).rows;
}

export async function digestById(client: Queryable, id: string): Promise<StoredDigest | undefined> {
  return (await client.query<StoredDigest>(`SELECT ${DIGEST_COLUMNS} FROM digests WHERE id = $1`, [id])).rows[0];
}

/** Whether any scheduled digest was ever done in this zone (posted, when `posted`). */
export async function anyScheduledDone(client: Queryable, timeZone: string, posted: boolean): Promise<boolean> {
  const r = await client.query(`SELECT 1 FROM digests WHERE trigger = 'scheduled' AND "timeZone" = $1${posted ? ` AND "postedAt" IS NOT NULL` : ""} LIMIT 1`, [timeZone]);
  return (r.rowCount ?? 0) > 0;
}

/** The week's lock (session-level, on the connection that generates): one replica does each week. */
export async function tryWeekLock(client: pg.ClientBase, key: string): Promise<boolean> {
  const got = await client.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(hashtext('countersign-digest'), hashtext($1)) AS ok`, [key]);
  return got.rows[0]?.ok === true;
}

export async function releaseWeekLock(client: pg.ClientBase, key: string): Promise<void> {
  await client.query(`SELECT pg_advisory_unlock(hashtext('countersign-digest'), hashtext($1))`, [key]);
}
