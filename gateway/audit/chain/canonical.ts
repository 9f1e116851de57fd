// What a chain entry hashes: hash = SHA-256(previous hash || RFC 8785 JSON of the record), where
// the record is {source, row} and row is the table row as PostgreSQL's to_jsonb() gives it with
// top-level null columns left out (so a nullable column added later leaves old hashes valid).
// to_jsonb formats timestamps in the session's time zone: every connection that hashes sets UTC.
// RFC 8785 writes numbers as IEEE doubles: integers in a JSON payload beyond 2^53 are hashed at
// double precision (a property of the standard, not of this code).
import { createHash } from "node:crypto";
import { canonicalize } from "json-canonicalize";

/** The previous hash of entry 1. */
export const GENESIS_HASH = "0".repeat(64);

export interface ChainRecord {
  source: string;
  /** null: the row was gone when it was sealed (see ChainEntry.missing). */
  row: Record<string, unknown> | null;
  sourceId: string;
}

export function canonicalRecord(rec: ChainRecord): string {
  if (rec.row === null) return canonicalize({ source: rec.source, id: rec.sourceId, missing: true });
  const row: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(rec.row)) if (v !== null) row[k] = v;
  return canonicalize({ source: rec.source, row });
}

export function chainHash(previousHex: string, canonicalJson: string): string {
  return createHash("sha256").update(Buffer.from(previousHex, "hex")).update(canonicalJson, "utf8").digest("hex");
}

export function recordHash(previousHex: string, rec: ChainRecord): string {
  return chainHash(previousHex, canonicalRecord(rec));
}
