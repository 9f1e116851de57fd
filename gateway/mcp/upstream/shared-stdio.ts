// One stdio server child serving several client sessions, for servers the operator declares
// shareable (`upstream.shared: true`): servers that keep no per-client state, as every server
// written for the stateless 2026-07-28 revision is. Without it each session gets its own child.
//
// The gateway is the child's one MCP client. It initializes the child once, with no client
// capabilities (so the server never asks a client for sampling, roots or elicitation: such a
// request could not be routed to one caller), and answers each session's `initialize` with the
// child's result. Request ids and progress tokens are remapped so that sessions never collide,
// and restored exactly on the way back: each caller sees its own ids and tokens, nothing else.
//
//   session A ─┐  ids 1,2 → 7,8        ┌─ responses 7,8 → A's 1,2
//   session B ─┼─ ids 1   → 9   ─▶ child ─┼─ response  9   → B's 1
//   session C ─┘                      └─ list_changed → every session
//
// A message the child sends that belongs to no caller (a log line, a resource update) is not
// delivered to anyone: it could carry one caller's data to another. list_changed notifications
// carry none and go to every session.
import { CountersignError } from "../../errors.js";
import type { Logger } from "../../log.js";
import { classify, type JsonRpcId, type JsonRpcMessage } from "../jsonrpc.js";
import { StdioUpstream, type StdioOptions } from "./stdio.js";
import type { UpstreamEvents, UpstreamTransport } from "./types.js";

/** Requests in flight through one shared child, all sessions together. At the bound a new request is refused. */
export const SHARED_IN_FLIGHT_LIMIT = 10_000;

/** Notifications that carry no caller's data: every session sharing the child receives them. */
const BROADCAST = new Set([
  "notifications/tools/list_changed",
  "notifications/resources/list_changed",
  "notifications/prompts/list_changed",
]);

interface InFlight {
  lease: SharedStdioLease;
  /** The id the client chose, restored on the answer. */
  clientId: JsonRpcId;
  /** The progress token the client chose, if any, and the one the child was given instead. */
  progressToken?: { client: JsonRpcId; upstream: string } | undefined;
}

/** The child, and every session's lease on it. One per connection. */
export class SharedStdioPool {
  readonly #leases = new Set<SharedStdioLease>();
  /** Upstream id → the caller's request. Bounded by SHARED_IN_FLIGHT_LIMIT. */
  readonly #inFlight = new Map<number, InFlight>();
  /** Upstream progress token → the request it belongs to. Entries live as long as their request. */
  readonly #progress = new Map<string, number>();
  #nextId = 1;
  #child: StdioUpstream | undefined;
  /** The child's initialize result, once it has one; every session's initialize is answered with it. */
  #ready: Promise<Record<string, unknown>> | undefined;
  /** Resolves the gateway's own initialize when the child answers it. */
  #initializing: { id: number; resolve: (r: Record<string, unknown>) => void; reject: (e: Error) => void } | undefined;

  constructor(
    private readonly opts: StdioOptions,
    private readonly log: Logger,
  ) {}

  /** A session's view of the shared child. */
  lease(events: UpstreamEvents): SharedStdioLease {
    return new SharedStdioLease(this, events);
  }

  get leaseCount(): number {
    return this.#leases.size;
  }

  get inFlightCount(): number {
    return this.#inFlight.size;
  }

