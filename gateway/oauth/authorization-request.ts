// An authorization request, checked at /oauth/authorize and carried to the console's consent
// page as a signed, expiring value in the URL: no server-side state for requests nobody
// finishes, any replica (with the same console.sessionKey) can finish it, and its content
// cannot be changed on the way.
import { createHmac, timingSafeEqual } from "node:crypto";

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
  constructor(private readonly key: Buffer) {}

  seal(r: AuthorizationRequest, now = Date.now()): string {
    const body = Buffer.from(JSON.stringify({ ...r, exp: now + TTL_MS })).toString("base64url");
    return `${body}.${this.#mac(body)}`;
  }

  unseal(value: unknown, now = Date.now()): AuthorizationRequest | undefined {
    if (typeof value !== "string" || value.length > 8192) return undefined;
    const dot = value.lastIndexOf(".");
    if (dot <= 0) return undefined;
    const body = value.slice(0, dot);
    const a = Buffer.from(value.slice(dot + 1));
    const b = Buffer.from(this.#mac(body));
    if (a.length !== b.length || !timingSafeEqual(a, b)) return undefined;
    try {
      const { exp, ...r } = JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as AuthorizationRequest & { exp: number };
      return typeof exp === "number" && exp > now ? r : undefined;
    } catch {
      return undefined;
    }
  }

  #mac(body: string): string {
    return createHmac("sha256", this.key).update(`oauth-request:${body}`).digest("base64url");
  }
}

/** Where the client gets the answer: its redirect URI with the code or error, the state, and the issuer (RFC 9207). */
export function redirectBack(r: Pick<AuthorizationRequest, "redirectUri" | "state">, issuer: string, params: Record<string, string>): string {
  const u = new URL(r.redirectUri);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  if (r.state !== undefined) u.searchParams.set("state", r.state);
  u.searchParams.set("iss", issuer);
  return u.href;
}
