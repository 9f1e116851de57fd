// The sessions this gateway instance holds: opening them (cap per connection, crash-loop
// back-off for stdio servers), looking them up, closing idle ones, and recording each session's
// life in the database with this instance as its owner.
import { randomBytes } from "node:crypto";
import type { Recorder } from "../audit/recorder.js";
import type { ConnectionConfig, GatewayConfig } from "../config/load.js";
import type { Db } from "../store/client.js";
import { closeSession, createSession, noteSessionClientInfo, noteSessionInitialized } from "../store/sessions.js";
import { asCountersignError, CountersignError } from "../errors.js";
import type { Logger } from "../log.js";
import { McpSession, type FrontTransport } from "./mcp-session.js";
import { TaskRegistry } from "./tasks.js";
import type { Metrics } from "../metrics.js";
import type { ApprovalService } from "../approvals/service.js";
import { buildKeyring, type Keyring } from "../keys/keyring.js";
import type { KeyRing } from "../keys/ring.js";
import type { ToolPins } from "../pinning/service.js";
import type { Restorer as PseudonymMap } from "../masking/restore/index.js";
import type { Identity } from "../auth/identity.js";
import { identityHeaders, type GatewaySigner } from "../auth/upstream-identity.js";
import { LegacySseUpstream } from "./upstream/legacy-sse.js";
import { SharedStdioPool } from "./upstream/shared-stdio.js";
import { StdioUpstream } from "./upstream/stdio.js";
import { StreamableHttpUpstream } from "./upstream/streamable-http.js";
import { UpstreamProtocols, type UpstreamProtocol } from "./upstream/protocol.js";
import { StatelessHttpUpstream } from "./upstream/stateless-http.js";
import { StdioModernWire } from "./upstream/stateless-stdio.js";
import type { UpstreamTransport } from "./upstream/types.js";
import { systemClock, type Clock, type ClockTimer } from "../clock.js";

export interface OpenMeta {
  identity: Identity;
  remoteAddress?: string | undefined;
  userAgent?: string | undefined;
}

/** Whose session it is, for per-identity quotas: issuer and subject; an anonymous caller by address. */
export function quotaKey(identity: Identity): string {
  return identity.kind === "anonymous" ? `anonymous\u0000${identity.address ?? ""}` : `${identity.issuer}\u0000${identity.subject}`;
}

/**
 * Who a bridge session is for: every field policy, access and masking read, so two callers who
 * could be treated differently never share one (a token with other groups gets its own).
 */
export function bridgeKey(connection: string, identity: Identity): string {
  return JSON.stringify([connection, identity.kind, identity.issuer, identity.subject, [...identity.groups].sort(), identity.email ?? null, identity.clientId ?? null, identity.address ?? null]);
}

/** A child that dies this soon after starting counts toward crash-loop back-off. */
const QUICK_EXIT_MS = 5000;
const MAX_BACKOFF_MS = 30_000;

/** ≥ 128 bits from the OS's CSPRNG: session ids cannot be guessed. */
export function newSessionId(): string {
  return randomBytes(18).toString("base64url");
}

export class SessionRegistry {
  readonly #sessions = new Map<string, McpSession>();
  readonly #backoff = new Map<string, { failures: number; until: number }>();
  /**
   * The shared stdio child of each connection that declares one (`upstream.shared`), with the
   * upstream configuration it was started from: a reload that changes it starts a new pool, and the
   * old one ends with its last session. Bounded by the number of configured connections.
   */
  readonly #sharedPools = new Map<string, { upstream: ConnectionConfig["upstream"]; pool: SharedStdioPool }>();
  /** Sessions being opened, per connection: they hold a slot from the first line of open() (bounded by maxSessions). */
  readonly #opening = new Map<string, number>();
  /** The same, per connection and identity (bounded by maxSessions; an entry goes at zero). */
  readonly #openingByIdentity = new Map<string, number>();
  #sweeper: ClockTimer;
  #shuttingDown = false;
  /**
   * The gateway's own upstream session per (connection, caller) for stateless (2026-07-28)
   * callers, being opened or open. Bounded: each one is an open session, counted under the
   * connection's cap and the caller's quota, idle-closed and evicted like any session.
   */
  readonly #bridges = new Map<string, { opening: Promise<McpSession>; session?: McpSession }>();
  /** Bridge session id → its key in #bridges (removed when the session closes). */
  readonly #bridgeKeys = new Map<string, string>();
  /** MCP tasks of held (and wrapped) calls: shared by this instance's sessions, outliving each. */
  readonly tasks: TaskRegistry;
  /** Which protocol each connection's upstream speaks (connections[].protocol; probed and cached for auto). */
  readonly protocols: UpstreamProtocols;