  /** The child's pid while it runs (tests and /readyz). */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  async attach(lease: SharedStdioLease): Promise<void> {
    this.#leases.add(lease);
    if (this.#child) return;
    const child = new StdioUpstream(this.opts, {
      message: (msg, size) => this.#fromChild(msg, size),
      failure: (err, ids) => this.#failure(err, ids),
      closed: (reason, detail) => this.#childClosed(child, reason, detail),
    });
    this.#child = child;
    try {
      await child.start();
    } catch (err) {
      this.#child = undefined;
      this.#leases.delete(lease);
      throw err;
    }
  }

  async detach(lease: SharedStdioLease): Promise<void> {
    if (!this.#leases.delete(lease)) return;
    // Calls the session leaves behind are cancelled at the child, as a client would.
    for (const [upstreamId, f] of this.#inFlight) {
      if (f.lease !== lease) continue;
      this.#forget(upstreamId);
      this.#child
        ?.send({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: upstreamId, reason: "the client session ended" } })
        .catch(() => {});
    }
    if (this.#leases.size === 0) {
      // The last session is gone: so is the child (a shared child is not kept idle).
      const child = this.#child;
      this.#child = undefined;
      this.#ready = undefined;
      await child?.close();
    }
  }

  /** The child's initialize result, initializing it on first use. */
  initialized(protocolVersion: string): Promise<Record<string, unknown>> {
    this.#ready ??= this.#initialize(protocolVersion);
    return this.#ready;
  }

  async #initialize(protocolVersion: string): Promise<Record<string, unknown>> {
    const id = this.#nextId++;
    const answered = new Promise<Record<string, unknown>>((resolve, reject) => (this.#initializing = { id, resolve, reject }));
    await this.#send({
      jsonrpc: "2.0",
      id,
      method: "initialize",
      params: { protocolVersion, capabilities: {}, clientInfo: { name: "countersign-shared-stdio", version: "1" } },
    });
    const result = await answered;
    await this.#send({ jsonrpc: "2.0", method: "notifications/initialized" });
    return result;
  }

  /** A session's request: its id (and progress token) remapped, remembered until answered. */
  async request(lease: SharedStdioLease, msg: JsonRpcMessage & { id: JsonRpcId }): Promise<void> {
    if (this.#inFlight.size >= SHARED_IN_FLIGHT_LIMIT) {
      throw new CountersignError("CS_ERR_UPSTREAM_BUSY", `${SHARED_IN_FLIGHT_LIMIT} requests already in flight through the shared server process`);
    }
    const upstreamId = this.#nextId++;
    const params = msg.params as Record<string, unknown> | undefined;
    const meta = params?._meta as Record<string, unknown> | undefined;
    const token = meta?.progressToken;
    const entry: InFlight = { lease, clientId: msg.id };
    let out: JsonRpcMessage = { ...msg, id: upstreamId };
    if (typeof token === "string" || typeof token === "number") {
      entry.progressToken = { client: token, upstream: `p${upstreamId}` };
      out = { ...out, params: { ...params, _meta: { ...meta, progressToken: entry.progressToken.upstream } } };
      this.#progress.set(entry.progressToken.upstream, upstreamId);
    }
    this.#inFlight.set(upstreamId, entry);
    try {
      await this.#send(out);
    } catch (err) {
      this.#forget(upstreamId);
      throw err;
    }
  }

  /** A session's cancel names its own id: the child is told the id it knows. */
  async cancel(lease: SharedStdioLease, msg: JsonRpcMessage): Promise<void> {
    const params = (msg.params ?? {}) as Record<string, unknown>;
    for (const [upstreamId, f] of this.#inFlight) {
      if (f.lease !== lease || f.clientId !== params.requestId) continue;
      await this.#send({ ...msg, params: { ...params, requestId: upstreamId } });
      return;
    }
    // Not in flight (answered already, or never sent): nothing to tell the child.
  }

  #send(msg: JsonRpcMessage): Promise<void> {
    if (!this.#child) return Promise.reject(new CountersignError("CS_ERR_UPSTREAM_EXITED", "the shared server process is not running"));
    return this.#child.send(msg);
  }

