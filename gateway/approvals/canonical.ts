// The identity of a call's arguments: SHA-256 over their canonical JSON (RFC 8785), so the same
// arguments in another key order or number spelling are the same call.
import { createHash } from "node:crypto";
import { canonicalize } from "json-canonicalize";

export function canonicalArgumentsHash(args: unknown): string {
  return createHash("sha256").update(canonicalize(args ?? {})).digest("hex");
}
