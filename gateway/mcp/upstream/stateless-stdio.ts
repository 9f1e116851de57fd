// MCP 2026-07-28 over stdio: one server child spoken to without initialize, each request carrying
// its envelope in params._meta (connections[].protocol: 2026-07-28 on a stdio upstream). The child
// is the session's (one per 2025-era client session, one per caller identity for 2026-07-28
// callers), as a 2025-era stdio child is; several requests share it at once:
//
//   - ids are rewritten to ones unique on the child and restored on the answer; a progress token
//     goes as the caller chose it unless a request in flight on the child already has it (then it
//     is rewritten, and restored on the progress notifications);
//   - a request the caller gives up on is cancelled at the child with notifications/cancelled
//     naming the child's id (for subscriptions/listen too: that ends the subscription);
//   - what the child writes besides answers goes to the request it belongs to: progress by its
//     token, a subscriptions/listen stream's notifications by their subscriptionId (the listen
//     request's id on stdio), a log line to the one request in flight that asked for log lines
//     (io.modelcontextprotocol/logLevel). What names no request reaches the session unrelated;
//   - a request from the child is refused (2026-07-28 asks the client through input_required
//     results, never mid-call), and the number of requests in flight is bounded.
import { CountersignError } from "../../errors.js";
import type { Logger } from "../../log.js";
import { classify, type JsonRpcId, type JsonRpcMessage } from "../jsonrpc.js";
import { StdioUpstream, type StdioOptions } from "./stdio.js";
import type { ModernExchange, ModernWire } from "./types.js";

/** Requests in flight on one child. At the bound a new request is refused. */
export const STDIO_MODERN_IN_FLIGHT = 1024;
const SUBSCRIPTION_ID_KEY = "io.modelcontextprotocol/subscriptionId";
const LOG_LEVEL_KEY = "io.modelcontextprotocol/logLevel";

interface Pending {
  /** The id the request was sent with (restored on its answer and in its subscription's notifications). */
  clientId: JsonRpcId;
  progress?: { client: JsonRpcId; upstream: JsonRpcId } | undefined;
  /** The request asked for log lines. */
  logs: boolean;
  resolve: (msg: JsonRpcMessage) => void;
  reject: (err: CountersignError) => void;
  related: ((msg: unknown, size: number) => void) | undefined;
}

export class StdioModernWire implements ModernWire {
  readonly #child: StdioUpstream;
  readonly #pending = new Map<number, Pending>();
  readonly #progress = new Map<string, number>();
  #nextId = 1;
  #closed = false;

  constructor(
    opts: StdioOptions,
    private readonly log: Logger,
    /** What names no request; and the child's end. */
    private readonly events: { unrelated: (msg: unknown, size: number) => void; closed: (reason: "exited" | "closed", detail: string) => void },
  ) {
    this.#child = new StdioUpstream(opts, {
      message: (msg, size) => this.#fromChild(msg, size),
      failure: (err, ids) => this.#failure(err, ids),
      closed: (reason, detail) => {
        this.#closed = true;
        const err = new CountersignError("CS_ERR_UPSTREAM_EXITED", detail);
        for (const p of this.#pending.values()) p.reject(err);
        this.#pending.clear();
        this.#progress.clear();
        this.events.closed(reason, detail);
      },
    });
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get inFlight(): number {
    return this.#pending.size;
  }

  start(): Promise<void> {
    return this.#child.start();
  }

  async close(): Promise<void> {
    await this.#child.close();
  }