  #forget(upstreamId: number): void {
    const f = this.#inFlight.get(upstreamId);
    if (f?.progressToken) this.#progress.delete(f.progressToken.upstream);
    this.#inFlight.delete(upstreamId);
  }

  #fromChild(raw: unknown, size: number): void {
    const c = classify(raw);
    const msg = raw as JsonRpcMessage;
    if (c?.kind === "response" || c?.kind === "error") {
      const id = (msg as { id?: unknown }).id;
      if (this.#initializing && id === this.#initializing.id) {
        const init = this.#initializing;
        this.#initializing = undefined;
        if (c.kind === "response") init.resolve((msg as unknown as { result: Record<string, unknown> }).result);
        else init.reject(new CountersignError("CS_ERR_UPSTREAM_UNAVAILABLE", `the shared server refused initialize: ${JSON.stringify((msg as { error?: unknown }).error).slice(0, 200)}`));
        return;
      }
      const f = typeof id === "number" ? this.#inFlight.get(id) : undefined;
      if (!f) return this.log.warn({ id: String(id) }, "shared stdio server answered an id no session is waiting for; dropped");
      this.#forget(id as number);
      f.lease.events.message({ ...msg, id: f.clientId }, size, f.clientId);
      return;
    }
    if (c?.kind === "notification") {
      const params = (msg.params ?? {}) as Record<string, unknown>;
      const method = String(msg.method);
      if (method === "notifications/progress") {
        const upstreamId = this.#progress.get(String(params.progressToken));
        const f = upstreamId === undefined ? undefined : this.#inFlight.get(upstreamId);
        if (f?.progressToken) f.lease.events.message({ ...msg, params: { ...params, progressToken: f.progressToken.client } }, size, f.clientId);
        return;
      }
      if (method === "notifications/cancelled") {
        const f = this.#inFlight.get(params.requestId as number);
        if (f) f.lease.events.message({ ...msg, params: { ...params, requestId: f.clientId } }, size, f.clientId);
        return;
      }
      if (BROADCAST.has(method)) {
        for (const lease of this.#leases) lease.events.message(msg, size);
        return;
      }
      this.log.debug({ method }, "shared stdio server sent a notification that belongs to no session; not delivered");
      return;
    }
    if (c?.kind === "request") {
      // The gateway declared no client capabilities: a request from the child cannot be routed to
      // one caller, so it is answered here.
      this.#send({ jsonrpc: "2.0", id: (msg as { id?: unknown }).id, error: { code: -32601, message: "Method not found: this server runs shared by several clients, which cannot be asked" } }).catch(() => {});
      this.log.warn({ method: c.method }, "shared stdio server sent a request to its client; refused");
    }
  }

  #failure(err: CountersignError, ids: JsonRpcId[]): void {
    if (ids.length === 0) {
      for (const lease of this.#leases) lease.events.failure(err, []);
      return;
    }
    for (const id of ids) {
      const f = typeof id === "number" ? this.#inFlight.get(id) : undefined;
      if (!f) continue;
      this.#forget(id as number);
      f.lease.events.failure(err, [f.clientId]);
    }
  }

  #childClosed(child: StdioUpstream, reason: "exited" | "closed", detail: string): void {
    if (this.#child !== child) return; // an earlier child, already replaced
    this.#child = undefined;
    this.#ready = undefined;
    this.#initializing?.reject(new CountersignError("CS_ERR_UPSTREAM_EXITED", detail));
    this.#initializing = undefined;
    const leases = [...this.#leases];
    this.#leases.clear();
    this.#inFlight.clear();
    this.#progress.clear();
    // Every session on the child ends with it, as each would with a child of its own.
    for (const lease of leases) lease.events.closed(reason, detail);
  }
}

/** One session's handle on the shared child: what the session sees as its upstream. */
export class SharedStdioLease implements UpstreamTransport {
  readonly kind = "stdio" as const;
  readonly upstreamSessionId = undefined;
  #attached = false;

  constructor(
    private readonly pool: SharedStdioPool,
    readonly events: UpstreamEvents,
  ) {}

  async start(): Promise<void> {
    await this.pool.attach(this);
    this.#attached = true;
  }

  async send(msg: JsonRpcMessage, protocolVersion: string | undefined): Promise<void> {
    if (!this.#attached) throw new CountersignError("CS_ERR_UPSTREAM_EXITED", "the session's upstream is closed");
    const kind = classify(msg)?.kind;
    const id = (msg as { id?: JsonRpcId }).id;
    if (kind === "request" && id !== undefined) {
      if (msg.method === "initialize") {
        const requested = (msg.params as { protocolVersion?: unknown } | undefined)?.protocolVersion;
        const result = await this.pool.initialized(typeof requested === "string" ? requested : protocolVersion ?? "2025-06-18");
        // Answered from the child's one initialize, as the child would answer it.
        const answer = { jsonrpc: "2.0", id, result };
        queueMicrotask(() => this.events.message(answer, Buffer.byteLength(JSON.stringify(answer)), id));
        return;
      }
      return this.pool.request(this, { ...msg, id });
    }
    if (kind === "notification") {
      if (msg.method === "notifications/cancelled") return this.pool.cancel(this, msg);
      // initialized was sent once by the gateway; roots/list_changed has no meaning without roots.
      return;
    }
    // A response to a request the child never made to this session (it can make none): dropped.
  }

  async close(): Promise<void> {
    if (!this.#attached) return;
    this.#attached = false;
    await this.pool.detach(this);
  }
}
