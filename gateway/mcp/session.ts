// One client session paired with one upstream session: the data path of the architecture, in
// the order it runs.
//
//   client message  ─▶ record(in) ─▶ forward to upstream
//   upstream message ─▶ record(out) ─▶ deliver to the client
//
// Nothing is forwarded before its record is committed, and nothing is delivered before its record
// is committed. When the store cannot commit, a request gets a CS_ERR_AUDIT_UNAVAILABLE error and
// nothing moves on (fail closed). Later stages (authenticate, decide, mask) slot in here.
import type { Recorder } from "../audit/recorder.js";
import type { Identity } from "../auth/identity.js";
import { filterToolsList, toolCallRefusal } from "../auth/tool-access.js";
import { evaluate, type PolicyDecision } from "../policy/engine.js";
import type { Metrics } from "../metrics.js";
import type { ApprovalService } from "../approvals/service.js";
import type { ApprovalRequest } from "../approvals/types.js";
import { pausedNotice } from "../approvals/notice.js";
import type { ConnectionConfig } from "../config/load.js";
import { CountersignError, jsonRpcErrorResponse } from "../errors.js";
import type { Logger } from "../log.js";
import { classify, idKey, progressTokenOf, type Classified, type JsonRpcId, type JsonRpcMessage } from "./jsonrpc.js";
import type { UpstreamEvents, UpstreamTransport } from "./upstream/types.js";
import { asPolicyDecision, observeToolsList, pinVerdict, type PinVerdict } from "../pinning/index.js";
import type { ToolPins } from "../pinning/service.js";
import { refusalResult } from "./refusal.js";
import { JUSTIFICATION_HEADER, justificationOf } from "../policy/justification.js";
import { SessionTasks, type TaskHost } from "./session-tasks.js";
import { RequestLifecycle } from "../pipeline/request-state.js";
import type { CallerView, ClientSink, ForwardClaims, PendingRequest, RequestHints, Restorer } from "../pipeline/exchange.js";
import { maskingScope } from "../masking/scope.js";
import { rememberIssued, restoredEvent, restoreRequest, type IssuedView, type Restorer as PseudonymMap } from "../masking/restore/index.js";

export type { CallerView, ClientSink, ForwardClaims, PendingRequest, RequestHints, Restorer };
import { taskParamsOf, type GatewayTask, type TaskRegistry } from "./tasks.js";

/** The caller's stated reason (policy/justification.ts: `_meta` wins, the header is percent-decoded). */
function justificationFor(msg: JsonRpcMessage, hints: RequestHints | undefined): string | undefined {
  return justificationOf(msg, hints?.justification === undefined ? undefined : { [JUSTIFICATION_HEADER]: hints.justification });
}

/** Server→client requests awaiting the client's answer, per session (bound of #serverRequests). */
export const MAX_UNANSWERED_SERVER_REQUESTS = 100;

/** The methods the policy governs; the rest (initialize, lists, notifications…) pass. */
const GOVERNED_METHODS = new Set(["tools/call", "resources/read", "prompts/get"]);

export interface SessionInit {
  id: string;
  connection: ConnectionConfig;
  /** The connection's current configuration (a reload replaces it; policy and masking follow). */
  currentConnection?: () => ConnectionConfig | undefined;
  frontTransport: "streamable_http" | "sse";
  recorder: Recorder;
  log: Logger;
  upstreamTimeoutMs: number;
  notificationsPerSecond: number;
  /** The caller, authenticated at the front; the session is bound to it. */
  identity: Identity;
  metrics?: Metrics | undefined;
  /** Tool pins shared by the replicas (gateway/pinning); absent: no pinning. */
  pins?: ToolPins | undefined;
  /** Where require_approval calls are held; absent: such calls fail closed. */
  approvals?: { service: ApprovalService; holdForMs: number; tasks?: TaskRegistry | undefined } | undefined;
  /** The pseudonym map of the restore stage and the mask stage (gateway/masking/restore); absent: nothing is restored. */
  restorer?: PseudonymMap | undefined;
  /** Called once when the session ends, whatever ended it. */
  onClosed: (session: ProxySession, reason: string, detail?: string) => void;
  /** Called with the negotiated protocol version and server info once initialize succeeds. */
  onInitialized: (session: ProxySession, result: Record<string, unknown>) => void;
}

export class ProxySession implements UpstreamEvents {
  readonly id: string;
  readonly #connection: ConnectionConfig;
  readonly frontTransport: "streamable_http" | "sse";
  protocolVersion: string | undefined;
  readonly startedAt = Date.now();
  lastActivity = Date.now();
  ended = false;
  /** Set when the gateway drains for shutdown: new requests are refused so the drain can end. */
  draining = false;
  sink: ClientSink | undefined;
  upstream!: UpstreamTransport;

  readonly #init: SessionInit;
  readonly #pending = new Map<string, PendingRequest>();
  /** Calls held for approval: aborted when the client cancels or the session ends. */
  readonly #holds = new Map<string, AbortController>();
  /** Progress token → the client request that carried it, to route progress to its stream. */
  readonly #progress = new Map<string, JsonRpcId>();
  /** Server→client requests awaiting the client's answer (for the method of the answer's record). Bounded: MAX_UNANSWERED_SERVER_REQUESTS. */
  readonly #serverRequests = new Map<string, string>();
  /** Refused upstream requests since the last refusal event, and when that event was recorded. */
  #refusedServerRequests = 0;
  #lastRefusalEventAt = 0;
  /** Tool name → fingerprint of the definition this session's caller was shown (tool pinning). */
  readonly #toolHashes = new Map<string, string>();
  #bucket: { tokens: number; at: number; dropped: number };
  /** MCP tasks of held and wrapped calls (session-tasks.ts); absent where approvals are not configured. */
  readonly #tasks: SessionTasks | undefined;

