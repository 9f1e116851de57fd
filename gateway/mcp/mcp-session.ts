// One client session paired with one upstream session: what a session owns and nothing else. Its
// pending requests, its upstream, its client stream, its protocol version and whether it is open.
// Every message is carried by the pipeline's stages (pipeline/inbound.ts, pipeline/outbound.ts),
// which see the session only as an ExchangeContext.
import type { Identity } from "../auth/identity.js";
import type { ConnectionConfig } from "../config/load.js";
import { CountersignError } from "../errors.js";
import { UpstreamAdmission } from "../pipeline/admit.js";
import { deliverError, fail } from "../pipeline/answer.js";
import type { ExchangeContext, PipelineDeps, Route } from "../pipeline/context.js";
import type { ClientSink, RequestHints } from "../pipeline/exchange.js";
import { fromClient } from "../pipeline/inbound.js";
import { fromUpstream, reportFlood, upstreamFailure } from "../pipeline/outbound.js";
import { PendingRequests } from "../pipeline/pending.js";
import { TaskAnswers } from "../pipeline/tasks/task-answers.js";
import { withoutStatelessEnvelope, type Classified, type JsonRpcId, type JsonRpcMessage } from "./jsonrpc.js";
import type { UpstreamEvents, UpstreamTransport } from "./upstream/types.js";
import { systemClock, type Clock } from "../clock.js";

/** The front a session serves: a stateless bridge is the gateway's own upstream session for 2026-07-28 callers. */
export type FrontTransport = "streamable_http" | "sse" | "stateless";

export interface SessionInit {
  id: string;
  connection: ConnectionConfig;
  /** The connection's current configuration (a reload replaces it; policy and masking follow). */
  currentConnection?: () => ConnectionConfig | undefined;
  frontTransport: FrontTransport;
  /** The caller, authenticated at the front; the session is bound to it. */
  identity: Identity;
  deps: PipelineDeps;
  /** Called once when the session ends, whatever ended it. */
  onClosed: (session: McpSession, reason: string, detail?: string) => void;
  /** Called with the negotiated protocol version and server info once initialize succeeds. */
  onInitialized: (session: McpSession, result: Record<string, unknown>) => void;
  /** The clock activity is stamped with (idle close and eviction read it); default: the system's. */
  clock?: Clock | undefined;
}

export class McpSession implements ExchangeContext, UpstreamEvents {
  readonly id: string;
  readonly frontTransport: FrontTransport;
  readonly deps: PipelineDeps;
  readonly identity: Identity;
  readonly requests = new PendingRequests();
  readonly toolHashes = new Map<string, string>();
  readonly tasks: TaskAnswers | undefined;
  readonly startedAt: number;
  protocolVersion: string | undefined;
  lastActivity: number;
  ended = false;
  /** Set when the gateway drains for shutdown: new requests are refused so the drain can end. */
  draining = false;
  sink: ClientSink | undefined;
  upstream!: UpstreamTransport;
  /** Open client streams (a GET stream or an SSE connection): a session with one is never idle. */
  openStreams = 0;
  /** A stateless bridge answers held calls with input_required (see ExchangeContext). */
  heldAsInputRequired: ExchangeContext["heldAsInputRequired"];
  holdRefusal: ExchangeContext["holdRefusal"];

  readonly #init: SessionInit;
  readonly #admission: UpstreamAdmission;
  readonly #clock: Clock;

  constructor(init: SessionInit) {
    this.#init = init;
    this.#clock = init.clock ?? systemClock;
    this.startedAt = this.lastActivity = this.#clock.now();
    this.id = init.id;
    this.frontTransport = init.frontTransport;
    this.deps = init.deps;
    this.identity = init.identity;
    this.#admission = new UpstreamAdmission(init.deps.notificationsPerSecond, (dropped) => reportFlood(this, dropped));
    const tasks = init.deps.approvals?.tasks;
    this.tasks = tasks ? new TaskAnswers(this, tasks, init.id) : undefined;
  }

  get sessionId(): string {
    return this.id;
  }

