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
import type { ConnectionConfig } from "../config/load.js";
import { CountersignError, jsonRpcErrorResponse } from "../errors.js";
import type { Logger } from "../log.js";
import { classify, idKey, progressTokenOf, type Classified, type JsonRpcId, type JsonRpcMessage } from "./jsonrpc.js";
import type { UpstreamEvents, UpstreamTransport } from "./upstream/types.js";
import { asPolicyDecision, observeToolsList, pinVerdict, type PinVerdict } from "../pinning/index.js";
import type { ToolPins } from "../pinning/service.js";
import {
  advertiseTasks, chooseTtl, IMMEDIATE_RESPONSE, isGatewayTaskId, isTerminal, markTaskSupport, messageOfOutcome, RELATED_TASK, statusOfOutcome,
  TASK_TTL, taskOwner, taskParamsOf, taskWire, upstreamTaskSupport, type GatewayTask, type TaskOutcome, type TaskRegistry, type TaskStatus,
} from "./tasks.js";

/** Where committed server→client messages go: implemented by each front transport. */
export interface ClientSink {
  /** `responseTo`: the message answers this client request. `relatedTo`: it belongs to that request's stream. */
  deliver(msg: JsonRpcMessage, route: { responseTo?: JsonRpcId | undefined; relatedTo?: JsonRpcId | undefined }): boolean;
  /** The session is over: end the client's streams. */
  end(): void;
}

/** What the front knows of a request besides its body. */
export interface RequestHints {
  /** From the X-Countersign-Justification header. */
  justification?: string | undefined;
  /** The HTTP request's id (the log's reqId): stored with the records it causes. */
  requestId?: string | undefined;
}

/** The caller's stated reason, from `_meta["countersign/justification"]` or the header. */
function justificationOf(msg: JsonRpcMessage, hints: RequestHints | undefined): string | undefined {
  const meta = (msg.params as { _meta?: Record<string, unknown> } | undefined)?._meta;
  const fromMeta = meta?.["countersign/justification"];
  const text = typeof fromMeta === "string" && fromMeta.trim() !== "" ? fromMeta : hints?.justification;
  return text?.trim() ? text.trim().slice(0, 1000) : undefined;
}

/** How a refused tools/call is answered: a tool error the agent can read, naming the rule. */
function refusalResult(err: CountersignError, decision: PolicyDecision): Record<string, unknown> {
  return {
    content: [{ type: "text", text: `Countersign: ${err.detail ?? err.message}` }],
    isError: true,
    _meta: { "countersign/decision": { code: err.code, ruleId: decision.ruleId, action: decision.effectiveAction } },
  };
}

/** Whether a policy can hold a call (a rule, or the default, that requires approval and is enforced). */
function holdsCalls(policy: ConnectionConfig["policy"]): boolean {
  const p = policy as { shadow?: boolean; defaultAction?: string; rules?: Array<{ action?: string; shadow?: boolean }> } | undefined;
  if (!p || p.shadow) return false;
  return p.defaultAction === "require_approval" || (p.rules ?? []).some((r) => r.action === "require_approval" && !r.shadow);
}

/** The methods the policy governs; the rest (initialize, lists, notifications…) pass. */
const GOVERNED_METHODS = new Set(["tools/call", "resources/read", "prompts/get"]);

