// The requestState the gateway issues with an input_required result (MCP 2026-07-28 multi-round-trip
// requests): an HMAC-SHA256-sealed record of who asked what, and what the retry resumes: the
// approval a held call waits for, or the round of a bridged call whose 2025-era upstream asked
// its client for input (elicitation, sampling, roots). The caller sends it back with its retry;
// the gateway trusts nothing in it it did not seal, and nothing it sealed for another caller,
// connection, method, tool or arguments. The seal key comes from the keyring
// (keys.ring.requestState): the state names its key id, so a state sealed before a rotation opens
// while its key is verify-only, and is refused once the key is retired.
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
  approval?: string | undefined;
  /** A bridged call waiting for input: its bridge session, its id there, its method and round. */
  input?: { session: string; call: string; method: string; round: number } | undefined;
  /** Expiry, ms since the epoch (the approval request's, or the round's). */
  exp: number;
}

/** What a requestState resumes. */
export type Resumes = { kind: "approval"; approval: string } | { kind: "input"; session: string; call: string; method: string; round: number };

export interface HeldCall {
  identity: Identity;
  connection: string;
  /** The request's method (checked for a bridged call's round). */
  method?: string | undefined;
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
    return this.#sealBody({ ...this.#bound(call), approval: approvalId, exp: expiresAt.getTime() });
  }

  /** The state of one round of a bridged call waiting for its caller's input responses. */
  sealInput(call: HeldCall, input: { session: string; call: string; method: string; round: number }, expiresAt: number): string {
    return this.#sealBody({ ...this.#bound(call), input, exp: expiresAt });
  }

  #bound(call: HeldCall): Omit<Sealed, "exp" | "k"> {
    return { v: VERSION, who: [call.identity.issuer, call.identity.subject], connection: call.connection, tool: call.tool, args: argumentsHash(call.arguments) };
  }

  #sealBody(body: Omit<Sealed, "k">): string {
    const { id, key } = this.#ring.active();
    const payload = Buffer.from(JSON.stringify({ ...body, k: id } satisfies Sealed)).toString("base64url");
    return `${payload}.${mac(key, payload)}`;
  }

  /** Whether this gateway sealed the state (for any call): an upstream's own requestState is not. */
  issued(state: unknown): boolean {
    if (typeof state !== "string" || state.length > MAX_STATE_CHARS) return false;
    const [payload, sealMac, extra] = state.split(".");
    if (!payload || !sealMac || extra !== undefined) return false;
    let kid: unknown;
    try {
      kid = (JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as { k?: unknown } | null)?.k;
    } catch {
      return false;
    }
    // A retired key's state is still the gateway's own: open() refuses it with the reason.
    const key = this.#ring.lookup(kid);
    if (!key.ok) return key.refused === "retired";
    const expected = Buffer.from(mac(key.key, payload));
    const given = Buffer.from(sealMac);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  /** What the state resumes, once its seal, expiry and binding to this call hold; else the refusal. */
  open(state: unknown, call: HeldCall, now = Date.now()): Resumes {
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
    if (typeof body.exp !== "number" || body.exp <= now) throw bad(body.input ? "its round of input expired (the upstream call was cancelled)" : "it expired with its approval request");
    if (body.who?.[0] !== call.identity.issuer || body.who?.[1] !== call.identity.subject) throw bad("it was issued to another caller");
    if (body.connection !== call.connection) throw bad("it was issued for another connection");
    if (body.tool !== call.tool) throw bad("it was issued for another tool");
    if (body.args !== argumentsHash(call.arguments)) throw bad("it was issued for other arguments");
    if (body.input && typeof body.input.session === "string" && typeof body.input.call === "string" && typeof body.input.round === "number") {
      if (body.input.method !== call.method) throw bad("it was issued for another method");
      return { kind: "input", ...body.input };
    }
    if (typeof body.approval !== "string") throw bad("it names nothing to resume");
    return { kind: "approval", approval: body.approval };
  }
}

function mac(key: Buffer, payload: string): string {
  return createHmac("sha256", key).update(payload).digest("base64url");
}