  /** Access, policy and masking as configured now: a reload applies to open sessions too. */
  get connection(): ConnectionConfig {
    return this.#init.currentConnection?.() ?? this.#init.connection;
  }

  get pendingCount(): number {
    return this.requests.size;
  }

  /** Idle: nothing in flight, no call held, no client stream open (the eviction and idle close judge by this). */
  get idle(): boolean {
    return this.requests.size === 0 && this.requests.holds.size === 0 && this.openStreams === 0;
  }

  // ── client → server ─────────────────────────────────────────────────────────────────────────

  async fromClient(msg: JsonRpcMessage, c: Classified, hints?: RequestHints): Promise<void> {
    if (!this.ended) this.lastActivity = this.#clock.now();
    await fromClient(this, this.#admission, msg, c, hints);
    if (c.kind === "notification" && c.method === "notifications/cancelled") await this.#endCancelled(msg);
  }

  /**
   * A cancelled request whose POST stream still waits: the gateway answers it (recorded, -32800
   * CS_ERR_REQUEST_CANCELLED) so the stream ends; the upstream's own late answer, if any, is not
   * delivered a second time (the request is no longer pending).
   */
  async #endCancelled(msg: JsonRpcMessage): Promise<void> {
    const id = (msg.params as { requestId?: unknown } | undefined)?.requestId;
    if (typeof id !== "string" && !(typeof id === "number" && Number.isSafeInteger(id))) return;
    if (this.requests.has(id) || !this.sink?.waitsFor?.(id)) return;
    await deliverError(this, id, new CountersignError("CS_ERR_REQUEST_CANCELLED"), true);
  }

  // ── server → client (UpstreamEvents) ────────────────────────────────────────────────────────

  message(raw: unknown, _size: number, relatedTo?: JsonRpcId): void {
    if (this.ended) return;
    this.lastActivity = this.#clock.now();
    fromUpstream(this, this.#admission, raw, relatedTo);
  }

  failure(err: CountersignError, requestIds: JsonRpcId[]): void {
    upstreamFailure(this, err, requestIds);
  }

  closed(reason: "exited" | "closed", detail: string): void {
    void this.close(reason === "exited" ? "upstream_exited" : "upstream_closed", detail);
  }

  // ── ExchangeContext ─────────────────────────────────────────────────────────────────────────

  sendUpstream(msg: JsonRpcMessage): Promise<void> {
    // A bridge session forwards stateless requests, recorded as the caller sent them, to a 2025-era
    // session; to a 2026-07-28 upstream they go with their envelope.
    return this.upstream.send(this.frontTransport === "stateless" && !this.upstream.stateless ? withoutStatelessEnvelope(msg) : msg, this.protocolVersion);
  }

  toClient(msg: JsonRpcMessage, route: Route): boolean {
    return this.sink?.deliver(msg, route) ?? false;
  }

  get hasClientStream(): boolean {
    return this.sink !== undefined;
  }

  initialized(result: Record<string, unknown>): void {
    if (typeof result.protocolVersion === "string") this.protocolVersion = result.protocolVersion;
    this.#init.onInitialized(this, result);
  }

  /** Ends the session: pending requests get a clear error, streams end, the upstream is closed. */
  async close(reason: string, detail?: string): Promise<void> {
    if (this.ended) return;
    const err =
      reason === "upstream_exited" || reason === "upstream_closed"
        ? new CountersignError("CS_ERR_UPSTREAM_EXITED", detail)
        : reason === "gateway_shutdown"
          ? new CountersignError("CS_ERR_SHUTTING_DOWN")
          : new CountersignError("CS_ERR_UNKNOWN_SESSION", `the session was closed (${reason})`);
    // Ended first: nothing may slip in while the pending calls are being answered.
    this.ended = true;
    this.requests.abortHolds();
    await Promise.all(this.requests.all().map((p) => fail(this, p.id, err)));
    this.sink?.end();
    await this.upstream?.close().catch(() => {});
    this.#init.onClosed(this, reason, detail);
  }
}
