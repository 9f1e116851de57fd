// An authorization request, checked at /oauth/authorize and carried to the console's consent
// page as a signed, expiring value in the URL: no server-side state for requests nobody
// finishes, any replica (with the same console keys: keys.ring.console or console.sessionKey) can
// finish it, and its content cannot be changed on the way. `<body>.<key id>.<mac>`: a request
// signed before a rotation still finishes while its key is verify-only.
import { createHmac, timingSafeEqual } from "node:crypto";
import type { KeyRing } from "../keys/ring.js";

export interface AuthorizationRequest {
  clientId: string;
  clientName?: string | undefined;
  redirectUri: string;
  codeChallenge: string;
  resource: string;
  state?: string | undefined;
  scope?: string | undefined;
}

const TTL_MS = 10 * 60_000;

export class RequestSealer {
  constructor(private readonly keys: KeyRing) {}

  seal(r: AuthorizationRequest, now = Date.now()): string {
    const body = Buffer.from(JSON.stringify({ ...r, exp: now + TTL_MS })).toString("base64url");
    const { id, key } = this.keys.active();
    return `${body}.${id}.${mac(key, body)}`;
  }

  unseal(value: unknown, now = Date.now()): AuthorizationRequest | undefined {
    if (typeof value !== "string" || value.length > 8192) return undefined;
    const [body, id, given, extra] = value.split(".");
    if (!body || !id || !given || extra !== undefined) return undefined;
    const key = this.keys.lookup(id);
    if (!key.ok) return undefined;
    const a = Buffer.from(given);
    const b = Buffer.from(mac(key.key, body));
    if (a.length !== b.length || !timingSafeEqual(a, b)) return undefined;
    try {
      const { exp, ...r } = JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as AuthorizationRequest & { exp: number };
      return typeof exp === "number" && exp > now ? r : undefined;
    } catch {
      return undefined;
    }
  }
}

/** The ring key is first narrowed to this job, so the console's cookie MACs and these never share a key. */
function mac(ringKey: Buffer, body: string): string {
  const key = createHmac("sha256", ringKey).update("countersign oauth request").digest();
  return createHmac("sha256", key).update(`oauth-request:${body}`).digest("base64url");
}

/** Where the client gets the answer: its redirect URI with the code or error, the state, and the issuer (RFC 9207). */
export function redirectBack(r: Pick<AuthorizationRequest, "redirectUri" | "state">, issuer: string, params: Record<string, string>): string {
  const u = new URL(r.redirectUri);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  if (r.state !== undefined) u.searchParams.set("state", r.state);
  u.searchParams.set("iss", issuer);
  return u.href;
}