interface PendingRequest {
  id: JsonRpcId;
  method: string;
  progressToken?: JsonRpcId | undefined;
  justification?: string | undefined;
  /** The HTTP request that carried it (its response's record carries the same id). */
  requestId?: string | undefined;
  timer: NodeJS.Timeout;
  /** performance.now() when the request reached the gateway, and when it was forwarded. */
  receivedAt: number;
  forwardedAt?: number | undefined;
  /** A task-augmented tools/call the gateway answers with a task (see tasks.ts). */
  taskParams?: { ttl?: number } | undefined;
  /** The gateway's own forward of a task's call: the answer completes the task instead of being delivered. */
  task?: GatewayTask | undefined;
  /** A first-page tasks/list the upstream answers: the gateway's tasks are added to it. */
  mergeTasks?: boolean | undefined;
}

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
  /** Server→client requests awaiting the client's answer (for the method of the answer's record). */
  readonly #serverRequests = new Map<string, string>();
  /** Tool name → fingerprint of the definition this session's caller was shown (tool pinning). */
  readonly #toolHashes = new Map<string, string>();
  #bucket: { tokens: number; at: number; dropped: number };
  /** MCP tasks: offered to this client at initialize; what the upstream runs as tasks itself. */
  #tasksOffered = false;
  #upstreamTasks = { toolsCall: false, list: false, any: false };
  readonly #upstreamTaskTools = new Map<string, string>();
  #taskSeq = 0;

  constructor(init: SessionInit) {
    this.#init = init;
    this.id = init.id;
    this.#connection = init.connection;
    this.frontTransport = init.frontTransport;
    this.#bucket = { tokens: init.notificationsPerSecond * 2, at: Date.now(), dropped: 0 };
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
    if (isRequest) this.#track(msg, c.id!, c.method!, justificationOf(msg, hints), hints?.requestId);
    if (isRequest && this.#tasksOffered && c.method === "tools/call") this.#pending.get(idKey(c.id!))!.taskParams = taskParamsOf(msg.params);
    const requestId = hints?.requestId ?? null;
    let method = c.method ?? null;
    if ((c.kind === "response" || c.kind === "error") && c.id !== undefined) {
      method = this.#serverRequests.get(idKey(c.id)) ?? null;
      this.#serverRequests.delete(idKey(c.id));
    }

    // decide (pure, before anything is written): identity access first, then tool pinning (is
    // this the definition that was pinned), then policy rules.
    const deciding = isRequest && !this.draining;
    const refusal = deciding ? toolCallRefusal(this.connection.access, this.identity, msg) : undefined;
    const pinned = deciding && !refusal && c.method === "tools/call" ? this.#pinVerdict(msg) : undefined;
    const decision =
      deciding && !refusal && pinned?.action !== "block" && GOVERNED_METHODS.has(c.method!)
        ? evaluate(this.connection.policy, {
            connection: this.connection.name,
            method: c.method!,
            params: msg.params,
            identity: { subject: this.identity.subject, groups: this.identity.groups, email: this.identity.email },
            justification: this.#pending.get(idKey(c.id!))?.justification,
          })
        : undefined;

    // record(in), with the decision in the same commit. mask: a secret the caller pasted into a
    // call must not stay in the audit store; the upstream still receives the message as sent.
    try {
      const masked = this.connection.masker?.maskMessage(msg);
      const writes = [this.#record("in", "client", masked?.masked ?? msg, c, method, masked?.changed ? masked.hits : null, requestId)];
      if (refusal) {
        const tool = (msg.params as { name?: unknown } | undefined)?.name;
        writes.push(
          this.#init.recorder.event({
            type: "access_denied",
            reason: "tool_denied",
            sessionId: this.id,
            connection: this.connection.name,
            subject: this.identity.subject,
            detail: { tool: typeof tool === "string" ? tool : null, groups: this.identity.groups, requestId: c.id! },
            requestId,
          }),
        );
      }
      if (pinned) writes.push(this.#recordPinDecision(pinned, c.id!, requestId));
      if (decision) writes.push(this.#recordDecision(decision, msg, c.id!));
      await Promise.all(writes);
    } catch (err) {
      if (!isRequest) throw err;
      return this.#fail(c.id!, err);
    }
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
      const next = decision?.effectiveAction === "require_approval" ? () => this.#hold(msg, c.id!, c.method!, decision) : undefined;
      void this.#hold(msg, c.id!, c.method!, pinDecision, next).catch((err) => this.#fail(c.id!, err));
      return;
    }
    if (isRequest && this.#tasksOffered && c.method!.startsWith("tasks/") && this.#gatewayAnswersTask(msg, c.id!, c.method!)) {
      return this.#taskRequest(msg, c.id!, c.method!);
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
      void this.#hold(msg, c.id!, c.method!, decision).catch((err) => this.#fail(c.id!, err));
      return;
    }
    const forwarding = isRequest ? this.#pending.get(idKey(c.id!)) : undefined;
    // A task-augmented call the upstream cannot run as a task: the gateway runs the task.
    if (forwarding?.taskParams && !this.#upstreamRunsAsTask(msg)) return this.#wrapAsTask(msg, c.id!);
    if (forwarding) forwarding.forwardedAt = performance.now();
    try {
      await this.upstream.send(msg, this.protocolVersion);
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
    const timer = setTimeout(() => {
      // The upstream has taken too long: answer the client, and tell the upstream to stop.
      this.#fail(id, new CountersignError("CS_ERR_UPSTREAM_TIMEOUT", `${method} took longer than ${this.#init.upstreamTimeoutMs} ms`));
      void this.upstream
        .send({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: id, reason: "timed out at the gateway" } }, this.protocolVersion)
        .catch(() => {});
    }, this.#init.upstreamTimeoutMs);
    timer.unref();
    this.#pending.set(idKey(id), { id, method, progressToken, justification, requestId, timer, receivedAt: performance.now() });
    if (progressToken !== undefined) this.#progress.set(idKey(progressToken), id);
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
      method = p.method;
      route = { responseTo: p.id };
      justification = p.justification;
      timing = p;
      if (p.method === "initialize" && c.kind === "response") {
        this.#initialized(msg);
        msg = this.#offerTasks(msg);
      }
      // The caller's tools/list leaves out the tools it may not call.
      if (p.method === "tools/list" && c.kind === "response") msg = filterToolsList(this.connection.access, this.identity, msg).msg;
      // tool pinning: new tools are pinned, changes reported (committed before delivery); with
      // onChange block, a changed tool is left out of what the caller sees.
      if (p.method === "tools/list" && c.kind === "response") ({ msg, pinning } = this.#pinToolsList(msg));
      if (c.kind === "response" && this.#tasksOffered) msg = this.#withGatewayTasks(msg, p);
    } else if (c.kind === "notification") {
      if (!this.#admitNotification()) return;
      if (c.method === "notifications/progress") {
        const token = (msg.params as { progressToken?: JsonRpcId } | undefined)?.progressToken;
        const owner = token === undefined ? undefined : this.#progress.get(idKey(token));
        if (owner !== undefined) route = { relatedTo: owner };
      }
    } else if (c.kind === "request") {
      this.#serverRequests.set(idKey(c.id!), c.method!);
    }

    // mask: the record always holds the fully masked view; a caller exempted by role receives
    // the exempted types unmasked, and that delivery is recorded as evidence with its reason.
    const view = this.#maskForCaller(msg, justification);
    const committed = [this.#record("out", "upstream", view.record, c, method, view.hits, timing?.requestId ?? null)];
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
        if (timing?.task) this.#finishTask(timing.task, c.kind === "error" ? { error: msg.error as Record<string, unknown> } : { result: msg.result as Record<string, unknown> });
        else this.#deliver(view.deliver, route);
        if (timing) this.#observe(timing, c.kind === "error" ? "error" : "ok");
      },
      (err) => {
        // Fail closed: the upstream's message is not delivered unrecorded.
        if (timing?.task) this.#finishTask(timing.task, { error: (err instanceof CountersignError ? err : new CountersignError("CS_ERR_AUDIT_UNAVAILABLE", String(err))).toJsonRpcError() });
        else if (route.responseTo !== undefined) this.#deliverError(route.responseTo, err as CountersignError, false);
        else if (c.kind === "request") {
          void this.upstream.send(jsonRpcErrorResponse(c.id!, err as CountersignError), this.protocolVersion).catch(() => {});
        }
      },
    );
  }

  failure(err: CountersignError, requestIds: JsonRpcId[]): void {
    this.#init.log.warn({ session: this.id, code: err.code, detail: err.detail }, "upstream failure");
    if (requestIds.length === 0) {
      const reason = err.code === "CS_ERR_UPSTREAM_RESPONSE_TOO_LARGE" ? "upstream_message_too_large" : "upstream_invalid_json";
      this.#rejected(reason, { code: err.code, detail: err.detail ?? null });
    }
    for (const id of requestIds) this.#fail(id, err);
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
    for (const h of this.#holds.values()) h.abort();
    const pending = [...this.#pending.values()];
    await Promise.all(pending.map((p) => this.#fail(p.id, err)));
    this.ended = true;
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
  async #hold(msg: JsonRpcMessage, id: JsonRpcId, method: string, decision: PolicyDecision, next?: () => Promise<void>): Promise<void> {
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
      rule: { id: decision.ruleId, description: decision.reason },
      approverGroup: need.group,
      approvalsNeeded: need.approvals,
      timeoutMs: need.timeoutMs,
      justification: need.justification,
    });
    // A task-augmented call: answered now with a task, decided in the background. A hold with a
    // later hold chained to it (a changed tool's pin, then a rule) holds as before; the last hold
    // of the chain answers with the task.
    const taskParams = this.#pending.get(idKey(id))?.taskParams;
    if (taskParams && !next) return this.#holdAsTask(msg, id, decision, request, taskParams);

    let decided: ApprovalRequest = request;
    if (request.status === "pending") {
      const abort = new AbortController();
      this.#holds.set(idKey(id), abort);
      const token = this.#pending.get(idKey(id))?.progressToken;
      const waiting = `Waiting for approval by ${need.group} (request ${request.id}, rule ${decision.ruleId ?? "(default)"}; expires ${request.expiresAt.toISOString()})`;
      await this.#notify(id, { method: "notifications/message", params: { level: "notice", logger: "countersign", data: waiting } });
      let step = 0;
      const ticker =
        token === undefined
          ? undefined
          : setInterval(() => void this.#notify(id, { method: "notifications/progress", params: { progressToken: token, progress: ++step, message: waiting } }), Math.min(5000, Math.max(250, approvals.holdForMs / 4)));
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
      if (!(await approvals.service.claimForward(decided.id))) {
        return refuse("CS_ERR_APPROVAL_DENIED", `request ${decided.id} was approved and its call already forwarded once; an approval covers one call`);
      }
      const p = this.#pending.get(idKey(id));
      if (!p || this.ended) return;
      if (next) return next(); // a later layer's hold decides next
      p.forwardedAt = performance.now();
      try {
        await this.upstream.send(msg, this.protocolVersion);
      } catch (err) {
        return this.#fail(id, err);
      }
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

  // ── MCP tasks (design in tasks.ts) ──────────────────────────────────────────────────────────

  get #tasks(): TaskRegistry {
    return this.#init.approvals!.tasks!;
  }

  /** At initialize: offers tasks when this connection can hold calls (and remembers the upstream's own). */
  #offerTasks(msg: JsonRpcMessage): JsonRpcMessage {
    const result = (msg.result ?? {}) as Record<string, unknown>;
    this.#upstreamTasks = upstreamTaskSupport(result);
    const version = typeof result.protocolVersion === "string" ? result.protocolVersion : "";
    if (!this.#init.approvals?.tasks || !holdsCalls(this.connection.policy) || version < "2025-11-25") return msg;
    this.#tasksOffered = true;
    return { ...msg, result: advertiseTasks(result) };
  }

  /** Responses the gateway adds to when it offers tasks: tools/list (task support) and tasks/list (its tasks). */
  #withGatewayTasks(msg: JsonRpcMessage, p: PendingRequest): JsonRpcMessage {
    const result = msg.result as Record<string, unknown> | undefined;
    if (!result || typeof result !== "object") return msg;
    if (p.method === "tools/list") return { ...msg, result: markTaskSupport(result, this.#upstreamTasks.toolsCall, this.#upstreamTaskTools) };
    if (p.method === "tasks/list" && p.mergeTasks) {
      const mine = this.#tasks.list(taskOwner(this.identity, this.id), this.connection.name).map(taskWire);
      return { ...msg, result: { ...result, tasks: [...mine, ...(Array.isArray(result.tasks) ? result.tasks : [])] } };
    }
    return msg;
  }

  /** Whether the upstream runs this tools/call as a task itself (then the call passes through untouched). */
  #upstreamRunsAsTask(msg: JsonRpcMessage): boolean {
    const name = (msg.params as { name?: unknown } | undefined)?.name;
    return this.#upstreamTasks.toolsCall && typeof name === "string" && this.#upstreamTaskTools.has(name);
  }

  /** Whether a tasks/* request is the gateway's to answer (its task ids, or no upstream tasks at all). */
  #gatewayAnswersTask(msg: JsonRpcMessage, id: JsonRpcId, method: string): boolean {
    const params = (msg.params ?? {}) as { taskId?: unknown; cursor?: unknown };
    if (method === "tasks/list") {
      if (!this.#upstreamTasks.list) return true;
      // The upstream lists its own tasks: the gateway's are added to its first page.
      if (params.cursor === undefined) this.#pending.get(idKey(id))!.mergeTasks = true;
      return false;
    }
    if (method !== "tasks/get" && method !== "tasks/result" && method !== "tasks/cancel") return false;
    return isGatewayTaskId(params.taskId) || !this.#upstreamTasks.any;
  }

  /** tasks/get, tasks/result, tasks/cancel and tasks/list for the gateway's tasks, scoped to the caller. */
  async #taskRequest(msg: JsonRpcMessage, id: JsonRpcId, method: string): Promise<void> {
    const params = (msg.params ?? {}) as { taskId?: unknown; cursor?: unknown };
    const owner = taskOwner(this.identity, this.id);
    if (method === "tasks/list") {
      if (params.cursor !== undefined) return this.#fail(id, new CountersignError("CS_ERR_TASK_NOT_FOUND", "the gateway lists all your tasks on one page; this cursor is not one of its"));
      return this.#answer(id, method, { tasks: this.#tasks.list(owner, this.connection.name).map(taskWire) });
    }
    const task = this.#tasks.find(params.taskId, owner, this.connection.name);
    if (!task) return this.#fail(id, new CountersignError("CS_ERR_TASK_NOT_FOUND", `task ${typeof params.taskId === "string" ? params.taskId.slice(0, 100) : "(no taskId)"}`));
    if (method === "tasks/get") return this.#answer(id, method, taskWire(task));
    if (method === "tasks/cancel") {
      if (isTerminal(task.status)) return this.#fail(id, new CountersignError("CS_ERR_TASK_FINISHED", `task ${task.taskId} is ${task.status}`));
      const stop = task.stop;
      const text = task.approvalId && !task.forwarded
        ? `Countersign: the task was cancelled before a decision; nothing was forwarded. Approval request ${task.approvalId} stays open: the identical call picks up its decision.`
        : "Countersign: the task was cancelled by the caller.";
      this.#endTask(task, "cancelled", "cancelled by the caller", { result: { content: [{ type: "text", text }], isError: true } });
      stop?.("cancelled");
      return this.#answer(id, method, taskWire(task));
    }
    // tasks/result waits for the outcome as long as the caller does (no upstream timeout applies).
    const p = this.#pending.get(idKey(id));
    if (p) clearTimeout(p.timer);
    await this.#tasks.whenTerminal(task);
    if (!this.#pending.has(idKey(id)) || this.ended) return;
    const outcome = task.outcome ?? { error: new CountersignError("CS_ERR_INTERNAL", `task ${task.taskId} ended without an outcome`).toJsonRpcError() };
    const response = (
      "error" in outcome
        ? { jsonrpc: "2.0", id, error: outcome.error }
        : { jsonrpc: "2.0", id, result: { ...outcome.result, _meta: { ...((outcome.result._meta as object | undefined) ?? {}), [RELATED_TASK]: { taskId: task.taskId } } } }
    ) as JsonRpcMessage;
    // The upstream's answer is masked for this caller exactly like a direct response; the gateway's
    // own refusal goes as a plain call's refusal does. Recorded before delivery either way.
    const view = task.fromUpstream ? this.#maskForCaller(response, task.justification) : { record: response, deliver: response, hits: null, exempted: undefined };
    const pending = this.#untrack(id);
    const writes = [this.#record("out", "gateway", view.record, { kind: "error" in outcome ? "error" : "response", id }, method, view.hits, pending?.requestId ?? null)];
    if (view.exempted) {
      writes.push(
        this.#init.recorder.event({
          type: "unmasked_delivery",
          reason: "role_exemption",
          sessionId: this.id,
          connection: this.connection.name,
          subject: this.identity.subject,
          detail: { types: view.exempted, groups: this.identity.groups, justification: task.justification ?? null, method, requestId: id, taskId: task.taskId },
          requestId: pending?.requestId ?? null,
        }),
      );
    }
    try {
      await Promise.all(writes);
    } catch (err) {
      return this.#deliverError(id, err instanceof CountersignError ? err : new CountersignError("CS_ERR_AUDIT_UNAVAILABLE", String(err)), false);
    }
    if (pending) this.#observe(pending, "ok");
    this.#deliver(view.deliver, { responseTo: id });
  }

  /** A held, task-augmented call: a task now; the decision, and the forward, in the background. */
  async #holdAsTask(msg: JsonRpcMessage, id: JsonRpcId, decision: PolicyDecision, request: ApprovalRequest, taskParams: { ttl?: number }): Promise<void> {
    const p = this.#pending.get(idKey(id));
    if (!p) return;
    const group = decision.approval!.group;
    const waiting = `waiting for approval by ${group}, request ${request.id}, expires ${request.expiresAt.toISOString()}`;
    const task = this.#tasks.create({
      owner: taskOwner(this.identity, this.id),
      connection: this.connection.name,
      sessionId: this.id,
      ttlMs: chooseTtl(taskParams.ttl, request.expiresAt.getTime() - Date.now() + TASK_TTL.afterExpiryMs),
      pollIntervalMs: 2000,
      justification: p.justification,
      statusMessage: request.status === "pending" ? waiting : `request ${request.id} is ${request.status}`,
    });
    task.approvalId = request.id;
    await this.#answerCreated(id, task, `Held by Countersign: ${waiting}. The result follows when it is approved.`);
    void this.#awaitApproval(msg, task, request, decision).catch((err) =>
      this.#endTask(task, "failed", "the gateway failed while waiting for the decision", { error: new CountersignError("CS_ERR_INTERNAL", String(err)).toJsonRpcError() }),
    );
  }

  async #awaitApproval(msg: JsonRpcMessage, task: GatewayTask, request: ApprovalRequest, decision: PolicyDecision): Promise<void> {
    const approvals = this.#init.approvals!;
    const abort = new AbortController();
    const key = `task:${task.taskId}`;
    this.#holds.set(key, abort);
    task.stop = () => abort.abort();
    let decided = request;
    try {
      // Until decided: the sweep expires the request at expiresAt, which releases this wait.
      while (decided.status === "pending" && !abort.signal.aborted && !this.ended) {
        const left = Math.min(2 ** 31 - 1, Math.max(1000, decided.expiresAt.getTime() - Date.now() + 5000));
        decided = await approvals.service.waitForDecision(decided.id, abort.signal, left);
      }
    } finally {
      this.#holds.delete(key);
    }
    if (isTerminal(task.status)) return; // cancelled or expired meanwhile: the approval stays for an identical call
    const fail = (code: "CS_ERR_APPROVAL_DENIED" | "CS_ERR_APPROVAL_PENDING", detail: string) => {
      const result = refusalResult(new CountersignError(code, detail), decision);
      this.#endTask(task, "failed", detail, { result });
    };
    const untouched = `approval pending, request ${decided.id}, expires ${decided.expiresAt.toISOString()}; the identical call after a decision picks it up`;
    if (decided.status === "pending") return fail("CS_ERR_APPROVAL_PENDING", `the session ended before a decision; ${untouched}`);
    if (decided.status === "denied" || decided.status === "expired") {
      const by = decided.status === "expired" ? "nobody decided before it expired" : `denied by ${decided.decidedBy ?? "an approver"}`;
      return fail("CS_ERR_APPROVAL_DENIED", `request ${decided.id}: ${by}${decided.decisionReason ? `: ${decided.decisionReason}` : ""}`);
    }
    // Approved. A session that ended cannot forward: the approval stays unclaimed for the identical call.
    if (this.ended) return fail("CS_ERR_APPROVAL_PENDING", `approved, but the session ended before the call was forwarded; request ${decided.id} stays unclaimed: the identical call picks it up`);
    if (!(await approvals.service.claimForward(decided.id))) {
      return fail("CS_ERR_APPROVAL_DENIED", `request ${decided.id} was approved and its call already forwarded once; an approval covers one call`);
    }
    if (isTerminal(task.status)) return;
    this.#tasks.update(task, "working", `approved by ${decided.decidedBy ?? "an approver"}; forwarded to the upstream`);
    void this.#taskStatusNotice(task);
    await this.#forwardForTask(msg, task);
  }

  /** A refused task-augmented call: a task already failed with the refusal. */
  async #refuseAsTask(p: PendingRequest, result: Record<string, unknown>): Promise<void> {
    let task: GatewayTask;
    try {
      task = this.#tasks.create({ owner: taskOwner(this.identity, this.id), connection: this.connection.name, sessionId: this.id, ttlMs: chooseTtl(p.taskParams?.ttl), pollIntervalMs: 1000, justification: p.justification });
    } catch (err) {
      return this.#deliverError(p.id, err as CountersignError, true, p.requestId);
    }
    this.#tasks.update(task, "failed", messageOfOutcome({ result }), { result });
    await this.#answerCreated(p.id, task, undefined, p);
  }

  /** An allowed task-augmented call the upstream cannot run as a task: the gateway runs the task. */
  async #wrapAsTask(msg: JsonRpcMessage, id: JsonRpcId): Promise<void> {
    const p = this.#pending.get(idKey(id));
    if (!p) return;
    let task: GatewayTask;
    try {
      task = this.#tasks.create({ owner: taskOwner(this.identity, this.id), connection: this.connection.name, sessionId: this.id, ttlMs: chooseTtl(p.taskParams?.ttl), pollIntervalMs: 500, justification: p.justification, statusMessage: "forwarded to the upstream" });
    } catch (err) {
      return this.#fail(id, err);
    }
    await this.#answerCreated(id, task, undefined);
    await this.#forwardForTask(msg, task);
  }

  /** Sends a task's call upstream, without `task`, under a gateway request id; recorded first. */
  async #forwardForTask(msg: JsonRpcMessage, task: GatewayTask): Promise<void> {
    if (this.ended || isTerminal(task.status)) return;
    const gid = `countersign-task-${++this.#taskSeq}`;
    const { task: _omitted, ...params } = (msg.params ?? {}) as Record<string, unknown>;
    const forward = { ...msg, id: gid, params } as JsonRpcMessage;
    this.#track(forward, gid, "tools/call", task.justification);
    const p = this.#pending.get(idKey(gid))!;
    p.task = task;
    task.forwarded = true;
    task.stop = () => {
      if (!this.#untrack(gid)) return;
      void this.upstream.send({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: gid, reason: "the task was cancelled" } }, this.protocolVersion).catch(() => {});
    };
    try {
      const masked = this.connection.masker?.maskMessage(forward);
      await this.#record("in", "gateway", masked?.masked ?? forward, { kind: "request", id: gid, method: "tools/call" }, "tools/call", masked?.changed ? masked.hits : null);
      if (!this.#pending.has(idKey(gid))) return; // cancelled meanwhile
      p.forwardedAt = performance.now();
      await this.upstream.send(forward, this.protocolVersion);
    } catch (err) {
      return this.#fail(gid, err);
    }
  }

  /** The upstream answered a task's call (or it failed): the task ends with that outcome. */
  #finishTask(task: GatewayTask, outcome: TaskOutcome): void {
    // The status message is read by tasks/get and tasks/list: taken from the fully masked outcome.
    const masked = this.connection.masker?.maskMessage(outcome).masked ?? outcome;
    if (!isTerminal(task.status)) task.fromUpstream = true;
    this.#endTask(task, statusOfOutcome(outcome), messageOfOutcome(masked), outcome);
  }

  #endTask(task: GatewayTask, status: TaskStatus, message: string | undefined, outcome: TaskOutcome): void {
    if (this.#tasks.update(task, status, message, outcome)) void this.#taskStatusNotice(task);
  }

  /** notifications/tasks/status to the task's session, recorded before delivery (optional in the protocol). */
  async #taskStatusNotice(task: GatewayTask): Promise<void> {
    if (this.ended || task.sessionId !== this.id) return;
    const notice = { jsonrpc: "2.0", method: "notifications/tasks/status", params: taskWire(task) } as JsonRpcMessage;
    try {
      await this.#record("out", "gateway", notice, { kind: "notification", method: "notifications/tasks/status" }, "notifications/tasks/status");
    } catch {
      return;
    }
    this.#deliver(notice, {});
  }

  /** Answers a task-augmented tools/call with its task (CreateTaskResult). */
  async #answerCreated(id: JsonRpcId, task: GatewayTask, immediate: string | undefined, untracked?: PendingRequest): Promise<void> {
    const result: Record<string, unknown> = { task: taskWire(task) };
    if (immediate) result._meta = { [IMMEDIATE_RESPONSE]: immediate };
    await this.#answer(id, "tools/call", result, untracked);
  }

  /** A gateway answer to a client request: recorded, then delivered; unrecorded, the caller gets the audit error instead. */
  async #answer(id: JsonRpcId, method: string, result: Record<string, unknown>, untracked?: PendingRequest): Promise<void> {
    const p = untracked ?? this.#untrack(id);
    if (!p) return;
    if (!untracked) this.#observe(p, "ok");
    const response = { jsonrpc: "2.0", id, result } as JsonRpcMessage;
    try {
      await this.#record("out", "gateway", response, { kind: "response", id }, method, null, p.requestId ?? null);
    } catch (err) {
      return this.#deliverError(id, err instanceof CountersignError ? err : new CountersignError("CS_ERR_AUDIT_UNAVAILABLE", String(err)), false);
    }
    this.#deliver(response, { responseTo: id });
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
  #recordPinDecision(v: PinVerdict, id: JsonRpcId, requestId: string | null): Promise<void> {
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
  #recordDecision(d: PolicyDecision, msg: JsonRpcMessage, requestId: JsonRpcId): Promise<void> {
    const reason = d.shadow ? (d.action === "block" ? "shadow_block" : d.action === "require_approval" ? "shadow_require_approval" : "allow") : d.effectiveAction;
    const params = msg.params as { name?: unknown; uri?: unknown } | undefined;
    return this.#init.recorder.event({
      type: "policy_decision",
      reason,
      sessionId: this.id,
      connection: this.connection.name,
      subject: this.identity.subject,
      requestId: this.#pending.get(idKey(requestId))?.requestId ?? null,
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
    if (p.taskParams) return this.#refuseAsTask(p, refusalResult(err, decision));
    const response = { jsonrpc: "2.0", id, result: refusalResult(err, decision) } as JsonRpcMessage;
    await this.#record("out", "gateway", response, { kind: "response", id }, method, null, p.requestId ?? null).catch(() => {});
    this.#deliver(response, { responseTo: id });
  }

  /** The record's view (fully masked) and the caller's view (with the caller's exemptions). */
  #maskForCaller(msg: JsonRpcMessage, justification: string | undefined) {
    const masker = this.connection.masker;
    if (!masker) return { record: msg, deliver: msg, hits: null, exempted: undefined };
    const full = masker.maskMessage(msg);
    const hits = full.changed ? full.hits : null;
    const exempt = new Set<string>();
    for (const e of this.connection.masking.exemptions) {
      if (!e.groups.some((g) => this.identity.groups.includes(g))) continue;
      if (e.justificationRequired && !justification) continue;
      for (const t of e.types) exempt.add(t);
    }
    if (!full.changed || exempt.size === 0) return { record: full.masked, deliver: full.masked, hits, exempted: undefined };
    const partial = masker.maskMessage(msg, { exempt });
    const exempted = Object.keys(partial.exempted).length > 0 ? partial.exempted : undefined;
    return { record: full.masked, deliver: partial.masked, hits, exempted };
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
    this.#observe(p, p.forwardedAt === undefined ? "refused" : "error");
    const e = err instanceof CountersignError ? err : new CountersignError("CS_ERR_INTERNAL", String(err));
    // The gateway's forward of a task's call: the error is the task's outcome.
    if (p.task) return this.#finishTask(p.task, { error: e.toJsonRpcError() });
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

  #rejected(reason: "upstream_invalid_json" | "unknown_response_id" | "upstream_flood" | "upstream_message_too_large", detail: Record<string, unknown>): void {
    this.#init.recorder.eventBestEffort({ type: "message_rejected", reason, sessionId: this.id, connection: this.connection.name, detail });
  }
}
