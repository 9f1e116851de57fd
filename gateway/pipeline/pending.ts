// The client requests in flight in one context, with what routes to them: their progress tokens
// and the holds waiting on a person. Bounded: a caller cannot grow it without limit.
import { CountersignError } from "../errors.js";
import { idKey, progressTokenOf, type JsonRpcId, type JsonRpcMessage } from "../mcp/jsonrpc.js";
import type { PendingRequest } from "./exchange.js";
import { RequestLifecycle } from "./request-state.js";

/** Client requests in flight per session (held calls included); beyond, a new request is refused. */
export const MAX_PENDING_REQUESTS = 1000;

export class PendingRequests {
  readonly #pending = new Map<string, PendingRequest>();
  /** Progress token → the client request that carried it, to route progress to its stream. */
  readonly #progress = new Map<string, JsonRpcId>();
  /** Calls held for approval: aborted when the client cancels or the context ends. Keyed like requests (tasks: `task:<id>`). */
  readonly holds = new Map<string, AbortController>();

  get size(): number {
    return this.#pending.size;
  }

  /** Admits a request; refuses (the caller's error) at MAX_PENDING_REQUESTS. */
  track(msg: JsonRpcMessage, id: JsonRpcId, method: string, extra: Pick<PendingRequest, "justification" | "httpRequestId" | "caller">): PendingRequest {
    if (this.#pending.size >= MAX_PENDING_REQUESTS) {
      throw new CountersignError("CS_ERR_TOO_MANY_IN_FLIGHT", `at most ${MAX_PENDING_REQUESTS}`);
    }
    const progressToken = progressTokenOf(msg);
    const p: PendingRequest = { id, method, lifecycle: new RequestLifecycle(), progressToken, ...extra, receivedAt: performance.now() };
    this.#pending.set(idKey(id), p);
    if (progressToken !== undefined) this.#progress.set(idKey(progressToken), id);
    return p;
  }

  get(id: JsonRpcId): PendingRequest | undefined {
    return this.#pending.get(idKey(id));
  }

  has(id: JsonRpcId): boolean {
    return this.#pending.has(idKey(id));
  }

  /** The client request a progress token belongs to. */
  ownerOf(progressToken: JsonRpcId): JsonRpcId | undefined {
    return this.#progress.get(idKey(progressToken));
  }

  /** Forgets a request (answered, failed or cancelled) and stops its upstream timer. */
  untrack(id: JsonRpcId): PendingRequest | undefined {
    const p = this.#pending.get(idKey(id));
    if (!p) return undefined;
    clearTimeout(p.timer);
    this.#pending.delete(idKey(id));
    if (p.progressToken !== undefined) this.#progress.delete(idKey(p.progressToken));
    return p;
  }

  all(): PendingRequest[] {
    return [...this.#pending.values()];
  }

  abortHolds(): void {
    for (const h of this.holds.values()) h.abort();
  }
}
