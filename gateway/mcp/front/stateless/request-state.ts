// The requestState of a held call answered with input_required (MCP 2026-07-28 multi-round-trip
// requests): an HMAC-SHA256-sealed record of who asked what, and which approval it waits for. The
// caller sends it back with its retry; the gateway trusts nothing in it it did not seal, and
// nothing it sealed for another caller, connection, tool or arguments. The seal key comes from
// the keyring (keys.ring.requestState): the state names its key id, so a state sealed before a
// rotation opens while its key is verify-only, and is refused once the key is retired.
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { canonicalize } from "json-canonicalize";
import type { Identity } from "../../../auth/identity.js";
import { CountersignError } from "../../../errors.js";
import type { KeyRing } from "../../../keys/ring.js";

const VERSION = 1;
/** The longest requestState accepted (a sealed state is a few hundred bytes). */
const MAX_STATE_CHARS = 4096;

interface Sealed {
  v: number;
  /** The id of the ring key that sealed it. */
  k: string;
  /** issuer, subject */
  who: [string, string];
  connection: string;
  tool: string;
  /** SHA-256 of the canonical arguments. */
  args: string;
  approval: string;
  /** Expiry, ms since the epoch (the approval request's). */
  exp: number;
}

export interface HeldCall {
  identity: Identity;
  connection: string;
  tool: string;
  arguments: unknown;
}

export function argumentsHash(args: unknown): string {
  return createHash("sha256").update(canonicalize(args ?? {})).digest("base64url");
}

export class RequestStateSeal {
  readonly #ring: KeyRing;

  /** `ring`: the keyring's requestState keys (shared by the replicas, rotated by a reload). */
  constructor(ring: KeyRing) {
    this.#ring = ring;
  }

  seal(call: HeldCall, approvalId: string, expiresAt: Date): string {
    const { id, key } = this.#ring.active();
    const body: Sealed = { v: VERSION, k: id, who: [call.identity.issuer, call.identity.subject], connection: call.connection, tool: call.tool, args: argumentsHash(call.arguments), approval: approvalId, exp: expiresAt.getTime() };
    const payload = Buffer.from(JSON.stringify(body)).toString("base64url");
    return `${payload}.${mac(key, payload)}`;
  }

  /** The approval id the state names, once its seal, expiry and binding to this call hold; else the refusal. */
  open(state: unknown, call: HeldCall, now = Date.now()): string {
    const bad = (why: string) => new CountersignError("CS_ERR_REQUEST_STATE_INVALID", why);
    if (typeof state !== "string" || state.length > MAX_STATE_CHARS) throw bad("not a requestState the gateway issued");
    const [payload, sealMac, extra] = state.split(".");
    if (!payload || !sealMac || extra !== undefined) throw bad("not a requestState the gateway issued");
    // The key id is read before the seal is checked, only to pick the key; nothing else is trusted yet.
    let body: Sealed;
    try {
      body = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as Sealed;
    } catch {
      throw bad("its seal does not verify (changed, or issued by another gateway)");
    }
    const key = this.#ring.lookup(body?.k);
    if (!key.ok) throw bad(key.refused === "retired" ? "it was sealed with a retired key (revoked): send the call again without requestState" : "its seal does not verify (changed, or issued by another gateway)");
    const expected = Buffer.from(mac(key.key, payload));
    const given = Buffer.from(sealMac);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw bad("its seal does not verify (changed, or issued by another gateway)");
    if (body.v !== VERSION) throw bad("an unknown version");
    if (body.exp <= now) throw bad("it expired with its approval request");
    if (body.who?.[0] !== call.identity.issuer || body.who?.[1] !== call.identity.subject) throw bad("it was issued to another caller");
    if (body.connection !== call.connection) throw bad("it was issued for another connection");
    if (body.tool !== call.tool) throw bad("it was issued for another tool");
    if (body.args !== argumentsHash(call.arguments)) throw bad("it was issued for other arguments");
    return body.approval;
  }
}

function mac(key: Buffer, payload: string): string {
  return createHmac("sha256", key).update(payload).digest("base64url");
}
