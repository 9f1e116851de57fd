// The identity of a call's arguments: HMAC-SHA256 over their canonical JSON (RFC 8785), so the same
// arguments in another key order or number spelling are the same call. Keyed, because the hash is
// stored: a plain digest would let anyone who reads the database confirm a guess of a secret value
// ("is the password hunter2?"); with the key they cannot. Every replica must use the same key, or an
// identical retry arriving at another replica would not find its request.
import { createHash, createHmac } from "node:crypto";
import { canonicalize } from "json-canonicalize";

export function canonicalArgumentsHash(args: unknown, key: Buffer | undefined): string {
  const text = canonicalize(args ?? {});
  // Without a key (an external database and none configured; start-up warns) the digest is plain.
  return key ? createHmac("sha256", key).update(text).digest("hex") : createHash("sha256").update(text).digest("hex");
}