  constructor(
    private config: GatewayConfig,
    private readonly db: Db,
    private readonly recorder: Recorder,
    private readonly instanceId: string,
    private readonly log: Logger,
    private readonly signer?: GatewaySigner | undefined,
    private readonly metrics?: Metrics | undefined,
    private readonly approvals?: { service: ApprovalService; holdForMs: number } | undefined,
    private readonly pins?: ToolPins | undefined,
    /** The pseudonym map of the restore and mask stages (gateway/masking/restore). */
    private readonly restorer?: PseudonymMap | undefined,
    /** Idle close, eviction, back-off and tasks' expiry read this clock (tests move it). */
    private readonly clock: Clock = systemClock,
    /** The gateway's keyring (gateway/keys): the stateless front seals requestState with its requestState keys. */
    private readonly keyring?: Keyring | undefined,
  ) {
    this.tasks = new TaskRegistry({ clock });
    this.#sweeper = clock.setInterval(() => this.#closeIdle(), 5000);
    this.#sweeper.unref();
    this.protocols = new UpstreamProtocols(log, () => this.config.limits.upstreamMessageBytes);
  }

  get size(): number {
    return this.#sessions.size;
  }

  /** Open sessions of a connection (one being closed no longer counts: its slot is free). */
  countFor(connection: string): number {
    let n = 0;
    for (const s of this.#sessions.values()) if (!s.ended && s.connection.name === connection) n++;
    return n;
  }

  #sessionsOf(connection: string, key: string): McpSession[] {
    return [...this.#sessions.values()].filter((s) => !s.ended && s.connection.name === connection && quotaKey(s.identity) === key);
  }

  /**
   * Frees a slot by closing this identity's least recently used idle session (recorded as
   * evicted_idle). Never another identity's, never one with a call in flight, held, or a stream open.
   */
  #evictIdle(connection: string, key: string, why: string): boolean {
    const now = this.clock.now();
    const victim = this.#sessionsOf(connection, key)
      // Idle for a while (sessions.evictIdleAfterSeconds): a client between two calls is not idle.
      .filter((s) => s.idle && now - s.lastActivity >= this.config.sessions.evictIdleAfterSeconds * 1000)
      .sort((a, b) => a.lastActivity - b.lastActivity)[0];
    if (!victim) return false;
    void victim.close("evicted_idle", why); // ended at once: the slot is free before this returns
    return true;
  }

