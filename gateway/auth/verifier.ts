// Verifies bearer JWTs against the configured issuers with jose: signature from the issuer's
// JWKS (discovered, cached, refetched on an unknown key id at most once per cooldown), `iss`,
// `aud`, `exp`/`nbf` with a small skew, and an allow-list of asymmetric algorithms.
import { LRUCache } from "lru-cache";
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  decodeJwt,
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
} from "jose";
import type { JWT_ALGORITHMS } from "../config/schema.js";
import type { EventReason } from "../audit/events.js";

export type AuthFailureReason = EventReason<"auth_failed">;

export class TokenRejected extends Error {
  constructor(readonly reason: AuthFailureReason, detail: string) {
    super(detail);
  }
}

export interface IssuerSettings {
  issuer: string;
  label?: string | undefined;
  discoveryUrl?: string | undefined;
  jwksUri?: string | undefined;
  /** Fixed audiences; when absent, the connection's resource URL is required. */
  audience?: string | string[] | undefined;
  algorithms: Array<(typeof JWT_ALGORITHMS)[number]>;
  groupsClaim: string;
  emailClaim: string;
  nameClaim: string;
  /** A key set held in memory (the built-in dev issuer); no discovery then. */
  localJwks?: { keys: object[] } | undefined;
  /** The gateway's own tokens: this claim names the issuer the person logged in with, recorded as theirs. */
  originalIssuerClaim?: string | undefined;
}

export interface VerifierOptions {
  clockSkewSeconds: number;
  jwksCooldownSeconds: number;
  /** Counts JWKS and discovery fetches, for metrics and tests. */
  onFetch?: (url: string) => void;
}

class IssuerKeys {
  #getKey?: JWTVerifyGetKey;
  #discovering?: Promise<JWTVerifyGetKey>;

  constructor(private readonly settings: IssuerSettings, private readonly opts: VerifierOptions) {
    if (settings.localJwks) this.#getKey = createLocalJWKSet(settings.localJwks as Parameters<typeof createLocalJWKSet>[0]);
    else if (settings.jwksUri) this.#getKey = this.#remote(settings.jwksUri);
  }

  #remote(uri: string): JWTVerifyGetKey {
    const url = new URL(uri);
    const onFetch = this.opts.onFetch;
    return createRemoteJWKSet(url, {
      cooldownDuration: this.opts.jwksCooldownSeconds * 1000,
      cacheMaxAge: 10 * 60 * 1000,
      timeoutDuration: 5000,
      ...(onFetch
        ? {
            [customFetch]: (input: string, init: RequestInit) => {
              onFetch(String(input));
              return fetch(input, init);
            },
          }
        : {}),
    });
  }

  async getKey(): Promise<JWTVerifyGetKey> {
    if (this.#getKey) return this.#getKey;
    // Discovery is retried on the next request if it fails, so a slow IdP start heals by itself.
    this.#discovering ??= (async () => {
      const url = this.settings.discoveryUrl ?? `${this.settings.issuer.replace(/\/$/, "")}/.well-known/openid-configuration`;
      this.opts.onFetch?.(url);
      const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
      if (!res.ok) throw new Error(`discovery ${url}: HTTP ${res.status}`);
      const doc = (await res.json()) as { issuer?: string; jwks_uri?: string };
      if (doc.issuer !== this.settings.issuer) throw new Error(`discovery ${url} names issuer ${doc.issuer}, not ${this.settings.issuer}`);
      if (!doc.jwks_uri) throw new Error(`discovery ${url} has no jwks_uri`);
      this.#getKey = this.#remote(doc.jwks_uri);
      return this.#getKey;
    })().catch((err) => {
      this.#discovering = undefined;
      throw err;
    });
    return this.#discovering;
  }
}

export class TokenVerifier {
  readonly #issuers = new Map<string, { settings: IssuerSettings; keys: IssuerKeys }>();
  // Bound: 10,000 verified tokens, least recently used evicted first; each lives until its token
  // expires, at most 5 minutes (per-entry ttl).
  readonly #cache = new LRUCache<string, { payload: JWTPayload; issuer: IssuerSettings }>({ max: 10_000, ttlAutopurge: false });

