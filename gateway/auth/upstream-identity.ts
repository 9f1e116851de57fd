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

/** One signing key: its JWT `kid`, whether it signs (active) or is only published (verify-only). */
interface SigningKey {
  kid: string;
  alg: "EdDSA" | "ES256" | "ES384" | "RS256";
  key: KeyObject;
  jwk: Record<string, unknown>;
  state: "active" | "verify-only";
}

/** A key of the signer: its PEM, and for a keyring entry (keys.ring.upstreamJwt) its id and state. */
export interface SignerKeyInput {
  pem: string;
  /** The JWT kid; default: derived from the public key (keys.upstreamJwt). */
  id?: string | undefined;
  state?: "active" | "verify-only" | "retired" | undefined;
  /** Where it is configured, for problems. */
  path?: string | undefined;
}

export class GatewaySigner {
  #keys: SigningKey[] = [];
  #active!: SigningKey;
  readonly #cache = new Map<string, { token: string; renewAt: number }>();

  /**
   * `keys`: one PEM (keys.upstreamJwt), or the ring (keys.ring.upstreamJwt): the active key signs,
   * verify-only keys stay published in the JWKS so upstreams still verify the tokens they signed,
   * retired keys are neither used nor published.
   */
  constructor(keys: string | readonly SignerKeyInput[], private readonly issuer: string) {
    this.replace(typeof keys === "string" ? [{ pem: keys }] : keys);
  }

  get alg(): SigningKey["alg"] {
    return this.#active.alg;
  }

  get kid(): string {
    return this.#active.kid;
  }

  /** Replaces the keys (a reload): tokens are signed with the new active key from now on. */
  replace(keys: readonly SignerKeyInput[]): void {
    const parsed = keys.filter((k) => k.state !== "retired").map((k) => parseSigningKey(k));
    const active = parsed.filter((k) => k.state === "active");
    if (active.length !== 1) throw new Error("keys.ring.upstreamJwt: exactly one key must be active");
    this.#keys = parsed;
    this.#active = active[0]!;
    this.#cache.clear();
  }

  get jwks(): { keys: Array<Record<string, unknown>> } {
    return { keys: this.#keys.map((k) => k.jwk) };
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
    const { alg, kid, key } = this.#active;
    const iat = Math.floor(now / 1000);
    const payload = { iss: this.issuer, aud: audience, sub: identity.subject, iat, exp: iat + ttlSeconds, countersign: claims };
    const input = `${b64url(JSON.stringify({ alg, typ: "JWT", kid }))}.${b64url(JSON.stringify(payload))}`;
    const digest = alg === "EdDSA" ? null : alg === "ES384" ? "sha384" : "sha256";
    const signature = sign(digest, Buffer.from(input), alg.startsWith("ES") ? { key, dsaEncoding: "ieee-p1363" } : key);
    const token = `${input}.${b64url(signature)}`;
    if (this.#cache.size > 10_000) this.#cache.clear();
    this.#cache.set(cacheKey, { token, renewAt: now + (ttlSeconds * 1000) / 2 });
    return token;
  }
}

function parseSigningKey(input: SignerKeyInput): SigningKey {
  const path = input.path ?? "keys.upstreamJwt";
  let key: KeyObject;
  try {
    key = createPrivateKey(input.pem);
  } catch (err) {
    throw new Error(`${path} is not a PKCS#8 PEM private key: ${(err as Error).message}`);
  }
  const type = key.asymmetricKeyType;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  let alg: SigningKey["alg"];
  if (type === "ed25519") alg = "EdDSA";
  else if (type === "ec" && curve === "prime256v1") alg = "ES256";
  else if (type === "ec" && curve === "secp384r1") alg = "ES384";
  else if (type === "rsa") alg = "RS256";
  else throw new Error(`${path}: unsupported key type ${type}${curve ? ` (${curve})` : ""}; use Ed25519, P-256, P-384 or RSA`);
  const jwk = createPublicKey(key).export({ format: "jwk" }) as Record<string, unknown>;
  const kid = input.id ?? createHash("sha256").update(JSON.stringify(jwk)).digest("base64url").slice(0, 16);
  return { kid, alg, key, jwk: { ...jwk, alg, use: "sig", kid }, state: input.state === "verify-only" ? "verify-only" : "active" };
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