  constructor(init: SessionInit) {
    this.#init = init;
    this.id = init.id;
    this.#connection = init.connection;
    this.frontTransport = init.frontTransport;
    this.#bucket = { tokens: init.notificationsPerSecond * 2, at: Date.now(), dropped: 0 };
    this.#tasks = init.approvals?.tasks ? new SessionTasks(this.#taskHost(init.approvals.service, init.approvals.tasks)) : undefined;
  }

  /** Access, policy and masking as configured now: a reload applies to open sessions too. */
  get connection(): ConnectionConfig {
    return this.#init.currentConnection?.() ?? this.#connection;
  }

  get identity(): Identity {
    return this.#init.identity;
  }

  get pendingCount(): number {
    return this.#pending.size;
  }

  // ── client → server ─────────────────────────────────────────────────────────────────────────

  /**
   * Takes one message from the client. Requests always end in a response through the sink (the
   * upstream's, or an error). For notifications and responses a failure is thrown, for the front
   * to report in its HTTP answer.
   */
  async fromClient(msg: JsonRpcMessage, c: Classified, hints?: RequestHints): Promise<void> {
    if (this.ended) throw new CountersignError("CS_ERR_UNKNOWN_SESSION", "the session has ended");
    this.lastActivity = Date.now();
    const isRequest = c.kind === "request" && c.id !== undefined;
    if (isRequest) this.#track(msg, c.id!, c.method!, justificationFor(msg, hints), hints?.requestId);
    if (isRequest && this.#tasks?.offered && c.method === "tools/call") this.#pending.get(idKey(c.id!))!.taskParams = taskParamsOf(msg.params);
    // restore stage: before anything decides on it, records it or forwards it, the message is what the caller meant.
    const restore = await restoreRequest(this.#init.restorer, msg, this.#maskingScope);
    if (restore.error) {
      if (isRequest) return this.#fail(c.id!, restore.error);
      throw restore.error;
    }
    msg = restore.message;
    const requestId = hints?.requestId ?? null;
    let method = c.method ?? null;
    if ((c.kind === "response" || c.kind === "error") && c.id !== undefined) {
      method = this.#serverRequests.get(idKey(c.id)) ?? null;
      this.#serverRequests.delete(idKey(c.id));
    }

    // decide (pure, before anything is written): identity access first, then tool pinning (is
    // this the definition that was pinned), then policy rules.
    // A governed method sent as a notification (no id) can still act upstream: it is decided too,
    // and dropped (recorded) unless allowed outright, as nobody could be answered or held.
    const governedNotification = c.kind === "notification" && GOVERNED_METHODS.has(c.method!);
    const deciding = (isRequest || governedNotification) && !this.draining;
    const refusal = deciding ? toolCallRefusal(this.connection.access, this.identity, msg) : undefined;
    const pinned = deciding && !refusal && c.method === "tools/call" ? this.#pinVerdict(msg) : undefined;
    const decision =
      deciding && !refusal && pinned?.action !== "block" && GOVERNED_METHODS.has(c.method!)
        ? evaluate(this.connection.policy, {
            connection: this.connection.name,
            method: c.method!,
            params: msg.params,
            identity: { subject: this.identity.subject, groups: this.identity.groups, email: this.identity.email },
            justification: isRequest ? this.#pending.get(idKey(c.id!))?.justification : justificationFor(msg, hints),
          })
        : undefined;

    // record(in), with the decision in the same commit. mask: a secret the caller pasted into a
    // call must not stay in the audit store; the upstream still receives the message as sent.
    try {
      const masked = this.connection.masker?.maskMessage(msg, { scope: this.#maskingScope });
      const writes = [this.#record("in", "client", masked?.masked ?? msg, c, method, masked?.changed ? masked.hits : null, requestId)];
      if (restore.restored > 0) writes.push(this.#init.recorder.event(restoredEvent({ sessionId: this.id, connection: this.connection.name, subject: this.identity.subject, requestId }, restore.restored, method))); // restore stage: the fact, never the values
      if (refusal) {
        const tool = (msg.params as { name?: unknown } | undefined)?.name;
        writes.push(
          this.#init.recorder.event({
            type: "access_denied",
            reason: "tool_denied",
            sessionId: this.id,
            connection: this.connection.name,
            subject: this.identity.subject,
            detail: { tool: typeof tool === "string" ? tool : null, groups: this.identity.groups, requestId: c.id ?? null },
            requestId,
          }),
        );
      }
      if (pinned) writes.push(this.#recordPinDecision(pinned, c.id ?? null, requestId));
      if (decision) writes.push(this.#recordDecision(decision, msg, c.id ?? null, requestId));
      const dropped = governedNotification && (refusal || (pinned && pinned.action !== "allow") || (decision && decision.effectiveAction !== "allow"));
      if (dropped) {
        writes.push(
          this.#init.recorder.event({
            type: "message_rejected",
            reason: "governed_notification",
            sessionId: this.id,
            connection: this.connection.name,
            subject: this.identity.subject,
            detail: { method: c.method ?? null, why: refusal ? "access" : pinned && pinned.action !== "allow" ? `pin ${pinned.action}` : `policy ${decision?.effectiveAction}` },
            requestId,
          }),
        );
        await Promise.all(writes);
        return;
      }
      await Promise.all(writes);
    } catch (err) {
      if (!isRequest) throw err;
      return this.#fail(c.id!, err);
    }
    if (isRequest) this.#pending.get(idKey(c.id!))?.lifecycle.move("decided");
    // Shutting down: a new request is refused (recorded, not forwarded); notifications and
    // responses still pass, as the in-flight calls being drained may need them.
    if (isRequest && this.draining) return this.#fail(c.id!, new CountersignError("CS_ERR_SHUTTING_DOWN"));
    if (refusal) return this.#fail(c.id!, refusal);
    if (pinned && pinned.action !== "allow" && decision?.effectiveAction !== "block") {
      const pinDecision = asPolicyDecision(pinned);
      if (pinned.action === "block") return this.#refuse(c.id!, c.method!, new CountersignError("CS_ERR_TOOL_DEFINITION_CHANGED", pinned.reason), pinDecision);
      if (!this.#init.approvals) {
        return this.#refuse(c.id!, c.method!, new CountersignError("CS_ERR_APPROVAL_UNAVAILABLE", `${pinned.ruleId} asks for approval by ${pinned.approval?.group ?? "an approver"}`), pinDecision);
      }
      // Held for the pin's approvers first; once approved, a policy hold still applies.
      void this.#holdChain(msg, c.id!, c.method!, pinDecision, decision?.effectiveAction === "require_approval" ? decision : undefined).catch((err) => this.#fail(c.id!, err));
      return;
    }
    if (isRequest && this.#tasks?.offered && c.method!.startsWith("tasks/") && this.#tasks.answersRequest(msg, c.id!, c.method!)) {
      return this.#tasks.handleRequest(msg, c.id!, c.method!);
    }
    if (decision?.effectiveAction === "block") {
      return this.#refuse(c.id!, c.method!, new CountersignError("CS_ERR_POLICY_BLOCKED", decision.message ?? decision.reason), decision);
    }
    if (decision?.effectiveAction === "require_approval") {
      if (!this.#init.approvals) {
        // No approval channel is configured: fail closed, clearly.
        return this.#refuse(c.id!, c.method!, new CountersignError("CS_ERR_APPROVAL_UNAVAILABLE", `rule ${decision.ruleId ?? "(default)"} asks for approval by ${decision.approval?.group ?? "an approver"}`), decision);
      }
      // hold: detached, so the front is not blocked while a person decides.
      void this.#holdChain(msg, c.id!, c.method!, decision).catch((err) => this.#fail(c.id!, err));
      return;
    }
    const forwarding = isRequest ? this.#pending.get(idKey(c.id!)) : undefined;
    // A task-augmented call the upstream cannot run as a task: the gateway runs the task.
    if (forwarding?.taskParams && this.#tasks && !this.#tasks.upstreamRunsAsTask(msg)) return this.#tasks.wrap(msg, c.id!);
    // A cancel for a request the upstream never saw (held, or not yet sent) ends it here: the hold
    // is aborted first, and the upstream is not told about an id it does not know.
    if (c.kind === "notification" && c.method === "notifications/cancelled") {
      const cancelled = (msg.params as { requestId?: unknown } | undefined)?.requestId;
      const p = typeof cancelled === "string" || typeof cancelled === "number" ? this.#pending.get(idKey(cancelled)) : undefined;
      if (p && !p.lifecycle.upstreamKnows) {
        p.lifecycle.move("cancelled");
        this.#holds.get(idKey(p.id))?.abort();
        this.#untrack(p.id);
        return;
      }
    }
    // Cancelled, or the session closed, while it was being decided and recorded: it never goes out.
    if (isRequest && !forwarding) return;
    if (forwarding) this.#forwarding(forwarding);
    try {
      await this.upstream.send(msg, this.protocolVersion);
      forwarding?.lifecycle.move("forwarded");
    } catch (err) {
      if (!isRequest) throw err instanceof CountersignError ? err : new CountersignError("CS_ERR_UPSTREAM_UNAVAILABLE", String(err));
      return this.#fail(c.id!, err);
    }
    // The client gave up on that request and the upstream will not answer it: stop waiting, or
    // the session counts as busy (no idle close, shutdown waits its full grace) until the
    // upstream timeout answers a request the client no longer expects.
    if (c.kind === "notification" && c.method === "notifications/cancelled") {
      const requestId = (msg.params as { requestId?: unknown } | undefined)?.requestId;
      if (typeof requestId === "string" || typeof requestId === "number") {
        this.#holds.get(idKey(requestId))?.abort();
        this.#untrack(requestId);
      }
    }
  }

  #track(msg: JsonRpcMessage, id: JsonRpcId, method: string, justification: string | undefined, requestId?: string | undefined): void {
    const progressToken = progressTokenOf(msg);
    this.#pending.set(idKey(id), { id, method, lifecycle: new RequestLifecycle(), progressToken, justification, requestId, receivedAt: performance.now() });
    if (progressToken !== undefined) this.#progress.set(idKey(progressToken), id);
  }

  /** The request goes to the upstream now: from here on, and only from here, the upstream timeout runs. */
  #forwarding(p: PendingRequest): void {
    p.lifecycle.move("forwarding");
    p.forwardedAt = performance.now();
    clearTimeout(p.timer);
    p.timer = setTimeout(() => {
      // The upstream has taken too long: answer the client, and tell the upstream to stop.
      void this.#fail(p.id, new CountersignError("CS_ERR_UPSTREAM_TIMEOUT", `${p.method} took longer than ${this.#init.upstreamTimeoutMs} ms`));
      void this.upstream
        .send({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: p.id, reason: "timed out at the gateway" } }, this.protocolVersion)
        .catch(() => {});
    }, this.#init.upstreamTimeoutMs);
    p.timer.unref();
  }

  #untrack(id: JsonRpcId): PendingRequest | undefined {
    const p = this.#pending.get(idKey(id));
    if (!p) return undefined;
    clearTimeout(p.timer);
    this.#pending.delete(idKey(id));
    if (p.progressToken !== undefined) this.#progress.delete(idKey(p.progressToken));
    return p;
  }

  // ── server → client ─────────────────────────────────────────────────────────────────────────

  message(raw: unknown, _size: number, relatedTo?: JsonRpcId): void {
    if (this.ended) return;
    this.lastActivity = Date.now();
    const c = classify(raw);
    if (!c) {
      this.#rejected("upstream_invalid_json", { note: "the upstream sent JSON that is not a JSON-RPC 2.0 message" });
      return;
    }
    let msg = raw as JsonRpcMessage;
    let method = c.method ?? null;
    let route: { responseTo?: JsonRpcId; relatedTo?: JsonRpcId | undefined } = { relatedTo };
    let justification: string | undefined;
    let timing: PendingRequest | undefined;
    let pinning: Promise<void> | undefined;

    if (c.kind === "response" || c.kind === "error") {
      const p = c.id === undefined ? undefined : this.#untrack(c.id);
      if (!p) {
        this.#rejected("unknown_response_id", { id: c.id ?? null, note: "the upstream answered a request the client never sent (or one already answered)" });
        return;
      }
      p.lifecycle.move("answered");
      method = p.method;
      route = { responseTo: p.id };
      justification = p.justification;
      timing = p;
      if (p.method === "initialize" && c.kind === "response") {
        this.#initialized(msg);
        if (this.#tasks) msg = this.#tasks.offer(msg);
      }
      // The caller's tools/list leaves out the tools it may not call.
      if (p.method === "tools/list" && c.kind === "response") msg = filterToolsList(this.connection.access, this.identity, msg).msg;
      // tool pinning: new tools are pinned, changes reported (committed before delivery); with
      // onChange block, a changed tool is left out of what the caller sees.
      if (p.method === "tools/list" && c.kind === "response") ({ msg, pinning } = this.#pinToolsList(msg));
      if (c.kind === "response" && this.#tasks?.offered) msg = this.#tasks.decorateResponse(msg, p);
    } else if (c.kind === "notification") {
      if (!this.#admitNotification()) return;
      if (c.method === "notifications/progress") {
        const token = (msg.params as { progressToken?: JsonRpcId } | undefined)?.progressToken;
        const owner = token === undefined ? undefined : this.#progress.get(idKey(token));
        if (owner !== undefined) route = { relatedTo: owner };
      }
    } else if (c.kind === "request") {
      // Requests to the client are admitted like notifications (same rate) and capped while
      // unanswered: beyond, the upstream gets a JSON-RPC error, recorded.
      if (this.#serverRequests.size >= MAX_UNANSWERED_SERVER_REQUESTS || !this.#admitNotification()) return this.#refuseServerRequest(c.id!, c.method!);
      this.#serverRequests.set(idKey(c.id!), c.method!);
    }

    // mask: the record always holds the fully masked view; a caller exempted by role receives
    // the exempted types unmasked, and that delivery is recorded as evidence with its reason.
    const view = this.#maskForCaller(msg, justification);
    const committed = [this.#record("out", "upstream", view.record, c, method, view.hits, timing?.requestId ?? null)];
    committed.push(rememberIssued(this.#init.restorer, this.#maskingScope, view)); // mask stage: remember issued pseudonyms
    if (pinning) committed.push(pinning);
    // A task's forwarded call is not delivered now: tasks/result masks it for the caller later.
    if (view.exempted && !timing?.task) {
      committed.push(
        this.#init.recorder.event({
          type: "unmasked_delivery",
          reason: "role_exemption",
          sessionId: this.id,
          connection: this.connection.name,
          subject: this.identity.subject,
          detail: { types: view.exempted, groups: this.identity.groups, justification: justification ?? null, method, requestId: route.responseTo ?? null },
          requestId: timing?.requestId ?? null,
        }),
      );
    }
    Promise.all(committed).then(
      () => {
        if (timing?.task) this.#tasks?.finish(timing.task, c.kind === "error" ? { error: msg.error as Record<string, unknown> } : { result: msg.result as Record<string, unknown> });
        else this.#deliver(view.deliver, route);
        if (timing) this.#observe(timing, c.kind === "error" ? "error" : "ok");
      },
      (err) => {
        // Fail closed: the upstream's message is not delivered unrecorded.
        if (timing?.task) this.#tasks?.finish(timing.task, { error: (err instanceof CountersignError ? err : new CountersignError("CS_ERR_AUDIT_UNAVAILABLE", String(err))).toJsonRpcError() });
        else if (route.responseTo !== undefined) void this.#deliverError(route.responseTo, err as CountersignError, false);
        else if (c.kind === "request") {
          void this.upstream.send(jsonRpcErrorResponse(c.id!, err as CountersignError), this.protocolVersion).catch(() => {});
        }
      },
    );
  }

  /**
   * An upstream request over the rate or the cap: answered upstream with an error at once. A flood
   * of them is recorded as one event per second with how many were refused, not a row each: a
   * row each would let one upstream fill the audit queue that every caller's records share.
   */
  #refuseServerRequest(id: JsonRpcId, method: string): void {
    const err = new CountersignError("CS_ERR_UPSTREAM_REQUEST_LIMIT", `${this.#serverRequests.size} unanswered; at most ${MAX_UNANSWERED_SERVER_REQUESTS}, ${this.#init.notificationsPerSecond} per second`);
    const response = jsonRpcErrorResponse(id, err) as unknown as JsonRpcMessage;
    this.#refusedServerRequests++;
    const now = Date.now();
    if (now - this.#lastRefusalEventAt >= 1000) {
      this.#rejected("upstream_request_limit", { id, method, refusedSinceLastEvent: this.#refusedServerRequests });
      this.#lastRefusalEventAt = now;
      this.#refusedServerRequests = 0;
    }
    this.upstream.send(response, this.protocolVersion).catch(() => {});
  }

  failure(err: CountersignError, requestIds: JsonRpcId[]): void {
    this.#init.log.warn({ session: this.id, code: err.code, detail: err.detail }, "upstream failure");
    if (requestIds.length === 0) {
      const reason = err.code === "CS_ERR_UPSTREAM_RESPONSE_TOO_LARGE" ? "upstream_message_too_large" : "upstream_invalid_json";
      this.#rejected(reason, { code: err.code, detail: err.detail ?? null });
    }
    for (const id of requestIds) void this.#fail(id, err);
  }

  closed(reason: "exited" | "closed", detail: string): void {
    void this.close(reason === "exited" ? "upstream_exited" : "upstream_closed", detail);
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
    for (const h of this.#holds.values()) h.abort();
    const pending = [...this.#pending.values()];
    await Promise.all(pending.map((p) => this.#fail(p.id, err)));
    this.sink?.end();
    await this.upstream?.close().catch(() => {});
    this.#init.onClosed(this, reason, detail);
  }

  // ── shared steps ────────────────────────────────────────────────────────────────────────────

  /**
   * Holds a call for an approval decision. The caller is told at once (a log notification naming
   * who it waits for) and kept alive with progress notifications when it sent a progress token.
   * Approved: forwarded at most once (claimForward). Denied or expired: a tool error with the
   * reason. Still undecided after holdFor, or cancelled: "approval pending" with the request id, so
   * the identical retry picks up the decision later. A task-augmented call gets a task instead
   * (tasks.ts): answered at once, decided and forwarded in the background.
   */
  /** A chain of holds (a pin's, then a rule's) as one: claims its call never used are released. */
  async #holdChain(msg: JsonRpcMessage, id: JsonRpcId, method: string, first: PolicyDecision, then?: PolicyDecision): Promise<void> {
    const claims: ForwardClaims = { claimed: [], settled: false };
    const next = then ? (c: ForwardClaims) => this.#hold(msg, id, method, then, undefined, c) : undefined;
    try {
      await this.#hold(msg, id, method, first, next, claims);
    } finally {
      if (!claims.settled && claims.claimed.length > 0) {
        await Promise.all(claims.claimed.map((a) => this.#init.approvals!.service.releaseForward(a))).catch((err) => this.#init.log.warn({ err: String(err) }, "could not release an approval claim"));
      }
    }
  }

  async #hold(msg: JsonRpcMessage, id: JsonRpcId, method: string, decision: PolicyDecision, next: ((claims: ForwardClaims) => Promise<void>) | undefined, claims: ForwardClaims): Promise<void> {
    const approvals = this.#init.approvals!;
    const need = decision.approval!;
    const refuse = (code: "CS_ERR_APPROVAL_DENIED" | "CS_ERR_APPROVAL_PENDING" | "CS_ERR_JUSTIFICATION_REQUIRED", detail: string) =>
      this.#refuse(id, method, new CountersignError(code, detail), decision);
    if (need.justificationMissing) {
      return refuse("CS_ERR_JUSTIFICATION_REQUIRED", `rule ${need.ruleId ?? "(default)"} needs a justification for approval: send it in _meta["countersign/justification"] or the X-Countersign-Justification header`);
    }
    const params = (msg.params ?? {}) as { name?: unknown; uri?: unknown; arguments?: unknown };
    const args = params.arguments ?? {};
    const { request } = await approvals.service.request({
      sessionId: this.id,
      connection: this.connection.name,
      method,
      tool: typeof params.name === "string" ? params.name : typeof params.uri === "string" ? params.uri : method,
      arguments: args,
      maskedArguments: this.connection.masker?.maskMessage(args).masked ?? args,
      requester: { subject: this.identity.subject, issuer: this.identity.issuer, kind: this.identity.kind, email: this.identity.email, name: this.identity.name, groups: this.identity.groups },
      rule: { id: decision.ruleId, description: need.why },
      approverGroup: need.group,
      approvalsNeeded: need.approvals,
      timeoutMs: need.timeoutMs,
      justification: need.justification,
    });
    // A task-augmented call: answered now with a task, decided in the background. A hold with a
    // later hold chained to it (a changed tool's pin, then a rule) holds as before; the last hold
    // of the chain answers with the task.
    const taskParams = this.#pending.get(idKey(id))?.taskParams;
    if (taskParams && !next && this.#tasks) return this.#tasks.holdAsTask(msg, id, decision, request, taskParams, claims);

    let decided: ApprovalRequest = request;
    this.#pending.get(idKey(id))?.lifecycle.move("held");
    if (request.status === "pending") {
      const abort = new AbortController();
      this.#holds.set(idKey(id), abort);
      const token = this.#pending.get(idKey(id))?.progressToken;
      const waiting = pausedNotice(request, new Date());
      await this.#notify(id, { method: "notifications/message", params: { level: "notice", logger: "countersign", data: waiting } });
      let step = 0;
      const ticker =
        token === undefined
          ? undefined
          : setInterval(() => void approvals.service.store.get(request.id).catch(() => request).then((now) => this.#notify(id, { method: "notifications/progress", params: { progressToken: token, progress: ++step, message: pausedNotice(now ?? request, new Date()) } })), Math.min(5000, Math.max(250, approvals.holdForMs / 4)));
      try {
        decided = await approvals.service.waitForDecision(request.id, abort.signal, approvals.holdForMs);
      } finally {
        if (ticker) clearInterval(ticker);
        this.#holds.delete(idKey(id));
      }
    }

    if (decided.status === "approved") {
      // Cancelled or closed meanwhile: leave the approval unclaimed for the identical retry.
      if (!this.#pending.has(idKey(id)) || this.ended) return;
      // Two-phase: claimed now, recorded as forwarded only once the send resolved. A claim whose
      // call never goes out (a later hold refuses, cancel, close, the send fails) is released by
      // #holdChain, so the identical retry can still use the approval.
      if (!(await approvals.service.claimForward(decided.id))) {
        return refuse("CS_ERR_APPROVAL_DENIED", `request ${decided.id} was approved and its call already forwarded once; an approval covers one call`);
      }
      claims.claimed.push(decided.id);
      if (next) return next(claims); // a later layer's hold decides next
      const p = this.#pending.get(idKey(id));
      if (!p || this.ended) return;
      this.#forwarding(p);
      try {
        await this.upstream.send(msg, this.protocolVersion);
        p.lifecycle.move("forwarded");
      } catch (err) {
        return this.#fail(id, err);
      }
      claims.settled = true;
      await Promise.all(claims.claimed.map((a) => approvals.service.confirmForward(a))).catch((err) => this.#init.log.warn({ err: String(err) }, "could not record an approved call as forwarded"));
      return;
    }
    if (decided.status === "denied" || decided.status === "expired") {
      const by = decided.status === "expired" ? "nobody decided before it expired" : `denied by ${decided.decidedBy ?? "an approver"}`;
      return refuse("CS_ERR_APPROVAL_DENIED", `request ${decided.id}: ${by}${decided.decisionReason ? `: ${decided.decisionReason}` : ""}`);
    }
    return refuse(
      "CS_ERR_APPROVAL_PENDING",
      `approval pending, request ${decided.id}, expires ${decided.expiresAt.toISOString()}; retry the same call after a decision`,
    );
  }

  /** A gateway message to the client about one of its requests, recorded before delivery. */
  async #notify(requestId: JsonRpcId, body: { method: string; params: Record<string, unknown> }): Promise<void> {
    const msg = { jsonrpc: "2.0", ...body } as JsonRpcMessage;
    try {
      await this.#record("out", "gateway", msg, { kind: "notification", method: body.method }, body.method);
    } catch {
      return; // not recorded, not delivered
    }
    this.#deliver(msg, { relatedTo: requestId });
  }

  #observe(p: PendingRequest, outcome: "ok" | "error" | "refused"): void {
    const m = this.#init.metrics;
    if (!m) return;
    const labels = { connection: this.connection.name, method: p.method };
    const now = performance.now();
    m.requests.inc({ ...labels, outcome });
    m.requestDuration.observe(labels, (now - p.receivedAt) / 1000);
    if (p.forwardedAt !== undefined && outcome !== "refused") m.upstreamDuration.observe(labels, (now - p.forwardedAt) / 1000);
  }

  /** The pinning layer's verdict on a tools/call (pure: the pins are in memory). */
  #pinVerdict(msg: JsonRpcMessage): PinVerdict | undefined {
    const pins = this.#init.pins;
    const tool = (msg.params as { name?: unknown } | undefined)?.name;
    if (!pins || typeof tool !== "string") return undefined;
    const name = this.connection.name;
    return pinVerdict(this.connection.pinning, name, tool, pins.get(name, tool), this.#toolHashes.get(tool));
  }

  /** A call to a tool whose definition differs from its pin is a decision: recorded with its rule and why. */
  #recordPinDecision(v: PinVerdict, id: JsonRpcId | null, requestId: string | null): Promise<void> {
    return this.#init.recorder.event({
      type: "tool_definition_changed",
      reason: v.action === "block" ? "call_blocked" : v.action === "require_approval" ? "call_held" : "call_allowed",
      sessionId: this.id,
      connection: this.connection.name,
      subject: this.identity.subject,
      detail: { requestId: id, tool: v.tool, ruleId: v.ruleId, action: v.action, pinnedHash: v.pinnedHash, currentHash: v.currentHash, why: v.reason, ...(v.approval ? { approval: { group: v.approval.group } } : {}) },
      requestId,
    });
  }

  /**
   * Tool pinning on a tools/list result: remembers what this caller was shown, pins new tools and
   * reports changed ones (the returned promise commits that), and with onChange block leaves a
   * changed tool out, so its new definition does not reach the model until an admin re-pins it.
   */
  #pinToolsList(msg: JsonRpcMessage): { msg: JsonRpcMessage; pinning?: Promise<void> } {
    const pins = this.#init.pins;
    const cfg = this.connection.pinning;
    const result = msg.result as { tools?: unknown } | undefined;
    if (!pins || !cfg.enabled || !Array.isArray(result?.tools)) return { msg };
    const name = this.connection.name;
    const observed = observeToolsList(result.tools, this.connection.masker);
    for (const t of observed) this.#toolHashes.set(t.tool, t.hash);
    const pinning = pins.observe(name, observed, { sessionId: this.id, subject: this.identity.subject });
    if (cfg.onChange !== "block") return { msg, pinning };
    const hidden = new Set(observed.filter((t) => { const pin = pins.get(name, t.tool); return pin !== undefined && pin.hash !== t.hash; }).map((t) => t.tool));
    if (hidden.size === 0) return { msg, pinning };
    const tools = (result.tools as Array<{ name?: unknown }>).filter((t) => !(typeof t?.name === "string" && hidden.has(t.name)));
    return { msg: { ...msg, result: { ...result, tools } } as JsonRpcMessage, pinning };
  }

  /** Every decision on a governed call is an event: who, which rule, which action, and why. */
  #recordDecision(d: PolicyDecision, msg: JsonRpcMessage, requestId: JsonRpcId | null, httpRequestId: string | null): Promise<void> {
    const reason = d.shadow ? (d.action === "block" ? "shadow_block" : d.action === "require_approval" ? "shadow_require_approval" : "allow") : d.effectiveAction;
    const params = msg.params as { name?: unknown; uri?: unknown } | undefined;
    return this.#init.recorder.event({
      type: "policy_decision",
      reason,
      sessionId: this.id,
      connection: this.connection.name,
      subject: this.identity.subject,
      requestId: httpRequestId,
      detail: {
        requestId,
        method: msg.method as string,
        target: typeof params?.name === "string" ? params.name : typeof params?.uri === "string" ? "(resource)" : null,
        ruleId: d.ruleId,
        action: d.action,
        effectiveAction: d.effectiveAction,
        shadow: d.shadow,
        why: d.reason,
        ...(d.approval ? { approval: { group: d.approval.group, approvals: d.approval.approvals } } : {}),
      },
    });
  }

  /**
   * Refuses a governed call. A refused tools/call is answered as a tool error (isError) so the
   * agent reads the rule and its reason; other methods get a JSON-RPC error.
   */
  async #refuse(id: JsonRpcId, method: string, err: CountersignError, decision: PolicyDecision): Promise<void> {
    if (method !== "tools/call") return this.#fail(id, err);
    const p = this.#untrack(id);
    if (!p) return;
    this.#observe(p, "refused");
    // A task-augmented call gets a task that has already failed, its outcome the same tool error.
    if (p.taskParams && this.#tasks) return this.#tasks.refuse(p, refusalResult(err, decision));
    const response = { jsonrpc: "2.0", id, result: refusalResult(err, decision) } as JsonRpcMessage;
    await this.#record("out", "gateway", response, { kind: "response", id }, method, null, p.requestId ?? null).catch(() => {});
    this.#deliver(response, { responseTo: id });
  }

  /** The record's view (fully masked) and the caller's view (with the caller's exemptions). */
  #maskForCaller(msg: JsonRpcMessage, justification: string | undefined): CallerView & IssuedView {
    const masker = this.connection.masker;
    if (!masker) return { record: msg, deliver: msg, hits: null, exempted: undefined };
    const full = masker.maskMessage(msg, { scope: this.#maskingScope });
    const hits = full.changed ? full.hits : null;
    const exempt = new Set<string>();
    for (const e of this.connection.masking.exemptions) {
      if (!e.groups.some((g) => this.identity.groups.includes(g))) continue;
      if (e.justificationRequired && !justification) continue;
      for (const t of e.types) exempt.add(t);
    }
    if (!full.changed || exempt.size === 0) return { record: full.masked, deliver: full.masked, hits, exempted: undefined, issued: full.issued };
    const partial = masker.maskMessage(msg, { exempt, scope: this.#maskingScope });
    const exempted = Object.keys(partial.exempted).length > 0 ? partial.exempted : undefined;
    return { record: full.masked, deliver: partial.masked, hits, exempted, issued: partial.issued };
  }

  /** Whose pseudonyms (gateway/masking/scope.ts): this caller on this connection, the same on every replica. */
  get #maskingScope(): string {
    return maskingScope(this.identity, this.connection.name);
  }

  /** The steps the session lends its MCP tasks (session-tasks.ts). */
  #taskHost(approvals: ApprovalService, registry: TaskRegistry): TaskHost {
    const session = this;
    return {
      sessionId: this.id,
      get identity() {
        return session.identity;
      },
      get connection() {
        return session.connection;
      },
      get ended() {
        return session.ended;
      },
      registry,
      approvals,
      holds: this.#holds,
      pending: (id) => this.#pending.get(idKey(id)),
      isPending: (id) => this.#pending.has(idKey(id)),
      track: (msg, id, method, justification) => this.#track(msg, id, method, justification),
      forwarding: (p) => this.#forwarding(p),
      untrack: (id) => this.#untrack(id),
      record: (direction, origin, msg, c, method, maskHits, requestId) => this.#record(direction, origin, msg, c, method, maskHits, requestId),
      recordEvent: (event) => this.#init.recorder.event(event),
      deliver: (msg, route) => this.#deliver(msg, route),
      deliverError: (id, err, record, requestId) => this.#deliverError(id, err, record, requestId),
      fail: (id, err) => this.#fail(id, err),
      observe: (p, outcome) => this.#observe(p, outcome),
      maskForCaller: (msg, justification) => this.#maskForCaller(msg, justification),
      rememberIssued: (view) => rememberIssued(this.#init.restorer, this.#maskingScope, view), // mask stage: remember issued pseudonyms
      sendUpstream: (msg) => this.upstream.send(msg, this.protocolVersion),
    };
  }

  #record(
    direction: "in" | "out",
    origin: "client" | "upstream" | "gateway",
    msg: JsonRpcMessage,
    c: Classified,
    method: string | null,
    maskHits: Record<string, number> | null = null,
    requestId: string | null = null,
  ): Promise<void> {
    const text = JSON.stringify(msg); // once: for the size and for the INSERT
    return this.#init.recorder.message({
      sessionId: this.id,
      connection: this.connection.name,
      direction,
      origin,
      kind: c.kind,
      jsonrpcId: c.id === undefined ? null : String(c.id),
      method,
      size: Buffer.byteLength(text),
      payload: msg,
      payloadText: text,
      maskHits,
      subject: this.identity.subject,
      requestId,
      at: new Date(),
    });
  }

  #deliver(msg: JsonRpcMessage, route: { responseTo?: JsonRpcId | undefined; relatedTo?: JsonRpcId | undefined }): void {
    const ok = this.sink?.deliver(msg, route) ?? false;
    if (!ok) {
      this.#init.recorder.eventBestEffort({
        type: "message_undeliverable",
        reason: this.sink ? "client_stream_closed" : "no_stream",
        sessionId: this.id,
        connection: this.connection.name,
        detail: { responseTo: route.responseTo ?? null, method: (msg.method as string | undefined) ?? null },
      });
    }
  }

  /** Answers a client request with a gateway error (recorded first when the store allows). */
  async #fail(id: JsonRpcId, err: unknown): Promise<void> {
    // A request already answered (or timed out) gets no second answer.
    const p = this.#untrack(id);
    if (!p) return;
    p.lifecycle.move("failed");
    this.#observe(p, p.forwardedAt === undefined ? "refused" : "error");
    const e = err instanceof CountersignError ? err : new CountersignError("CS_ERR_INTERNAL", String(err));
    // The gateway's forward of a task's call: the error is the task's outcome.
    if (p.task) return this.#tasks?.finish(p.task, { error: e.toJsonRpcError() });
    await this.#deliverError(id, e, true, p.requestId);
  }

  async #deliverError(id: JsonRpcId, err: CountersignError, record: boolean, requestId?: string | undefined): Promise<void> {
    const response = jsonRpcErrorResponse(id, err) as unknown as JsonRpcMessage;
    if (record) {
      // An error carries no upstream data, so it is delivered even if the store cannot take it:
      // the caller must not be left hanging.
      await this.#record("out", "gateway", response, { kind: "error", id }, null, null, requestId ?? null).catch(() => {});
    }
    this.#deliver(response, { responseTo: id });
  }

  #initialized(msg: JsonRpcMessage): void {
    const result = (msg.result ?? {}) as Record<string, unknown>;
    if (typeof result.protocolVersion === "string") this.protocolVersion = result.protocolVersion;
    this.#init.onInitialized(this, result);
  }

