// Console logins as signed cookies: no server-side session store to grow, every replica with
// the same console.sessionKey accepts them. The cookie carries who logged in and two times, its
// start (absolute timeout) and the last request (idle timeout), and is refreshed on each request.
// CSRF: a random per-browser cookie, and a form token that is the HMAC of that cookie and the
// login's id (a signed double-submit token): a forged form from another site can know neither.
// Keys: the keyring's console keys (keys.ring.console). Each cookie and token names the id of the
// key that signed it (`<body>.<key id>.<mac>`, `<key id>.<mac>`), so a rotation keeps every login
// while its old key is verify-only, and retiring the key ends them (recorded as cookie_retired_key).
import type { Identity } from "../auth/identity.js";
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import { LEGACY_KEY_IDS } from "../keys/ids.js";
import { KeyRing } from "../keys/ring.js";

export const SESSION_COOKIE = "cs_console";
export const CSRF_COOKIE = "cs_csrf";
export const COOKIE_PATH = "/console";
/** Browsers keep about 4 KB per cookie: a login whose groups make it bigger is refused, not truncated. */
export const MAX_COOKIE_BYTES = 3800;

/** A logged-in person: the identity fields a cookie can carry, and how they logged in. */
export interface ConsoleUser extends Pick<Identity, "kind" | "subject" | "issuer" | "email" | "name" | "groups"> {
  /** How they logged in: "dev" (the quick start's one-click login) or the issuer's label. */
  via: string;
}

export interface ConsoleLogin extends ConsoleUser {
  /** The login's id, for CSRF binding and logout. */
  sid: string;
  /** Milliseconds since the epoch. */
  startedAt: number;
  seenAt: number;
}

export interface CookieOptions {
  secure: boolean;
  idleTimeoutMs: number;
  absoluteTimeoutMs: number;
}

export class ConsoleSessions {
  readonly #ring: KeyRing;
  readonly #opts: CookieOptions;
  /** Logged-out login ids until their absolute timeout. Bound: REVOKED_MAX; at the bound the oldest go first (each still dies at its own idle or absolute timeout). */
  readonly #revoked = new Map<string, number>();

  /** `keys`: the keyring's console keys; a bare key is a ring of one. */
  constructor(keys: KeyRing | Buffer, opts: CookieOptions) {
    this.#ring = keys instanceof KeyRing ? keys : new KeyRing("console", [{ id: "console", key: keys, state: "active" }], "given");
    this.#opts = opts;
  }