  /** Per connection: sessions open now (and being opened) next to the connection's maxSessions, for /readyz. */
  limits(): Record<string, { open: number; limit: number; perIdentity: number }> {
    const out: Record<string, { open: number; limit: number; perIdentity: number }> = {};
    for (const c of this.config.connections) out[c.name] = { open: this.countFor(c.name) + (this.#opening.get(c.name) ?? 0), limit: c.maxSessions, perIdentity: c.maxSessionsPerIdentity };
    return out;
  }

  /** What the stateless front needs for held calls: console links, the approval store, and key material for its requestState seal. */
  get heldCallSupport(): { publicUrl: string; approvals: ApprovalService | undefined; requestStateKeys: KeyRing } {
    return { publicUrl: this.config.publicUrl, approvals: this.approvals?.service, requestStateKeys: (this.keyring ?? buildKeyring(this.config)).requestState };
  }

  /** limits.clientBufferBytes: unread bytes a client's stream may hold before it is cut. */
  get clientBufferBytes(): number {
    return this.config.limits.clientBufferBytes;
  }

  /** A client stopped reading its GET stream past the budget: the stream was cut; on record. */
  recordTooSlow(session: McpSession): void {
    this.recorder.eventBestEffort({ type: "message_undeliverable", reason: "client_too_slow", sessionId: session.id, connection: session.connection.name, detail: { bufferBytes: this.clientBufferBytes } });
  }

  get(id: string): McpSession | undefined {
    const s = this.#sessions.get(id);
    return s && !s.ended ? s : undefined;
  }

  all(): McpSession[] {
    return [...this.#sessions.values()];
  }

  connection(name: string): ConnectionConfig | undefined {
    return this.config.connections.find((c) => c.name === name);
  }

  /**
   * The caller's bridge session on this connection: the open one, or a new one opened within the
   * caller's quota and set up by `setup` (the stateless front's initialize). Never shared between
   * callers (see bridgeKey); concurrent first requests wait for the same opening.
   */
  bridge(connection: ConnectionConfig, meta: OpenMeta, setup: (session: McpSession) => Promise<void>): Promise<McpSession> {
    const key = bridgeKey(connection.name, meta.identity);
    const known = this.#bridges.get(key);
    if (known && !known.session?.ended) return known.opening;
    const entry: { opening: Promise<McpSession>; session?: McpSession } = { opening: Promise.resolve(undefined as unknown as McpSession) };
    entry.opening = (async () => {
      const session = await this.open(connection, "stateless", meta);
      entry.session = session;
      this.#bridgeKeys.set(session.id, key);
      try {
        await setup(session);
      } catch (err) {
        await session.close("initialize_failed", String(err).slice(0, 200));
        throw err;
      }
      return session;
    })();
    this.#bridges.set(key, entry);
    entry.opening.catch(() => {
      if (this.#bridges.get(key) === entry) this.#bridges.delete(key);
    });
    return entry.opening;
  }

  async open(connection: ConnectionConfig, front: FrontTransport, meta: OpenMeta): Promise<McpSession> {
    if (this.#shuttingDown) throw new CountersignError("CS_ERR_SHUTTING_DOWN");
    // Check and reserve before the first await: concurrent opens cannot both take the last slot.
    // The identity's quota first (one caller never takes every slot), then the connection's cap;
    // at either, this identity's least recently used idle session makes room before a refusal.
    const name = connection.name;
    const key = quotaKey(meta.identity);
    const slotKey = `${name}\u0000${key}`;
    const mine = () => this.#sessionsOf(name, key).length + (this.#openingByIdentity.get(slotKey) ?? 0);
    const quota = connection.maxSessionsPerIdentity < connection.maxSessions; // else the cap is the only bound
    if (quota && mine() >= connection.maxSessionsPerIdentity && !this.#evictIdle(name, key, `quota of ${connection.maxSessionsPerIdentity} per identity`)) {
      throw new CountersignError("CS_ERR_SESSION_QUOTA", `${name} allows ${connection.maxSessionsPerIdentity} per identity`, { connection: name, keyPath: connectionKey(this.config.connections, name, "maxSessionsPerIdentity") });
    }
    const all = () => this.countFor(name) + (this.#opening.get(name) ?? 0);
    if (all() >= connection.maxSessions && !this.#evictIdle(name, key, `connection cap of ${connection.maxSessions}`)) {
      throw new CountersignError("CS_ERR_SESSION_LIMIT", `${name} allows ${connection.maxSessions}`, { connection: name, keyPath: connectionKey(this.config.connections, name, "maxSessions") });
    }
    bump(this.#opening, name, 1);
    bump(this.#openingByIdentity, slotKey, 1);
    try {
      return await this.#open(connection, front, meta);
    } finally {
      bump(this.#opening, name, -1);
      bump(this.#openingByIdentity, slotKey, -1);
    }
  }

  /** Closes sessions on this replica: one by id, or every idle one (nothing in flight, held or streaming). */
  closeByAdmin(target: { id: string } | { idle: true }): string[] {
    const chosen = "id" in target ? [this.get(target.id)].filter((s): s is McpSession => s !== undefined) : this.all().filter((s) => !s.ended && s.idle);
    for (const s of chosen) void s.close("admin_close");
    return chosen.map((s) => s.id);
  }

  async #open(connection: ConnectionConfig, front: FrontTransport, meta: OpenMeta): Promise<McpSession> {
    const backoff = this.#backoff.get(connection.name);
    if (backoff && backoff.until > this.clock.now()) {
      throw new CountersignError(
        "CS_ERR_UPSTREAM_UNAVAILABLE",
        `'${connection.name}' failed ${backoff.failures} times in a row; next attempt allowed in ${Math.ceil((backoff.until - this.clock.now()) / 1000)} s`,
      );
    }

    const protocol = await this.protocols.choose(connection, front === "stateless");
    const id = newSessionId();
    const session: McpSession = new McpSession({
      id,
      connection,
      frontTransport: front,
      identity: meta.identity,
      deps: {
        recorder: this.recorder,
        log: this.log,
        metrics: this.metrics,
        pins: this.pins,
        approvals: this.approvals && { ...this.approvals, tasks: this.tasks },
        upstreamTimeoutMs: this.config.limits.upstreamTimeoutMs,
        notificationsPerSecond: this.config.limits.notificationsPerSecond,
        logRequests: this.config.log.requests,
        restorer: this.restorer,
      },
      onClosed: (s, reason, detail) => this.#closed(s, reason, detail),
      onInitialized: (s, result) => this.#initialized(s, result),
      currentConnection: () => this.connection(connection.name),
      clock: this.clock,
    });
    session.upstream = this.#createUpstream(connection, session, meta.identity, protocol, front === "stateless");

    // The session row is committed before anything reaches the upstream.
    try {
      await createSession(this.db, {
          id,
          connection: connection.name,
          frontTransport: front,
          upstreamKind: connection.upstream.type,
          ownerInstanceId: this.instanceId,
          remoteAddress: meta.remoteAddress ?? null,
          userAgent: meta.userAgent ?? null,
          subject: meta.identity.subject,
          issuer: meta.identity.issuer,
          email: meta.identity.email ?? null,
          name: meta.identity.name ?? null,
          groups: meta.identity.groups,
          clientId: meta.identity.clientId ?? null,
      });
    } catch (err) {
      throw new CountersignError("CS_ERR_AUDIT_UNAVAILABLE", (err as Error).message.split("\n").pop()?.slice(0, 200));
    }

    try {
      await session.upstream.start();
    } catch (err) {
      const e = asCountersignError(err, "CS_ERR_UPSTREAM_UNAVAILABLE");
      this.#countFailure(connection.name);
      this.recorder.eventBestEffort({
        type: "upstream_failed",
        reason: connection.upstream.type === "stdio" ? "spawn_failed" : "connect_failed",
        sessionId: id,
        connection: connection.name,
        detail: { error: e.detail ?? e.message },
      });
      void closeSession(this.db, id, "initialize_failed").catch(() => {});
      throw e;
    }
    this.#sessions.set(id, session);
    this.recorder.eventBestEffort({
      type: "session_opened",
      reason: front === "sse" ? "sse_connect" : front === "stateless" ? "stateless_bridge" : "initialize",
      sessionId: id,
      connection: connection.name,
      // protocol: what the gateway speaks to the upstream for this session (connections[].protocol, as chosen).
      detail: { upstream: connection.upstream.type, remoteAddress: meta.remoteAddress ?? null, protocol },
    });
    return session;
  }

  #createUpstream(connection: ConnectionConfig, events: McpSession, identity: Identity, protocol: UpstreamProtocol, modernCaller: boolean): UpstreamTransport {
    const u = connection.upstream;
    const maxMessageBytes = this.config.limits.upstreamMessageBytes;
    const log = this.log.child({ connection: connection.name });
    const who = connection.upstreamIdentity;
    const signer = this.signer;
    const masker = connection.masker;
    const redact = masker ? (text: string) => masker.maskText(text).masked : undefined;
    if (u.type === "stdio" && u.shared) {
      // One child for every session of the connection; the config refuses upstreamIdentity here.
      let entry = this.#sharedPools.get(connection.name);
      if (!entry || entry.upstream !== u) {
        entry = { upstream: u, pool: new SharedStdioPool({ command: u.command, args: u.args, cwd: u.cwd, env: u.env, maxMessageBytes, log, redact }, log) };
        this.#sharedPools.set(connection.name, entry);
      }
      return entry.pool.lease(events);
    }
    if (u.type === "stdio") {
      // A stdio child serves one session, so it learns its caller once, from its environment.
      const env = { ...u.env };
      if (who?.headers) {
        env.COUNTERSIGN_SUBJECT = identity.subject;
        env.COUNTERSIGN_ISSUER = identity.issuer;
        env.COUNTERSIGN_GROUPS = identity.groups.join(",");
        if (identity.email) env.COUNTERSIGN_EMAIL = identity.email;
      }
      if (who?.jwt && signer) env.COUNTERSIGN_IDENTITY = signer.token(identity, who.jwt.audience ?? connection.name, who.jwt.ttlSeconds);
      const stdio = { command: u.command, args: u.args, cwd: u.cwd, env, maxMessageBytes, log, redact };
      if (protocol !== "legacy") {
        // MCP 2026-07-28 over stdio: the session's child, spoken to without initialize.
        const wire = new StdioModernWire(stdio, log, { unrelated: (m, size) => events.message(m, size), closed: (reason, detail) => events.closed(reason, detail) });
        return new StatelessHttpUpstream({ url: "", headers: {}, maxMessageBytes, log, redact, passthrough: modernCaller, wire }, events);
      }
      return new StdioUpstream(stdio, events);
    }
    const jwt = who?.jwt;
    const headerNames = who?.headers;
    const audience = jwt?.audience ?? u.url;
    const identityHeadersFor =
      jwt || headerNames
        ? () => ({
            ...(headerNames ? identityHeaders(identity, headerNames) : {}),
            ...(jwt && signer ? { [jwt.header.toLowerCase()]: signer.token(identity, audience, jwt.ttlSeconds) } : {}),
          })
        : undefined;
    const opts = { url: u.url, headers: u.headers, tls: u.tls, maxMessageBytes, log, identityHeaders: identityHeadersFor, redact };
    if (u.type === "streamable_http" && protocol !== "legacy") return new StatelessHttpUpstream({ ...opts, discovered: this.protocols.discovered(connection), passthrough: modernCaller }, events);
    return u.type === "streamable_http" ? new StreamableHttpUpstream(opts, events) : new LegacySseUpstream(opts, events);
  }

  #countFailure(connection: string): void {
    const prev = this.#backoff.get(connection);
    const failures = (prev?.failures ?? 0) + 1;
    // The first failure is retried at once; from the second on, wait 0.5 s, 1 s, 2 s … up to 30 s.
    const delay = failures < 2 ? 0 : Math.min(MAX_BACKOFF_MS, 500 * 2 ** (failures - 2));
    this.#backoff.set(connection, { failures, until: this.clock.now() + delay });
    if (delay > 0) {
      this.log.warn({ connection, failures, backoffMs: delay }, "upstream keeps failing; backing off");
      this.recorder.eventBestEffort({ type: "upstream_failed", reason: "crash_loop_backoff", connection, detail: { failures, backoffMs: delay } });
    }
  }

  #initialized(session: McpSession, result: Record<string, unknown>): void {
    this.#backoff.delete(session.connection.name);
    void noteSessionInitialized(this.db, session.id, {
      protocolVersion: session.protocolVersion ?? null,
      serverInfo: (session.connection.masker?.maskMessage(result.serverInfo).masked ?? result.serverInfo ?? undefined) as object | undefined,
      upstreamSessionId: session.upstream.upstreamSessionId ?? null,
    }).catch((err) => this.log.warn({ err }, "could not record session details"));
  }

  /** Records the client's info from its initialize request. */
  noteClientInfo(session: McpSession, params: Record<string, unknown> | undefined): void {
    if (!params?.clientInfo) return;
    void noteSessionClientInfo(this.db, session.id, params.clientInfo as object).catch(() => {});
  }

  #closed(session: McpSession, reason: string, detail?: string): void {
    this.#sessions.delete(session.id);
    const key = this.#bridgeKeys.get(session.id);
    if (key !== undefined) {
      this.#bridgeKeys.delete(session.id);
      if (this.#bridges.get(key)?.session === session) this.#bridges.delete(key);
    }
    const startedAt = session.startedAt;
    if (reason === "upstream_exited") {
      if (this.clock.now() - startedAt < QUICK_EXIT_MS && !session.protocolVersion) this.#countFailure(session.connection.name);
      this.recorder.eventBestEffort({ type: "upstream_failed", reason: "exited", sessionId: session.id, connection: session.connection.name, detail: { detail: detail ?? null } });
    }
    this.recorder.eventBestEffort({
      type: "session_closed",
      reason: reason as "client_delete",
      sessionId: session.id,
      connection: session.connection.name,
      detail: detail ? { detail } : {},
    });
    void closeSession(this.db, session.id, reason).catch(() => {});
  }

  #closeIdle(): void {
    const now = this.clock.now();
    for (const s of this.#sessions.values()) {
      if (s.pendingCount === 0 && now - s.lastActivity > s.connection.idleTimeoutSeconds * 1000) void s.close("idle_timeout");
    }
  }

  /** Stops new sessions; waits up to `graceMs` for in-flight requests, then closes every session. */
  async shutdown(graceMs: number): Promise<void> {
    this.#shuttingDown = true;
    this.clock.clearInterval(this.#sweeper);
    // Without this, calls arriving on open sessions keep the drain going until its deadline.
    for (const s of this.all()) s.draining = true;
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && this.all().some((s) => s.pendingCount > 0)) await new Promise((r) => setTimeout(r, 50));
    await Promise.all(this.all().map((s) => s.close("gateway_shutdown")));
    this.tasks.stop();
  }

  /**
   * Applies a reloaded configuration: new sessions use it, open sessions follow its access, policy
   * and masking; sessions of a removed connection are closed. An open session keeps the upstream
   * it started with until it ends.
   */
  async applyConfig(next: GatewayConfig): Promise<string[]> {
    const removed = this.config.connections.map((c) => c.name).filter((n) => !next.connections.some((c) => c.name === n));
    this.config = next;
    await Promise.all(this.all().filter((s) => removed.includes(s.connection.name)).map((s) => s.close("connection_removed")));
    return removed;
  }

  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }
}

/** Adds to a counter, removing it at zero (so the map holds only what is in progress). */
function bump(counts: Map<string, number>, key: string, by: number): void {
  const n = (counts.get(key) ?? 0) + by;
  if (n > 0) counts.set(key, n);
  else counts.delete(key);
}

/** `connections[2].maxSessions`: the key path of a connection's setting, as the configuration file names it. */
function connectionKey(connections: readonly ConnectionConfig[], name: string, key: string): string {
  const i = connections.findIndex((c) => c.name === name);
  return i < 0 ? `connections[].${key}` : `connections[${i}].${key}`;
}
