// The requestState of a held call answered with input_required (MCP 2026-07-28 multi-round-trip
// requests): an HMAC-SHA256-sealed record of who asked what, and which approval it waits for. The
// caller sends it back with its retry; the gateway trusts nothing in it it did not seal, and
// nothing it sealed for another caller, connection, tool or arguments.
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { canonicalize } from "json-canonicalize";
import type { Identity } from "../../../auth/identity.js";
import { CountersignError } from "../../../errors.js";

const VERSION = 1;
/** The longest requestState accepted (a sealed state is a few hundred bytes). */
const MAX_STATE_CHARS = 4096;

interface Sealed {
  v: number;
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
  readonly #key: Buffer;

  /** `keyMaterial`: the approvals arguments key (shared by replicas); absent: a key of this process only. */
  constructor(keyMaterial: Buffer | undefined) {
    this.#key = createHmac("sha256", keyMaterial ?? randomBytes(32)).update("countersign stateless requestState v1").digest();
  }

  seal(call: HeldCall, approvalId: string, expiresAt: Date): string {
    const body: Sealed = { v: VERSION, who: [call.identity.issuer, call.identity.subject], connection: call.connection, tool: call.tool, args: argumentsHash(call.arguments), approval: approvalId, exp: expiresAt.getTime() };
    const payload = Buffer.from(JSON.stringify(body)).toString("base64url");
    return `${payload}.${this.#mac(payload)}`;
  }

  /** Whether this gateway sealed the state (for any call): an upstream's own requestState is not. */
  issued(state: unknown): boolean {
    if (typeof state !== "string" || state.length > MAX_STATE_CHARS) return false;
    const [payload, mac, extra] = state.split(".");
    if (!payload || !mac || extra !== undefined) return false;
    const expected = Buffer.from(this.#mac(payload));
    const given = Buffer.from(mac);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  /** The approval id the state names, once its seal, expiry and binding to this call hold; else the refusal. */
  open(state: unknown, call: HeldCall, now = Date.now()): string {
    const bad = (why: string) => new CountersignError("CS_ERR_REQUEST_STATE_INVALID", why);
    if (typeof state !== "string" || state.length > MAX_STATE_CHARS) throw bad("not a requestState the gateway issued");
    const [payload, mac, extra] = state.split(".");
    if (!payload || !mac || extra !== undefined) throw bad("not a requestState the gateway issued");
    const expected = Buffer.from(this.#mac(payload));
    const given = Buffer.from(mac);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw bad("its seal does not verify (changed, or issued by another gateway)");
    let body: Sealed;
    try {
      body = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as Sealed;
    } catch {
      throw bad("its content is not readable");
    }
    if (body.v !== VERSION) throw bad("an unknown version");
    if (body.exp <= now) throw bad("it expired with its approval request");
    if (body.who?.[0] !== call.identity.issuer || body.who?.[1] !== call.identity.subject) throw bad("it was issued to another caller");
    if (body.connection !== call.connection) throw bad("it was issued for another connection");
    if (body.tool !== call.tool) throw bad("it was issued for another tool");
    if (body.args !== argumentsHash(call.arguments)) throw bad("it was issued for other arguments");
    return body.approval;
  }

  #mac(payload: string): string {
    return createHmac("sha256", this.#key).update(payload).digest("base64url");
  }
}
