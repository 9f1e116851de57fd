// Multi-round-trip requests (MCP 2026-07-28) bridged to a 2025-era upstream. During a bridged
// call the upstream may ask its client for input (elicitation/create, sampling/createMessage,
// roots/list): a 2026 caller has no stream for such requests, so the gateway keeps the upstream
// call in flight, answers the caller with `input_required` (the upstream's requests as
// `inputRequests`, and a sealed requestState naming this call and round), and, when the caller
// retries with `inputResponses`, answers the upstream's pending requests with them and waits for
// what comes next: the upstream's answer, or more requests (another round).
//
// Bounds: a call asks at most MAX_ASKS_PER_CALL unanswered requests at once (more are refused to
// the upstream); a bridge session parks at most MAX_PARKED_CALLS calls waiting for their caller's
// retry (at the bound the call is cancelled upstream and the caller refused); a parked call waits
// at most ROUND_TIMEOUT_MS (and half of limits.upstreamTimeoutMs) for its retry, then is cancelled
// upstream and its requestState refused. The upstream's requests of one round arrive one by one
// (the 2025 SDKs send a round's legs at once): they are gathered until COALESCE_MS pass without
// another, so the caller gets the round whole.
import type { JsonRpcId, JsonRpcMessage } from "../../jsonrpc.js";

/** Requests one call may have waiting for the caller at once. */
export const MAX_ASKS_PER_CALL = 16;
/** Calls one bridge session keeps waiting for their caller's retry. */
export const MAX_PARKED_CALLS = 16;
/** How long a parked call waits for its caller's retry (at most half the upstream timeout). */
export const ROUND_TIMEOUT_MS = 120_000;
/** Quiet time that ends a round of upstream requests. */
export const COALESCE_MS = 40;
/** Finished calls remembered per bridge session, so a state used once reads as replayed (bounded, oldest out). */
const REMEMBERED_DONE = 64;

/** The methods whose 2026-07-28 result may be input_required. */
export const INPUT_REQUIRED_METHODS: ReadonlySet<string> = new Set(["tools/call", "prompts/get", "resources/read"]);

/** One request of the upstream's, shown to the caller under `key`. */
export interface Ask {
  key: string;
  id: JsonRpcId;
  method: string;
  params: Record<string, unknown>;
}

export type Outcome = { kind: "answer"; msg: JsonRpcMessage } | { kind: "input"; asks: Ask[] };

const SHORT: Readonly<Record<string, string>> = { "elicitation/create": "elicitation", "sampling/createMessage": "sampling", "roots/list": "roots" };

/** The client capability an upstream request needs of the caller; undefined: none the caller could give. */
export function capabilityFor(ask: Pick<Ask, "method" | "params">): Record<string, unknown> | undefined {
  if (ask.method === "elicitation/create") return ask.params.mode === "url" ? { elicitation: { url: {} } } : { elicitation: {} };
  if (ask.method === "sampling/createMessage") return ask.params.tools !== undefined || ask.params.toolChoice !== undefined ? { sampling: { tools: {} } } : { sampling: {} };
  if (ask.method === "roots/list") return { roots: {} };
  return undefined;
}

/** Whether the caller's declared capabilities cover what `required` names (one level deep, as the spec's sub-capabilities are). */
export function declares(declared: Record<string, unknown>, required: Record<string, unknown>): boolean {
  for (const [k, sub] of Object.entries(required)) {
    const have = declared[k];
    if (have === undefined || have === null || typeof have !== "object") return false;
    for (const s of Object.keys(sub as Record<string, unknown>)) if ((have as Record<string, unknown>)[s] === undefined) return false;
  }
  return true;
}

/** A bridged call: its answer, or the upstream's requests, as they come, for whoever waits. */
export class BridgedCall {
  /** Rounds the caller has answered; a requestState names the round it answers. */
  round = 0;
  parked = false;
  /** Set while an HTTP request waits for this call: where the upstream's progress goes. */
  related: ((msg: JsonRpcMessage) => boolean) | undefined;
  readonly #open = new Map<string, Ask>();
  #fresh = 0;
  #answer: JsonRpcMessage | undefined;
  #waiter: ((o: Outcome) => void) | undefined;
  #quiet: NodeJS.Timeout | undefined;
  #expiry: NodeJS.Timeout | undefined;
  #n = 0;