  /** `<key id>.<mac>` with the active key. */
  #sign(text: string): string {
    const { id, key } = this.#ring.active();
    return `${id}.${hmac(key, text)}`;
  }

  /**
   * Whether `signed` (`<key id>.<mac>`, or a bare mac from before the keyring: the console.sessionKey's)
   * is the signature of `text` by a key of the ring that still verifies.
   */
  #verify(text: string, signed: string): "ok" | "bad_signature" | "retired_key" {
    const dot = signed.indexOf(".");
    const [id, mac] = dot < 0 ? [LEGACY_KEY_IDS.console, signed] : [signed.slice(0, dot), signed.slice(dot + 1)];
    const key = this.#ring.lookup(id);
    if (!key.ok) return key.refused === "retired" ? "retired_key" : "bad_signature";
    return safeEqual(mac, hmac(key.key, text)) ? "ok" : "bad_signature";
  }

  #cookie(name: string, value: string, maxAgeSeconds: number): string {
    return `${name}=${value}; Path=${COOKIE_PATH}; HttpOnly; SameSite=Lax${this.#opts.secure ? "; Secure" : ""}; Max-Age=${maxAgeSeconds}`;
  }

  /**
   * The login in the request's cookie, if valid and not timed out; `rejected` says why a cookie
   * that was sent is not one (altered, not ours, logged out), so it can be recorded and cleared.
   */
  read(req: FastifyRequest, now = Date.now()): { login?: ConsoleLogin; expired?: "idle" | "absolute"; rejected?: "bad_signature" | "retired_key" | "malformed" | "logged_out" } {
    const raw = cookiesOf(req)[SESSION_COOKIE];
    if (!raw) return {};
    const dot = raw.indexOf(".");
    if (dot <= 0) return { rejected: "bad_signature" };
    const body = raw.slice(0, dot);
    const signature = this.#verify(`login:${body}`, raw.slice(dot + 1));
    if (signature !== "ok") return { rejected: signature };
    let login: ConsoleLogin;
    try {
      login = JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as ConsoleLogin;
    } catch {
      return { rejected: "malformed" };
    }
    if (typeof login.startedAt !== "number" || typeof login.seenAt !== "number" || typeof login.sid !== "string") return { rejected: "malformed" };
    if (this.#revoked.has(login.sid)) return { rejected: "logged_out" };
    if (now - login.startedAt > this.#opts.absoluteTimeoutMs) return { expired: "absolute" };
    if (now - login.seenAt > this.#opts.idleTimeoutMs) return { expired: "idle" };
    return { login };
  }

  /** Sets (or refreshes) the login cookie; throws when it would not fit in a browser's cookie. */
  write(reply: FastifyReply, login: ConsoleLogin): void {
    const body = Buffer.from(JSON.stringify(login)).toString("base64url");
    const value = `${body}.${this.#sign(`login:${body}`)}`;
    if (value.length > MAX_COOKIE_BYTES) throw new Error(`this login carries too many groups (${login.groups.length}) to fit in a cookie`);
    const remaining = Math.ceil((login.startedAt + this.#opts.absoluteTimeoutMs - Date.now()) / 1000);
    appendCookie(reply, this.#cookie(SESSION_COOKIE, value, Math.max(1, remaining)));
  }

  start(reply: FastifyReply, user: ConsoleUser): ConsoleLogin {
    const now = Date.now();
    const login: ConsoleLogin = { ...user, groups: user.groups.slice(0, 200), sid: randomBytes(12).toString("base64url"), startedAt: now, seenAt: now };
    this.write(reply, login);
    return login;
  }

  end(reply: FastifyReply, login: ConsoleLogin | undefined): void {
    if (login) {
      if (this.#revoked.size >= REVOKED_MAX) this.#revoked.delete(this.#revoked.keys().next().value!);
      this.#revoked.set(login.sid, login.startedAt + this.#opts.absoluteTimeoutMs);
    }
    appendCookie(reply, this.#cookie(SESSION_COOKIE, "", 0));
  }

  /** Drops revocations whose logins have timed out anyway. */
  prune(now = Date.now()): void {
    for (const [sid, until] of this.#revoked) if (until < now) this.#revoked.delete(sid);
  }

  /** A short-lived signed value (the OIDC login's state and PKCE verifier) in its own cookie. */
  seal(reply: FastifyReply, name: string, path: string, value: unknown, ttlSeconds: number): void {
    const body = Buffer.from(JSON.stringify({ v: value, exp: Date.now() + ttlSeconds * 1000 })).toString("base64url");
    appendCookie(reply, `${name}=${body}.${this.#sign(`${name}:${body}`)}; Path=${path}; HttpOnly; SameSite=Lax${this.#opts.secure ? "; Secure" : ""}; Max-Age=${ttlSeconds}`);
  }

  unseal(req: FastifyRequest, reply: FastifyReply, name: string, path: string): unknown {
    const raw = cookiesOf(req)[name];
    appendCookie(reply, `${name}=; Path=${path}; HttpOnly; SameSite=Lax${this.#opts.secure ? "; Secure" : ""}; Max-Age=0`);
    if (!raw) return undefined;
    const dot = raw.indexOf(".");
    if (dot <= 0 || this.#verify(`${name}:${raw.slice(0, dot)}`, raw.slice(dot + 1)) !== "ok") return undefined;
    try {
      const { v, exp } = JSON.parse(Buffer.from(raw.slice(0, dot), "base64url").toString("utf8")) as { v: unknown; exp: number };
      return typeof exp === "number" && exp > Date.now() ? v : undefined;
    } catch {
      return undefined;
    }
  }

  /** This browser's CSRF cookie, set when absent; returns the form token for the given login (or none). */
  csrfToken(req: FastifyRequest, reply: FastifyReply, login: ConsoleLogin | undefined): string {
    let nonce = cookiesOf(req)[CSRF_COOKIE];
    if (!nonce || !/^[A-Za-z0-9_-]{22,64}$/.test(nonce)) {
      nonce = randomBytes(24).toString("base64url");
      // Seen by later requests of this one's reply: kept on the request for the token below.
      (req as { csrfNonce?: string }).csrfNonce = nonce;
      appendCookie(reply, this.#cookie(CSRF_COOKIE, nonce, 7 * 24 * 3600));
    }
    return this.#sign(`csrf:${nonce}:${login?.sid ?? ""}`);
  }

  /** Whether a form's token matches this browser's CSRF cookie and login. */
  csrfValid(req: FastifyRequest, token: unknown, login: ConsoleLogin | undefined): boolean {
    const nonce = cookiesOf(req)[CSRF_COOKIE];
    if (!nonce || typeof token !== "string" || token.length === 0) return false;
    return this.#verify(`csrf:${nonce}:${login?.sid ?? ""}`, token) === "ok";
  }
}

const REVOKED_MAX = 10_000;

function hmac(key: Buffer, text: string): string {
  return createHmac("sha256", key).update(text).digest("base64url");
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function appendCookie(reply: FastifyReply, cookie: string): void {
  const prev = reply.getHeader("set-cookie");
  const list = prev === undefined ? [] : Array.isArray(prev) ? prev.map(String) : [String(prev)];
  const name = cookie.slice(0, cookie.indexOf("="));
  reply.header("set-cookie", [...list.filter((c) => !c.startsWith(`${name}=`)), cookie]);
}

/** The request's cookies (first value of each name wins); at most 50 are read. */
export function cookiesOf(req: FastifyRequest): Record<string, string> {
  const cached = (req as { consoleCookies?: Record<string, string> }).consoleCookies;
  if (cached) return cached;
  const out: Record<string, string> = {};
  const header = req.headers.cookie;
  if (typeof header === "string") {
    for (const part of header.split(";").slice(0, 50)) {
      const eq = part.indexOf("=");
      if (eq <= 0) continue;
      const name = part.slice(0, eq).trim();
      if (!(name in out)) out[name] = part.slice(eq + 1).trim();
    }
  }
  const pending = (req as { csrfNonce?: string }).csrfNonce;
  if (pending) out[CSRF_COOKIE] = pending;
  (req as { consoleCookies?: Record<string, string> }).consoleCookies = out;
  return out;
}
