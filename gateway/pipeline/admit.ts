// admit: whether a message may enter at all, before anything is decided or written. From the
// client: the context must be open, and a request takes a slot in the bounded pending table. From
// the upstream: notifications and requests to the client share one rate (a token bucket), and
// unanswered requests to the client are capped; beyond either bound the message is refused and
// that is on record, never silently lost.
import { CountersignError } from "../errors.js";
import { idKey, type Classified, type JsonRpcId, type JsonRpcMessage } from "../mcp/jsonrpc.js";
import { taskParamsOf } from "../mcp/tasks.js";
import { JUSTIFICATION_HEADER, justificationOf } from "../policy/justification.js";
import type { ExchangeContext } from "./context.js";
import type { Exchange, RequestHints } from "./exchange.js";

/** Server→client requests awaiting the client's answer, per context. */
export const MAX_UNANSWERED_SERVER_REQUESTS = 100;

/** The caller's stated reason (policy/justification.ts: `_meta` wins, the header is percent-decoded). */
export function justificationFor(msg: JsonRpcMessage, hints: RequestHints | undefined): string | undefined {
  return justificationOf(msg, hints?.justification === undefined ? undefined : { [JUSTIFICATION_HEADER]: hints.justification });
}

/**
 * Admits a client message into the exchange: a request is tracked from here (its slot taken before
 * any await). Throws for a closed context or a full pending table; the front reports it.
 */
export function admitFromClient(ctx: ExchangeContext, upstreamSide: UpstreamAdmission, msg: JsonRpcMessage, c: Classified, hints: RequestHints | undefined): Exchange {
  if (ctx.ended) throw new CountersignError("CS_ERR_UNKNOWN_SESSION", "the session has ended");
  const justification = c.kind === "request" || c.kind === "notification" ? justificationFor(msg, hints) : undefined;
  const httpRequestId = hints?.requestId ?? null;
  if (c.kind === "request") {
    const pending = ctx.requests.track(msg, c.id, c.method, { justification, httpRequestId: hints?.requestId, caller: hints?.caller });
    const params = msg.params as { name?: unknown; uri?: unknown } | undefined;
    pending.target = typeof params?.name === "string" ? params.name : typeof params?.uri === "string" ? params.uri : undefined;
    // Offered tasks: a task-augmented tools/call is answered with a task, whatever is decided.
    if (ctx.tasks?.offered && c.method === "tools/call") pending.taskParams = taskParamsOf(msg.params);
    return { message: msg, c, hints, pending, method: c.method, httpRequestId, justification };
  }
  // The client's answer to a request of the upstream's: its record names that request's method.
  const method = c.kind === "notification" ? c.method : c.id === undefined ? null : upstreamSide.answered(c.id);
  return { message: msg, c, hints, pending: undefined, method, httpRequestId, justification };
}

/** The upstream side's bounds for one context: a shared rate and a cap on unanswered requests. */
export class UpstreamAdmission {
  readonly #ratePerSecond: number;
  #bucket: { tokens: number; at: number; dropped: number };
  /** Server→client requests awaiting the client's answer → their method. Bounded: MAX_UNANSWERED_SERVER_REQUESTS. */
  readonly #unanswered = new Map<string, string>();
  /** Refused upstream requests since the last refusal event, and when that event was recorded. */
  #refusedSinceEvent = 0;
  #lastRefusalEventAt = 0;

  constructor(ratePerSecond: number, private readonly onFlood: (dropped: number) => void) {
    this.#ratePerSecond = ratePerSecond;
    this.#bucket = { tokens: ratePerSecond * 2, at: Date.now(), dropped: 0 };
  }

  get unanswered(): number {
    return this.#unanswered.size;
  }

  /** A notification from the upstream: admitted within the rate, else dropped (reported once a second). */
  notification(): boolean {
    const rate = this.#ratePerSecond;
    const b = this.#bucket;
    const now = Date.now();
    b.tokens = Math.min(rate * 2, b.tokens + ((now - b.at) / 1000) * rate);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return true;
    }
    // One report per second at most: reporting each drop would turn a flood into a flood of events.
    if (b.dropped++ === 0) {
      setTimeout(() => {
        const dropped = this.#bucket.dropped;
        this.#bucket.dropped = 0;
        if (dropped > 0) this.onFlood(dropped);
      }, 1000).unref();
    }
    return false;
  }

  /**
   * A request from the upstream to the client: admitted like a notification and while fewer than
   * the cap are unanswered. Refused: how many refusals to report now (0 while within the second).
   */
  request(id: JsonRpcId, method: string): { admitted: true } | { admitted: false; report: number } {
    if (this.#unanswered.size < MAX_UNANSWERED_SERVER_REQUESTS && this.notification()) {
      this.#unanswered.set(idKey(id), method);
      return { admitted: true };
    }
    this.#refusedSinceEvent++;
    const now = Date.now();
    if (now - this.#lastRefusalEventAt < 1000) return { admitted: false, report: 0 };
    const report = this.#refusedSinceEvent;
    this.#lastRefusalEventAt = now;
    this.#refusedSinceEvent = 0;
    return { admitted: false, report };
  }

  /** The client answered an upstream request: its method, and the slot is free again. */
  answered(id: JsonRpcId): string | null {
    const method = this.#unanswered.get(idKey(id)) ?? null;
    this.#unanswered.delete(idKey(id));
    return method;
  }
}
