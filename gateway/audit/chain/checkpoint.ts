// Signed checkpoints: {sequence, head hash, time, previous checkpoint} signed with Ed25519. The
// leader takes one every `intervalMinutes` (also when nothing was recorded: an hour with a
// checkpoint and no records is evidence that nothing happened, not a gap), `countersign
// checkpoint` takes one on demand. Each names the previous one by digest, so removing or
// inserting a checkpoint breaks the sequence; copies written to a directory outside PostgreSQL
// let `verify --checkpoints <dir>` find a chain truncated together with its checkpoints.
import { createHash, createPublicKey, sign, verify as verifySignature } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { canonicalize } from "json-canonicalize";
import type { SignerKey, VerifierKey } from "./keys.js";
import { appendCheckpoint, type CheckpointBody, type SignedCheckpoint, type StoredCheckpoint } from "../../store/chain/checkpoints.js";
import type { ChainClient } from "../../store/pools.js";

export type { CheckpointBody, SignedCheckpoint, StoredCheckpoint } from "../../store/chain/checkpoints.js";

export function checkpointDigest(cp: SignedCheckpoint): string {
  return createHash("sha256").update(canonicalize({ body: cp.body, signature: cp.signature })).digest("hex");
}

export function signCheckpointBody(body: CheckpointBody, key: SignerKey): string {
  return sign(null, Buffer.from(canonicalize(body)), key.key).toString("base64");
}

/** Why a checkpoint's signature cannot be trusted, or null when it can. */
export function checkSignature(cp: SignedCheckpoint, keys: Map<string, VerifierKey>): string | null {
  const key = keys.get(cp.body.keyId);
  if (!key) return `signed with key '${cp.body.keyId}', which is not among the configured public keys`;
  const at = new Date(cp.body.time);
  if (Number.isNaN(at.getTime())) return "its time is not a valid timestamp";
  if ((key.notBefore && at < key.notBefore) || (key.notAfter && at >= key.notAfter)) {
    return `its time ${cp.body.time} is outside the validity window of key '${key.id}'`;
  }
  let ok = false;
  try {
    ok = verifySignature(null, Buffer.from(canonicalize(cp.body)), key.key, Buffer.from(cp.signature, "base64"));
  } catch {
    ok = false;
  }
  return ok ? null : `its signature does not verify with key '${key.id}'`;
}

export { checkpointDue, latestCheckpoint, listCheckpoints } from "../../store/chain/checkpoints.js";

/** Signs the current head (seal pending rows first for a fresh one) and stores it; writes the file copy after commit. */
export async function takeCheckpoint(client: ChainClient, key: SignerKey, opts: { directory?: string | undefined; now?: Date } = {}): Promise<StoredCheckpoint> {
  const cp = await appendCheckpoint(client, (head, last) => {
    let at = new Date(Math.floor((opts.now ?? new Date()).getTime()));
    // Times strictly increase, whatever the clocks of the replicas say.
    if (last && at.getTime() <= new Date(last.body.time).getTime()) at = new Date(new Date(last.body.time).getTime() + 1);
    const body: CheckpointBody = {
      v: 1,
      sequence: Number(head.seq),
      head: head.hash,
      time: at.toISOString(),
      previous: last ? checkpointDigest(last) : null,
      keyId: key.id,
    };
    return { body, signature: signCheckpointBody(body, key) };
  });
  if (opts.directory) writeCheckpointFile(opts.directory, cp, key);
  return cp;
}

export interface CheckpointFile extends SignedCheckpoint {
  countersignCheckpoint: 1;
  /** For people reading the file; `verify` uses only the configured public keys. */
  publicKey?: string;
}

export function checkpointFileName(cp: SignedCheckpoint): string {
  return `checkpoint-${String(cp.body.sequence).padStart(12, "0")}-${cp.body.time.replace(/[:.]/g, "")}.json`;
}

export function writeCheckpointFile(directory: string, cp: SignedCheckpoint, key?: SignerKey): string {
  mkdirSync(directory, { recursive: true });
  const file = join(directory, checkpointFileName(cp));
  const content: CheckpointFile = {
    countersignCheckpoint: 1,
    body: cp.body,
    signature: cp.signature,
    ...(key ? { publicKey: createPublicKey(key.key).export({ type: "spki", format: "pem" }).toString() } : {}),
  };
  // Written whole or not at all: a reader never sees half a checkpoint.
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(content, null, 2) + "\n");
  renameSync(tmp, file);
  return file;
}