  constructor(
    readonly bridgeId: string,
    readonly method: string,
  ) {}

  get done(): boolean {
    return this.#answer !== undefined;
  }

  /** The upstream's answer to the call (or the gateway's error in its place); requests still open are moot. */
  answered(msg: JsonRpcMessage): void {
    this.#answer = msg;
    this.#flush();
  }

  /** A request of the upstream's during this call; false at the bound (the caller never sees it). */
  asked(msg: JsonRpcMessage): boolean {
    const method = String(msg.method);
    if (this.#answer !== undefined || this.#open.size >= MAX_ASKS_PER_CALL || msg.id === undefined || SHORT[method] === undefined) return false;
    const key = `${SHORT[method]}-${++this.#n}`;
    const params = (msg.params ?? {}) as Record<string, unknown>;
    this.#open.set(key, { key, id: msg.id as JsonRpcId, method, params });
    this.#fresh++;
    clearTimeout(this.#quiet);
    this.#quiet = setTimeout(() => {
      this.#quiet = undefined;
      this.#flush();
    }, COALESCE_MS);
    return true;
  }

  /** The open requests the caller answered with an object (taken out); the rest stay open, to be asked again. */
  take(responses: Record<string, unknown>): Array<{ ask: Ask; response: unknown }> {
    const out: Array<{ ask: Ask; response: unknown }> = [];
    for (const [key, ask] of this.#open) {
      const r = Object.hasOwn(responses, key) ? responses[key] : undefined;
      if (r === null || typeof r !== "object" || Array.isArray(r)) continue;
      out.push({ ask, response: responses[key] });
      this.#open.delete(key);
    }
    return out;
  }

  /** Every request still open (on a timeout or a refusal they are answered with an error). */
  drain(): Ask[] {
    const all = [...this.#open.values()];
    this.#open.clear();
    return all;
  }

  /** What comes next: the answer, or the round of requests the caller must answer (open ones it left unanswered, too). */
  next(): Promise<Outcome> {
    return new Promise((resolve) => {
      this.#waiter = resolve;
      // Requests left open from the last round are asked again at once, with any new ones.
      if (this.#open.size > 0 && this.#fresh === 0) this.#fresh = 1;
      if (this.#quiet === undefined) this.#flush();
    });
  }

  /** Parked for `ms`: `expire` runs unless a retry resumes it first. */
  park(ms: number, expire: () => void): void {
    this.parked = true;
    this.#expiry = setTimeout(expire, ms);
    this.#expiry.unref?.();
  }

  resume(): void {
    this.parked = false;
    this.round++;
    clearTimeout(this.#expiry);
  }

  stop(): void {
    clearTimeout(this.#expiry);
    clearTimeout(this.#quiet);
    this.#waiter = undefined;
  }

  #flush(): void {
    const w = this.#waiter;
    if (!w) return;
    if (this.#answer !== undefined) {
      this.#waiter = undefined;
      clearTimeout(this.#quiet);
      return w({ kind: "answer", msg: this.#answer });
    }
    if (this.#fresh > 0 && this.#open.size > 0) {
      this.#waiter = undefined;
      this.#fresh = 0;
      w({ kind: "input", asks: [...this.#open.values()] });
    }
  }
}

/** The calls of one bridge session that wait for their caller's retry, and the ones that finished. */
export class ParkedCalls {
  readonly #parked = new Map<string, BridgedCall>();
  readonly #done: string[] = [];

  get size(): number {
    return this.#parked.size;
  }

  /** False at the bound. */
  park(call: BridgedCall): boolean {
    if (!this.#parked.has(call.bridgeId) && this.#parked.size >= MAX_PARKED_CALLS) return false;
    this.#parked.set(call.bridgeId, call);
    return true;
  }

  get(id: string): BridgedCall | undefined {
    return this.#parked.get(id);
  }

  /** The call no longer waits for a retry (resumed, finished, expired or refused). */
  release(id: string, finished: boolean): void {
    this.#parked.delete(id);
    if (!finished) return;
    this.#done.push(id);
    if (this.#done.length > REMEMBERED_DONE) this.#done.shift();
  }

  wasDone(id: string): boolean {
    return this.#done.includes(id);
  }

  all(): BridgedCall[] {
    return [...this.#parked.values()];
  }

  clear(): void {
    for (const c of this.#parked.values()) c.stop();
    this.#parked.clear();
  }
}
