// Signed checkpoints in PostgreSQL (table audit_checkpoints); the signing, the files outside the
// database and the checks are gateway/audit/chain/checkpoint.ts's.
import type pg from "pg";
import { APPEND_LOCK_KEY, inTransaction } from "./pg.js";
import { readHead, type ChainHead } from "./seal.js";

export interface CheckpointBody {
  v: 1;
  sequence: number;
  head: string;
  time: string;
  previous: string | null;
  keyId: string;
}

export interface SignedCheckpoint {
  body: CheckpointBody;
  signature: string;
}

export interface StoredCheckpoint extends SignedCheckpoint {
  id: string;
}

interface CheckpointRow {
  id: string;
  seq: string;
  head: string;
  at: Date;
  previous: string | null;
  keyId: string;
  signature: string;
}

function fromRow(r: CheckpointRow): StoredCheckpoint {
  return {
    id: r.id,
    body: { v: 1, sequence: Number(r.seq), head: r.head, time: r.at.toISOString(), previous: r.previous, keyId: r.keyId },
    signature: r.signature,
  };
}

const CHECKPOINT_COLUMNS = `id::text, seq::text, head, at, previous, "keyId", signature`;

export async function listCheckpoints(client: pg.Client): Promise<StoredCheckpoint[]> {
  const res = await client.query<CheckpointRow>(`SELECT ${CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY audit_checkpoints.id`);
  return res.rows.map(fromRow);
}

export async function latestCheckpoint(client: pg.Client): Promise<StoredCheckpoint | undefined> {
  const res = await client.query<CheckpointRow>(`SELECT ${CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY audit_checkpoints.id DESC LIMIT 1`);
  return res.rows[0] ? fromRow(res.rows[0]) : undefined;
}

/**
 * Stores the checkpoint `build` makes from the current head and the latest checkpoint, under the
 * append lock (so the head cannot move in between); returns it with its id.
 */
export async function appendCheckpoint(client: pg.Client, build: (head: ChainHead, last: StoredCheckpoint | undefined) => SignedCheckpoint): Promise<StoredCheckpoint> {
  return inTransaction(client, async () => {
    await client.query("SELECT pg_advisory_xact_lock($1)", [APPEND_LOCK_KEY.toString()]);
    const head = await readHead(client);
    const last = await latestCheckpoint(client);
    const { body, signature } = build(head, last);
    const res = await client.query<{ id: string }>(
      `INSERT INTO audit_checkpoints (seq, head, at, previous, "keyId", signature) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id::text`,
      [head.seq.toString(), body.head, new Date(body.time), body.previous, body.keyId, signature],
    );
    return { id: res.rows[0]!.id, body, signature };
  });
}

/** Whether the latest checkpoint is older than the interval (or there is none). */
export async function checkpointDue(client: pg.Client, intervalMinutes: number, now = new Date()): Promise<boolean> {
  const res = await client.query<{ at: Date | null }>(`SELECT max(at) AS at FROM audit_checkpoints`);
  const at = res.rows[0]?.at;
  return !at || now.getTime() - at.getTime() >= intervalMinutes * 60_000;
}
