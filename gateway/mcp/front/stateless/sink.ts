// Where a bridge session's committed messages go: each answer to the stateless request that is
// waiting for it (by the bridge's own request id), and a request's progress to that request's
// stream. A message no waiting request claims is undeliverable, on record (the pipeline's deliver
// stage records it): a 2026 caller has no standing stream to take it.
import { CountersignError, jsonRpcErrorResponse } from "../../../errors.js";
import type { ClientSink } from "../../../pipeline/exchange.js";
import { MAX_PENDING_REQUESTS } from "../../../pipeline/pending.js";
import type { JsonRpcId, JsonRpcMessage } from "../../jsonrpc.js";

export interface Waiter {
  /** The answer (result or error), committed and masked for the caller. */
  answer(msg: JsonRpcMessage): void;
  /** A message related to the request (progress); false when it cannot be sent. */
  related(msg: JsonRpcMessage): boolean;
}

export class StatelessSink implements ClientSink {
  /** Requests waiting for their answer; bounded like the pipeline's pending requests. */
  readonly #waiting = new Map<string, Waiter>();
  #seq = 0;
  #ended = false;
  /** What the upstream answered the bridge's initialize with (as masked for the caller): server/discover is answered from it. */
  initializeResult: Record<string, unknown> | undefined;

  /** A request id no caller chose: callers' ids may collide, the bridge's never do. */
  nextId(): string {
    return `countersign-${++this.#seq}`;
  }

  get size(): number {
    return this.#waiting.size;
  }

  /** Waits for the answer to `id`; false when the sink is at its bound or ended. */
  expect(id: string, waiter: Waiter): boolean {
    if (this.#ended || this.#waiting.size >= MAX_PENDING_REQUESTS) return false;
    this.#waiting.set(id, waiter);
    return true;
  }

  forget(id: string): void {
    this.#waiting.delete(id);
  }

  deliver(msg: JsonRpcMessage, route: { responseTo?: JsonRpcId | undefined; relatedTo?: JsonRpcId | undefined }): boolean {
    if (route.responseTo !== undefined) {
      const w = this.#waiting.get(String(route.responseTo));
      if (!w) return false;
      this.#waiting.delete(String(route.responseTo));
      w.answer(msg);
      return true;
    }
    if (route.relatedTo !== undefined) return this.#waiting.get(String(route.relatedTo))?.related(msg) ?? false;
    return false;
  }

  /** The bridge session ended: its pending requests were answered with errors before this; any other waiter is answered here. */
  end(): void {
    this.#ended = true;
    const err = new CountersignError("CS_ERR_UPSTREAM_EXITED", "the gateway's upstream session for this caller ended");
    for (const [id, w] of this.#waiting) w.answer(jsonRpcErrorResponse(id, err) as unknown as JsonRpcMessage);
    this.#waiting.clear();
  }
}