  /** A token bucket per session: an upstream flooding notifications cannot flood the client or the store. */
  #admitNotification(): boolean {
    const rate = this.#init.notificationsPerSecond;
    const b = this.#bucket;
    const now = Date.now();
    b.tokens = Math.min(rate * 2, b.tokens + ((now - b.at) / 1000) * rate);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return true;
    }
    // One report per second at most: reporting on each admitted notification would turn a
    // sustained flood into a flood of warnings and events.
    if (b.dropped++ === 0) setTimeout(() => this.#reportFlood(), 1000).unref();
    return false;
  }

  #reportFlood(): void {
    const dropped = this.#bucket.dropped;
    if (dropped === 0) return;
    this.#bucket.dropped = 0;
    this.#rejected("upstream_flood", { dropped, limitPerSecond: this.#init.notificationsPerSecond });
    // A session that has ended keeps the count in its record; there is no client left to tell.
    if (this.ended) return;
    // Tell the client, in the session, that it did not get everything.
    const notice: JsonRpcMessage = {
      jsonrpc: "2.0",
      method: "notifications/message",
      params: {
        level: "warning",
        logger: "countersign",
        data: `Countersign dropped ${dropped} notifications from upstream '${this.connection.name}': it sent more than ${this.#init.notificationsPerSecond} per second (limits.notificationsPerSecond).`,
      },
    };
    this.#record("out", "gateway", notice, { kind: "notification", method: "notifications/message" }, "notifications/message").then(
      () => this.#deliver(notice, {}),
      () => {},
    );
  }

  #rejected(reason: "upstream_invalid_json" | "unknown_response_id" | "upstream_flood" | "upstream_message_too_large" | "upstream_request_limit", detail: Record<string, unknown>): void {
    this.#init.recorder.eventBestEffort({ type: "message_rejected", reason, sessionId: this.id, connection: this.connection.name, detail });
  }
}