  exchange(msg: JsonRpcMessage, x: ModernExchange): Promise<JsonRpcMessage> {
    if (this.#closed) return Promise.reject(new CountersignError("CS_ERR_UPSTREAM_EXITED", "the server process is not running"));
    if (this.#pending.size >= STDIO_MODERN_IN_FLIGHT) return Promise.reject(new CountersignError("CS_ERR_TOO_MANY_IN_FLIGHT", `${STDIO_MODERN_IN_FLIGHT} requests already in flight on this server process`));
    if (x.signal?.aborted) return Promise.reject(new CountersignError("CS_ERR_REQUEST_CANCELLED"));
    const upstreamId = this.#nextId++;
    const params = (msg.params ?? undefined) as Record<string, unknown> | undefined;
    const meta = params?._meta !== null && typeof params?._meta === "object" ? (params._meta as Record<string, unknown>) : undefined;
    const token = meta?.progressToken;
    let out: JsonRpcMessage = { ...msg, id: upstreamId };
    let progress: Pending["progress"];
    if (typeof token === "string" || typeof token === "number") {
      // The caller's token goes as it is unless a request in flight on the child already has it.
      let upstream: JsonRpcId = token;
      for (let n = 0; this.#progress.has(JSON.stringify(upstream)); n++) upstream = `countersign-progress-${upstreamId}-${n}`;
      progress = { client: token, upstream };
      if (upstream !== token) out = { ...out, params: { ...params, _meta: { ...meta, progressToken: upstream } } };
      this.#progress.set(JSON.stringify(upstream), upstreamId);
    }
    return new Promise<JsonRpcMessage>((resolve, reject) => {
      const onAbort = () => {
        if (!this.#forget(upstreamId)) return;
        // The child is told, as a client would tell it; the caller's cancel stage answers the caller.
        this.#child.send({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: upstreamId, reason: "the client cancelled the request" } }).catch(() => {});
        reject(new CountersignError("CS_ERR_REQUEST_CANCELLED"));
      };
      const done = <T>(f: (v: T) => void) => (v: T) => {
        x.signal?.removeEventListener("abort", onAbort);
        f(v);
      };
      this.#pending.set(upstreamId, { clientId: msg.id as JsonRpcId, progress, logs: typeof meta?.[LOG_LEVEL_KEY] === "string", resolve: done(resolve), reject: done(reject), related: x.related });
      x.signal?.addEventListener("abort", onAbort, { once: true });
      this.#child.send(out).catch((err: unknown) => {
        if (!this.#forget(upstreamId)) return;
        x.signal?.removeEventListener("abort", onAbort);
        reject(err instanceof CountersignError ? err : new CountersignError("CS_ERR_UPSTREAM_EXITED", String(err)));
      });
    });
  }

  /** Drops a request's entries; false when it was not pending any more. */
  #forget(upstreamId: number): boolean {
    const p = this.#pending.get(upstreamId);
    if (!p) return false;
    if (p.progress) this.#progress.delete(JSON.stringify(p.progress.upstream));
    this.#pending.delete(upstreamId);
    return true;
  }

  #fromChild(raw: unknown, size: number): void {
    const c = classify(raw);
    const msg = raw as JsonRpcMessage;
    if (c?.kind === "response" || c?.kind === "error") {
      const id = (msg as { id?: unknown }).id;
      const p = typeof id === "number" ? this.#pending.get(id) : undefined;
      if (!p) return this.log.debug({ id: String(id) }, "stdio server answered an id no request is waiting for; dropped");
      this.#forget(id as number);
      p.resolve({ ...msg, id: p.clientId });
      return;
    }
    if (c?.kind === "request") {
      // 2026-07-28 asks the client through input_required results: a request mid-call has no caller to go to.
      this.#child.send({ jsonrpc: "2.0", id: (msg as { id?: unknown }).id, error: { code: -32601, message: "Method not found: MCP 2026-07-28 asks the client through input_required results" } } as JsonRpcMessage).catch(() => {});
      this.log.warn({ method: c.method }, "stdio server (2026-07-28) sent a request to its client; refused");
      return;
    }
    if (c?.kind !== "notification") return;
    const params = (msg.params ?? {}) as Record<string, unknown>;
    if (c.method === "notifications/progress") {
      const upstreamId = this.#progress.get(JSON.stringify(params.progressToken ?? null));
      const p = upstreamId === undefined ? undefined : this.#pending.get(upstreamId);
      if (p?.progress) p.related?.({ ...msg, params: { ...params, progressToken: p.progress.client } }, size);
      return;
    }
    const meta = params._meta !== null && typeof params._meta === "object" ? (params._meta as Record<string, unknown>) : undefined;
    const subscription = meta?.[SUBSCRIPTION_ID_KEY];
    if (subscription !== undefined) {
      const p = typeof subscription === "number" ? this.#pending.get(subscription) : undefined;
      if (p) p.related?.({ ...msg, params: { ...params, _meta: { ...meta, [SUBSCRIPTION_ID_KEY]: p.clientId } } }, size);
      return;
    }
    if (c.method === "notifications/cancelled") {
      const p = typeof params.requestId === "number" ? this.#pending.get(params.requestId) : undefined;
      if (p) p.related?.({ ...msg, params: { ...params, requestId: p.clientId } }, size);
      return;
    }
    if (c.method === "notifications/message") {
      const asking = [...this.#pending.values()].filter((p) => p.logs);
      if (asking.length === 1) return asking[0]!.related?.(msg, size);
    }
    this.events.unrelated(msg, size);
  }

  #failure(err: CountersignError, ids: JsonRpcId[]): void {
    if (ids.length === 0) return this.log.warn({ code: err.code }, "stdio server (2026-07-28) wrote something unreadable");
    for (const id of ids) {
      const p = typeof id === "number" ? this.#pending.get(id) : undefined;
      if (!p) continue;
      this.#forget(id as number);
      p.reject(err);
    }
  }
}
