// Proof that a relayed request comes from a peer replica, unchanged: an HMAC with the replicas'
// shared secret (cluster.secret) over the time, the method, the URL, the request id and the
// SHA-256 of the body, checked in constant time and accepted for 60 s. The body's hash travels in
// the header too, so that the owner checks the signature before it reads any body, then checks the
// body it received against the signed hash. It proves only who relays and what; the caller's own
// token travels with the request and the owning replica authenticates it again.
//
// Format v2 (`v2 t=<unix seconds> body=<sha256 hex> sig=<hmac hex>`). v1 (no body hash) is no
// longer accepted: replicas of one deployment must run the same version to relay to each other
// (a rolling upgrade across this change answers CS_ERR_RELAY_UNAUTHORIZED for relayed requests
// until every pod runs the new version; clients re-initialise).
//
// Keys: the keyring's relay keys (keys.ring.relay, default cluster.secret as a ring of one). The
// header names the signing key (` kid=<id>`); the owner accepts its active and verify-only keys, so
// a rotation rolls through the replicas: first add the new key verify-only everywhere, then make
// it active, then retire the old one. A header without kid is cluster.secret's.
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { LEGACY_KEY_IDS } from "../keys/ids.js";
import type { KeyRing } from "../keys/ring.js";

export const RELAY_HEADER = "x-countersign-relay";
/** The original caller's address, as the relaying replica saw it (trusted only on a signed relay). */
export const CLIENT_ADDRESS_HEADER = "x-countersign-client-address";
const MAX_SKEW_SECONDS = 60;

/** SHA-256 (hex) of a request body; an absent body hashes as the empty one. */
export function bodyHash(body: string | Uint8Array | undefined): string {
  return createHash("sha256").update(body ?? "").digest("hex");
}

function mac(secret: string | Buffer, t: number, method: string, url: string, httpRequestId: string, hash: string): string {
  return createHmac("sha256", secret).update(`countersign-relay-v2\n${t}\n${method.toUpperCase()}\n${url}\n${httpRequestId}\n${hash}`).digest("hex");
}

/** The value of the relay header for one request and its body; `kid` names the ring key that signs. */
export function signRelay(secret: string | Buffer, method: string, url: string, httpRequestId: string, body: string | Uint8Array | undefined, now = Date.now(), kid?: string): string {
  const t = Math.floor(now / 1000);
  const hash = bodyHash(body);
  return `v2 t=${t} body=${hash} sig=${mac(secret, t, method, url, httpRequestId, hash)}${kid ? ` kid=${kid}` : ""}`;
}

export type RelayHeaderCheck = { ok: true; bodyHash: string } | { ok: false; problem: string };

/**
 * Checks the signature of the header (before the body is read): on success, the body hash the
 * peer signed, which the received body must match (`relayBodyProblem`).
 */
export function verifyRelay(keys: KeyRing, header: string | undefined, method: string, url: string, httpRequestId: string, now = Date.now()): RelayHeaderCheck {
  if (!header) return { ok: false, problem: `no ${RELAY_HEADER} header` };
  const m = /^v2 t=(\d{1,12}) body=([0-9a-f]{64}) sig=([0-9a-f]{64})(?: kid=([A-Za-z0-9_-]{1,64}))?$/.exec(header);
  if (!m) return { ok: false, problem: `malformed ${RELAY_HEADER} header (expected v2: every replica must run the same version)` };
  const t = Number(m[1]);
  if (Math.abs(now / 1000 - t) > MAX_SKEW_SECONDS) return { ok: false, problem: "signature too old or from the future (check the replicas' clocks)" };
  const key = keys.lookup(m[4] ?? LEGACY_KEY_IDS.relay);
  if (!key.ok) return { ok: false, problem: key.refused === "retired" ? `signed with a retired relay key (${m[4] ?? LEGACY_KEY_IDS.relay}): the peer must be given the active key` : "signed with a relay key this replica does not hold (keys.ring.relay or cluster.secret differ between replicas)" };
  const expected = Buffer.from(mac(key.key, t, method, url, httpRequestId, m[2]!), "hex");
  if (!timingSafeEqual(expected, Buffer.from(m[3]!, "hex"))) return { ok: false, problem: "wrong signature (the replicas do not share the same relay key: keys.ring.relay or cluster.secret)" };
  return { ok: true, bodyHash: m[2]! };
}

/** Undefined when the received body is the one the peer signed. */
export function relayBodyProblem(signedHash: string, body: Uint8Array): string | undefined {
  const actual = Buffer.from(bodyHash(body), "hex");
  return timingSafeEqual(actual, Buffer.from(signedHash, "hex")) ? undefined : "the body does not match the signed hash (changed in transit)";
}