export interface CheckpointFileRead {
  file: string;
  checkpoint?: SignedCheckpoint;
  error?: string;
}

export function readCheckpointFiles(directory: string): CheckpointFileRead[] {
  return readdirSync(directory)
    .filter((f) => f.startsWith("checkpoint-") && f.endsWith(".json"))
    .sort()
    .map((f) => {
      const file = join(directory, f);
      try {
        const c = JSON.parse(readFileSync(file, "utf8")) as Partial<CheckpointFile>;
        const b = c.body;
        if (c.countersignCheckpoint !== 1 || !b || typeof c.signature !== "string" || typeof b.sequence !== "number" || typeof b.head !== "string" || typeof b.time !== "string" || typeof b.keyId !== "string") {
          return { file, error: "not a Countersign checkpoint file" };
        }
        return { file, checkpoint: { body: { v: 1, sequence: b.sequence, head: b.head, time: b.time, previous: b.previous ?? null, keyId: b.keyId }, signature: c.signature } };
      } catch (err) {
        return { file, error: `unreadable: ${(err as Error).message.split("\n")[0]}` };
      }
    });
}

// ── The head anchor: the chain's latest head, signed, outside the database ─────────────────────
// Checkpoints vouch for the chain up to the moment they are taken; what was sealed after the last
// one is vouched for by nothing outside the database, so someone with write access to it could
// cut that tail (rows, entries and the last checkpoint) unnoticed. The leader also writes each
// new head, signed, to `head.json` in the checkpoint directory (at most once a second, and at
// every checkpoint check): `verify --require-anchor` finds a chain that ends before it, or that
// differs from it.

export const HEAD_ANCHOR_FILE = "head.json";

export interface HeadAnchorBody {
  v: 1;
  kind: "head";
  sequence: number;
  head: string;
  time: string;
  keyId: string;
}

export interface SignedHeadAnchor {
  body: HeadAnchorBody;
  signature: string;
}

export function writeHeadAnchor(directory: string, head: { seq: bigint; hash: string }, key: SignerKey, now = new Date()): void {
  mkdirSync(directory, { recursive: true });
  const body: HeadAnchorBody = { v: 1, kind: "head", sequence: Number(head.seq), head: head.hash, time: now.toISOString(), keyId: key.id };
  const content: SignedHeadAnchor = { body, signature: sign(null, Buffer.from(canonicalize(body)), key.key).toString("base64") };
  const file = join(directory, HEAD_ANCHOR_FILE);
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(content, null, 2) + "\n");
  renameSync(tmp, file);
}

/** The head anchor in `directory`: undefined when there is none, `error` when it cannot be read. */
export function readHeadAnchor(directory: string): { anchor?: SignedHeadAnchor; error?: string } | undefined {
  let text: string;
  try {
    text = readFileSync(join(directory, HEAD_ANCHOR_FILE), "utf8");
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ENOENT" ? undefined : { error: `unreadable: ${(err as Error).message.split("\n")[0]}` };
  }
  try {
    const c = JSON.parse(text) as Partial<SignedHeadAnchor>;
    const b = c.body;
    if (!b || b.kind !== "head" || typeof c.signature !== "string" || typeof b.sequence !== "number" || typeof b.head !== "string" || typeof b.time !== "string" || typeof b.keyId !== "string") {
      return { error: "not a Countersign head anchor" };
    }
    return { anchor: { body: { v: 1, kind: "head", sequence: b.sequence, head: b.head, time: b.time, keyId: b.keyId }, signature: c.signature } };
  } catch (err) {
    return { error: `unreadable: ${(err as Error).message.split("\n")[0]}` };
  }
}

/** Why a head anchor's signature cannot be trusted, or null (the same keys and windows as checkpoints). */
export function checkHeadSignature(a: SignedHeadAnchor, keys: Map<string, VerifierKey>): string | null {
  return checkSignature(a as unknown as SignedCheckpoint, keys);
}
