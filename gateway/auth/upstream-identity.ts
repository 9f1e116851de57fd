// Tells an upstream who is calling, without ever passing the caller's own token on: either plain
// headers, or a short-lived JWT signed with the gateway's key (public keys at
// /.well-known/jwks.json) so the upstream can trust the claim. Signing uses node:crypto
// synchronously and tokens are reused until half their lifetime has passed, so the hot path does
// not wait on it.
import { createHash, createPrivateKey, createPublicKey, sign, type KeyObject } from "node:crypto";
import type { Identity } from "./identity.js";

export interface IdentityHeaderNames {
  subject: string;
  email: string;
  groups: string;
  issuer: string;
}

export interface JwtSettings {
  header: string;
  audience?: string | undefined;
  ttlSeconds: number;
}

const b64url = (data: Buffer | string) => Buffer.from(data).toString("base64url");

export class GatewaySigner {
  readonly alg: "EdDSA" | "ES256" | "ES384" | "RS256";
  readonly kid: string;
  readonly #key: KeyObject;
  readonly #publicJwk: Record<string, unknown>;
  readonly #cache = new Map<string, { token: string; renewAt: number }>();

  constructor(pem: string, private readonly issuer: string) {
    try {
      this.#key = createPrivateKey(pem);
    } catch (err) {
      throw new Error(`keys.upstreamJwt is not a PKCS#8 PEM private key: ${(err as Error).message}`);
    }
    const type = this.#key.asymmetricKeyType;
    const curve = this.#key.asymmetricKeyDetails?.namedCurve;
    if (type === "ed25519") this.alg = "EdDSA";
    else if (type === "ec" && curve === "prime256v1") this.alg = "ES256";
    else if (type === "ec" && curve === "secp384r1") this.alg = "ES384";
    else if (type === "rsa") this.alg = "RS256";
    else throw new Error(`keys.upstreamJwt: unsupported key type ${type}${curve ? ` (${curve})` : ""}; use Ed25519, P-256, P-384 or RSA`);
    const jwk = createPublicKey(this.#key).export({ format: "jwk" }) as Record<string, unknown>;
    this.kid = createHash("sha256").update(JSON.stringify(jwk)).digest("base64url").slice(0, 16);
    this.#publicJwk = { ...jwk, alg: this.alg, use: "sig", kid: this.kid };
  }

  get jwks(): { keys: Array<Record<string, unknown>> } {
    return { keys: [this.#publicJwk] };
  }

  token(identity: Identity, audience: string, ttlSeconds: number, now = Date.now()): string {
    const claims = {
      kind: identity.kind,
      issuer: identity.issuer,
      ...(identity.email ? { email: identity.email } : {}),
      ...(identity.name ? { name: identity.name } : {}),
      groups: identity.groups,
      ...(identity.clientId ? { client_id: identity.clientId } : {}),
    };
    // Keyed by the claims too: a caller whose groups changed (a new token) must not be vouched
    // for with the old groups until the cached token expires.
    const cacheKey = `${identity.issuer}\u0000${identity.subject}\u0000${audience}\u0000${JSON.stringify(claims)}`;
    const cached = this.#cache.get(cacheKey);
    if (cached && cached.renewAt > now) return cached.token;
    const iat = Math.floor(now / 1000);
    const payload = { iss: this.issuer, aud: audience, sub: identity.subject, iat, exp: iat + ttlSeconds, countersign: claims };
    const input = `${b64url(JSON.stringify({ alg: this.alg, typ: "JWT", kid: this.kid }))}.${b64url(JSON.stringify(payload))}`;
    const digest = this.alg === "EdDSA" ? null : this.alg === "ES384" ? "sha384" : "sha256";
    const signature = sign(digest, Buffer.from(input), this.alg.startsWith("ES") ? { key: this.#key, dsaEncoding: "ieee-p1363" } : this.#key);
    const token = `${input}.${b64url(signature)}`;
    if (this.#cache.size > 10_000) this.#cache.clear();
    this.#cache.set(cacheKey, { token, renewAt: now + (ttlSeconds * 1000) / 2 });
    return token;
  }
}

export function identityHeaders(identity: Identity, names: IdentityHeaderNames): Record<string, string> {
  const h: Record<string, string> = {
    [names.subject.toLowerCase()]: identity.subject,
    [names.issuer.toLowerCase()]: identity.issuer,
    [names.groups.toLowerCase()]: identity.groups.join(","),
  };
  if (identity.email) h[names.email.toLowerCase()] = identity.email;
  return h;
}
