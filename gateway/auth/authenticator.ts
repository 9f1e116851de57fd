// The first stage of the data path: who is calling, and may they use this connection?
// A missing or bad token gets 401 with a WWW-Authenticate header that points MCP clients at the
// connection's protected resource metadata (RFC 9728); a valid identity without access gets 403
// naming the groups that would grant it. Failed attempts are limited per source address, so a
// flood of bad tokens costs neither verification work nor a database write each.
import { LRUCache } from "lru-cache";
import type { ThrottledEvents } from "../audit/rejections.js";
import type { ConnectionConfig } from "../config/load.js";
import { CountersignError } from "../errors.js";
import { groupsNeeded, mayUseConnection } from "./access.js";
import { anonymousIdentity, identityFromClaims, sameCaller, type Identity } from "./identity.js";
import { TokenRejected, type TokenVerifier } from "./verifier.js";

/** An authentication refusal; its headers (WWW-Authenticate, Retry-After) go with the reply. */
export class AuthError extends CountersignError {
  constructor(code: "CS_ERR_UNAUTHENTICATED" | "CS_ERR_RATE_LIMITED" | "CS_ERR_CONNECTION_FORBIDDEN", detail: string, headers: Record<string, string> = {}, connection?: string) {
    super(code, detail, { headers, connection });
  }
}

export interface AuthenticatorOptions {
  publicUrl: string;
  failedAttemptsPerMinute: number;
}

export function resourceUrl(publicUrl: string, connection: string): string {
  return `${publicUrl}/mcp/${connection}`;
}

export function resourceMetadataUrl(publicUrl: string, connection: string): string {
  return `${publicUrl}/.well-known/oauth-protected-resource/mcp/${connection}`;
}

/** Counts failures per address in a sliding minute. */
class FailureLimiter {
  // Bound: 10,000 addresses, least recently used evicted first; an address is forgotten a minute
  // after its last failure (the window the limit counts over).
  readonly #failures = new LRUCache<string, number[]>({ max: 10_000, ttl: 60_000 });
  constructor(private readonly perMinute: number) {}

  blockedFor(address: string, now = Date.now()): number {
    const times = this.#prune(address, now);
    return times.length >= this.perMinute ? Math.ceil((times[0]! + 60_000 - now) / 1000) : 0;
  }

  fail(address: string, now = Date.now()): void {
    const times = this.#prune(address, now);
    times.push(now);
    this.#failures.set(address, times);
  }

  #prune(address: string, now: number): number[] {
    const times = (this.#failures.get(address) ?? []).filter((t) => now - t < 60_000);
    if (times.length === 0) this.#failures.delete(address);
    else this.#failures.set(address, times);
    return times;
  }
}

export class Authenticator {
  readonly #limiter: FailureLimiter;

  constructor(
    private readonly verifier: TokenVerifier,
    private readonly opts: AuthenticatorOptions,
    private readonly failures: ThrottledEvents<"auth_failed">,
    private readonly denials: ThrottledEvents<"access_denied">,
  ) {
    this.#limiter = new FailureLimiter(opts.failedAttemptsPerMinute);
  }

  /**
   * `resource`: the audience to require; default the connection's resource URL. `httpRequestId`: the
   * HTTP request's id, stored with any refusal so the log and the record join.
   */
  async authenticate(
    connection: ConnectionConfig,
    authorization: string | undefined,
    address: string,
    resource = resourceUrl(this.opts.publicUrl, connection.name),
    httpRequestId?: string,
  ): Promise<Identity> {
    const challenge = (error?: string, description?: string) => {
      let value = `Bearer resource_metadata="${resourceMetadataUrl(this.opts.publicUrl, connection.name)}"`;
      if (error) value += `, error="${error}"`;
      if (description) value += `, error_description="${description.replace(/["\\]/g, "'")}"`;
      return { "www-authenticate": value };
    };

    const wait = this.#limiter.blockedFor(address);
    if (wait > 0) {
      this.failures.record("rate_limited", { connection: connection.name, requestId: httpRequestId }, { address });
      throw new AuthError("CS_ERR_RATE_LIMITED", `retry in ${wait} s`, { "retry-after": String(wait) });
    }

    let identity: Identity;
    if (authorization === undefined || authorization === "") {
      if (connection.access.anonymous) identity = anonymousIdentity(address);
      else {
        // No token is the normal first step of OAuth discovery, not an attack: it is recorded but
        // does not count toward the address's limit.
        this.failures.record("missing_token", { connection: connection.name, requestId: httpRequestId }, { address });
        throw new AuthError("CS_ERR_UNAUTHENTICATED", "no bearer token", challenge());
      }
    } else {
      const m = /^Bearer\s+([A-Za-z0-9\-_.~+/]+=*)\s*$/i.exec(authorization);
      try {
        if (!m) throw new TokenRejected("malformed_token", "the Authorization header is not `Bearer <token>`");
        const { payload, issuer } = await this.verifier.verify(m[1]!, resource);
        identity = identityFromClaims(payload, issuer);
        // A token the gateway issued after a browser login: the person is who the IdP said.
        const original = issuer.originalIssuerClaim ? payload[issuer.originalIssuerClaim] : undefined;
        if (typeof original === "string" && original !== "") identity.issuer = original;
      } catch (err) {
        const rejected = err instanceof TokenRejected ? err : new TokenRejected("malformed_token", String(err));
        // An identity provider that cannot be reached is not the caller's fault: it does not count
        // toward the address's limit (the call is still refused: fail closed).
        if (rejected.reason !== "issuer_unavailable") this.#limiter.fail(address);
        this.failures.record(rejected.reason, { connection: connection.name, requestId: httpRequestId }, { address, detail: rejected.message });
        throw new AuthError("CS_ERR_UNAUTHENTICATED", rejected.message, challenge("invalid_token", rejected.message));
      }
    }

    if (!mayUseConnection(connection.access, identity)) {
      const needed = groupsNeeded(connection.access);
      this.denials.record("connection_not_granted", { connection: connection.name, subject: identity.subject, requestId: httpRequestId }, { groups: identity.groups, needed });
      throw new AuthError(
        "CS_ERR_CONNECTION_FORBIDDEN",
        identity.kind === "anonymous"
          ? `connection '${connection.name}' does not accept anonymous callers`
          : `connection '${connection.name}' needs one of the groups: ${needed.join(", ")}; you have: ${identity.groups.join(", ") || "none"}`,
        {},
        connection.name,
      );
    }
    return identity;
  }

  /**
   * A session is bound to the identity that opened it. Another identity presenting its id is
   * refused and recorded (a leaked or guessed session id must not lend someone else's access).
   */
  checkSessionOwner(connection: string, sessionId: string, owner: Identity, presenter: Identity): void {
    if (sameCaller(owner, presenter)) return;
    this.denials.record(
      "session_identity_mismatch",
      { connection, sessionId, subject: presenter.subject },
      { owner: { issuer: owner.issuer, subject: owner.subject }, presenter: { issuer: presenter.issuer, subject: presenter.subject, address: presenter.address ?? null } },
    );
    throw new CountersignError("CS_ERR_SESSION_FORBIDDEN");
  }
}
