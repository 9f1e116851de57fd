// Proof that a relayed request comes from a peer replica: an HMAC with the replicas' shared secret
// (cluster.secret) over the time, the method, the URL and the request id, checked in constant time
// and accepted for 60 s. It proves only who relays; the caller's own token travels with the
// request and the owning replica authenticates it again.
import { createHmac, timingSafeEqual } from "node:crypto";

export const RELAY_HEADER = "x-countersign-relay";
/** The original caller's address, as the relaying replica saw it (trusted only on a signed relay). */
export const CLIENT_ADDRESS_HEADER = "x-countersign-client-address";
const MAX_SKEW_SECONDS = 60;

function mac(secret: string, t: number, method: string, url: string, requestId: string): string {
  return createHmac("sha256", secret).update(`countersign-relay-v1\n${t}\n${method.toUpperCase()}\n${url}\n${requestId}`).digest("hex");
}

/** The value of the relay header for one request. */
export function signRelay(secret: string, method: string, url: string, requestId: string, now = Date.now()): string {
  const t = Math.floor(now / 1000);
  return `v1 t=${t} sig=${mac(secret, t, method, url, requestId)}`;
}

/** Undefined when the header is a valid signature of this request; otherwise what is wrong with it. */
export function verifyRelay(secret: string, header: string | undefined, method: string, url: string, requestId: string, now = Date.now()): string | undefined {
  if (!header) return `no ${RELAY_HEADER} header`;
  const m = /^v1 t=(\d{1,12}) sig=([0-9a-f]{64})$/.exec(header);
  if (!m) return `malformed ${RELAY_HEADER} header`;
  const t = Number(m[1]);
  if (Math.abs(now / 1000 - t) > MAX_SKEW_SECONDS) return "signature too old or from the future (check the replicas' clocks)";
  const expected = Buffer.from(mac(secret, t, method, url, requestId), "hex");
  return timingSafeEqual(expected, Buffer.from(m[2]!, "hex")) ? undefined : "wrong signature (the replicas do not share the same cluster.secret)";
}