  constructor(issuers: IssuerSettings[], private readonly opts: VerifierOptions) {
    for (const s of issuers) this.#issuers.set(s.issuer, { settings: s, keys: new IssuerKeys(s, opts) });
  }

  get issuers(): IssuerSettings[] {
    return [...this.#issuers.values()].map((i) => i.settings);
  }

  /** Verifies `token` for a resource; returns the payload and the issuer's settings, or throws TokenRejected. */
  async verify(token: string, resource: string): Promise<{ payload: JWTPayload; issuer: IssuerSettings }> {
    // A token verified for this resource is reused until it expires (at most 5 minutes, so a key
    // the issuer withdraws stops being honoured soon): signature checks are the costly part of
    // every request, and agents send the same token for a whole session.
    const key = `${resource}\u0000${token}`;
    const hit = this.#cache.get(key);
    if (hit) return hit;
    const nowSec = Date.now() / 1000;
    const result = await this.#verify(token, resource);
    const exp = typeof result.payload.exp === "number" ? result.payload.exp + this.opts.clockSkewSeconds : nowSec;
    const ttlMs = Math.floor((Math.min(exp, nowSec + 300) - nowSec) * 1000);
    if (ttlMs > 0) this.#cache.set(key, result, { ttl: ttlMs });
    return result;
  }

  async #verify(token: string, resource: string): Promise<{ payload: JWTPayload; issuer: IssuerSettings }> {
    let iss: string | undefined;
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
      iss = decodeJwt(token).iss;
    } catch {
      throw new TokenRejected("malformed_token", "the bearer token is not a JWT");
    }
    const entry = iss === undefined ? undefined : this.#issuers.get(iss);
    if (!entry) throw new TokenRejected("wrong_issuer", `tokens from issuer ${iss ?? "(none)"} are not accepted`);
    const { settings } = entry;
    if (!alg || !(settings.algorithms as string[]).includes(alg)) {
      throw new TokenRejected("algorithm_not_allowed", `algorithm ${alg ?? "(none)"} is not allowed; accepted: ${settings.algorithms.join(", ")}`);
    }
    let getKey: JWTVerifyGetKey;
    try {
      getKey = await entry.keys.getKey();
    } catch (err) {
      throw new TokenRejected("issuer_unavailable", `cannot fetch the keys of ${settings.issuer}: ${(err as Error).message}`);
    }
    try {
      const { payload } = await jwtVerify(token, getKey, {
        issuer: settings.issuer,
        audience: settings.audience ?? resource,
        algorithms: settings.algorithms,
        clockTolerance: this.opts.clockSkewSeconds,
        requiredClaims: ["exp"],
      });
      return { payload, issuer: settings };
    } catch (err) {
      throw classifyJoseError(err);
    }
  }
}

function classifyJoseError(err: unknown): TokenRejected {
  if (err instanceof joseErrors.JWTExpired) return new TokenRejected("expired", "the token has expired");
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === "nbf" || err.claim === "iat") return new TokenRejected("not_yet_valid", "the token is not valid yet");
    if (err.claim === "aud") return new TokenRejected("wrong_audience", "the token is not meant for this connection (aud)");
    if (err.claim === "iss") return new TokenRejected("wrong_issuer", "the token's issuer is not accepted");
    return new TokenRejected("malformed_token", `claim ${err.claim}: ${err.reason}`);
  }
  if (err instanceof joseErrors.JWKSNoMatchingKey) return new TokenRejected("unknown_key", "no key of the issuer matches the token's key id");
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return new TokenRejected("bad_signature", "the token's signature does not verify");
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return new TokenRejected("algorithm_not_allowed", "the token's algorithm is not allowed");
  if (err instanceof joseErrors.JWKSTimeout) return new TokenRejected("issuer_unavailable", "the issuer's JWKS did not answer in time");
  return new TokenRejected("malformed_token", (err as Error).message ?? "the token is not valid");
}
