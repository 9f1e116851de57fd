// Where a bridge session's committed messages go: each answer to the stateless request that is
// waiting for it (by the bridge's own request id), a request's progress to that request's stream,
// and the upstream's own requests (elicitation, sampling, roots) to the bridged call they belong
// to, which turns them into an input_required round (rounds.ts). The call an upstream request
// belongs to is the one whose stream carried it (HTTP upstreams tell); when the transport does not
// tell (stdio), it is the one call in flight that may answer input_required, and with none or
// several it is refused to the upstream. A message no waiting request claims is undeliverable, on
// record (the pipeline's deliver stage records it): a 2026 caller has no standing stream to take it.
import { CountersignError, jsonRpcErrorResponse } from "../../../errors.js";
import type { ClientSink } from "../../../pipeline/exchange.js";
import { MAX_PENDING_REQUESTS } from "../../../pipeline/pending.js";
import type { JsonRpcId, JsonRpcMessage } from "../../jsonrpc.js";
import { declaredHeaderParams, MAX_TOOLS_REMEMBERED, type HeaderParam } from "./param-headers.js";
import { ParkedCalls } from "./rounds.js";

export interface Waiter {
  /** The answer (result or error), committed and masked for the caller. */
  answer(msg: JsonRpcMessage): void;
  /** A message related to the request (progress); false when it cannot be sent. */
  related(msg: JsonRpcMessage): boolean;
  /** A request of the upstream's made during this call (only calls that may answer input_required take one). */
  ask?(msg: JsonRpcMessage): boolean;
  /** Whether the call is running upstream now (not parked waiting for its caller's retry, not answered). */
  running?(): boolean;
}

export class StatelessSink implements ClientSink {
  /** Requests waiting for their answer; bounded like the pipeline's pending requests. */
  readonly #waiting = new Map<string, Waiter>();
  #seq = 0;
  #ended = false;
  /** What the upstream answered the bridge's initialize with (as masked for the caller): server/discover is answered from it. */
  initializeResult: Record<string, unknown> | undefined;
  /** Bridged calls waiting for their caller's input responses (bounded: rounds.ts). */
  readonly parked = new ParkedCalls();
  /** Per tool, the Mcp-Param-* headers its inputSchema declares, from the tools/list answers carried (tools that declare some; bounded). */
  readonly headerParams = new Map<string, HeaderParam[]>();
  /** How the bridge answers an upstream request itself (set when the bridge starts): through the pipeline, on record. */
  answerUpstream: ((msg: JsonRpcMessage) => void) | undefined;

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

  /** Learns the header parameters of the tools a tools/list answer lists. */
  learnTools(tools: unknown): void {
    if (!Array.isArray(tools)) return;
    for (const t of tools as Array<{ name?: unknown; inputSchema?: unknown }>) {
      if (typeof t?.name !== "string") continue;
      const params = declaredHeaderParams(t.inputSchema);
      if (params.length === 0) this.headerParams.delete(t.name);
      else if (this.headerParams.has(t.name) || this.headerParams.size < MAX_TOOLS_REMEMBERED) this.headerParams.set(t.name, params);
    }
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
    if (typeof msg.method === "string" && msg.id !== undefined) return this.#upstreamRequest(msg, route.relatedTo);
    if (route.relatedTo !== undefined) return this.#waiting.get(String(route.relatedTo))?.related(msg) ?? false;
    return false;
  }

  /** An upstream request: to its call (see the header), else answered here (ping) or refused to the upstream. */
  #upstreamRequest(msg: JsonRpcMessage, relatedTo: JsonRpcId | undefined): boolean {
    if (msg.method === "ping") {
      this.answerUpstream?.({ jsonrpc: "2.0", id: msg.id as JsonRpcId, result: {} });
      return true;
    }
    let w: Waiter | undefined;
    if (relatedTo !== undefined) w = this.#waiting.get(String(relatedTo));
    else {
      const askable = [...this.#waiting.values()].filter((x) => x.ask !== undefined && x.running?.() === true);
      if (askable.length === 1) w = askable[0];
    }
    if (w?.ask?.(msg)) return true;
    const why = w ? "the call it belongs to cannot take it (not a tools/call, prompts/get or resources/read, or at its bound)" : relatedTo === undefined ? "no single stateless call is in flight for it to belong to" : "the call it belongs to is no longer in flight";
    this.answerUpstream?.({ jsonrpc: "2.0", id: msg.id as JsonRpcId, error: { code: -32603, message: `Countersign: the stateless caller cannot receive '${String(msg.method).slice(0, 60)}' here: ${why}` } });
    return false;
  }

  /** The bridge session ended: its pending requests were answered with errors before this; any other waiter is answered here. */
  end(): void {
    this.#ended = true;
    const err = new CountersignError("CS_ERR_UPSTREAM_EXITED", "the gateway's upstream session for this caller ended");
    for (const [id, w] of this.#waiting) w.answer(jsonRpcErrorResponse(id, err) as unknown as JsonRpcMessage);
    this.#waiting.clear();
    this.parked.clear();
  }
}
