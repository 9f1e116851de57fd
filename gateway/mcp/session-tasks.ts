// MCP tasks within one session (the design is at the top of tasks.ts): offering them at
// initialize, answering a held or wrapped tools/call with a task, the wait for the approval and
// the forward in the background, and the tasks/* requests of the caller. The session lends this
// its steps (record, deliver, track, mask) through TaskHost, so the data path's invariants hold
// for task traffic too: nothing is forwarded or delivered before its record is committed.
import type { ApprovalService } from "../approvals/service.js";
import type { ApprovalRequest } from "../approvals/types.js";
import type { EventRecord } from "../audit/recorder.js";
import type { Identity } from "../auth/identity.js";
import type { ConnectionConfig } from "../config/load.js";
import { CountersignError } from "../errors.js";
import type { PolicyDecision } from "../policy/engine.js";
import type { Classified, JsonRpcId, JsonRpcMessage } from "./jsonrpc.js";
import { refusalResult } from "./refusal.js";
import type { CallerView, ForwardClaims, PendingRequest } from "../pipeline/exchange.js";
import type { IssuedView } from "../masking/restore/index.js";
import {
  advertiseTasks, chooseTtl, IMMEDIATE_RESPONSE, isGatewayTaskId, isTerminal, markTaskSupport, messageOfOutcome, RELATED_TASK, statusOfOutcome,
  TASK_TTL, taskOwner, taskWire, upstreamTaskSupport, type GatewayTask, type TaskOutcome, type TaskRegistry, type TaskStatus,
} from "./tasks.js";

/** What the session lends its tasks: its identity and configuration, and the steps of its data path. */
export interface TaskHost {
  readonly sessionId: string;
  readonly identity: Identity;
  readonly connection: ConnectionConfig;
  readonly ended: boolean;
  readonly registry: TaskRegistry;
  readonly approvals: ApprovalService;
  /** Calls waiting on a decision, aborted when the session ends. */
  readonly holds: Map<string, AbortController>;
  pending(id: JsonRpcId): PendingRequest | undefined;
  isPending(id: JsonRpcId): boolean;
  track(msg: JsonRpcMessage, id: JsonRpcId, method: string, justification: string | undefined): void;
  /** The request goes upstream now: its upstream timeout starts. */
  forwarding(p: PendingRequest): void;
  untrack(id: JsonRpcId): PendingRequest | undefined;
  record(direction: "in" | "out", origin: "client" | "upstream" | "gateway", msg: JsonRpcMessage, c: Classified, method: string | null, maskHits?: Record<string, number> | null, requestId?: string | null): Promise<void>;
  recordEvent(event: EventRecord): Promise<void>;
  deliver(msg: JsonRpcMessage, route: { responseTo?: JsonRpcId | undefined; relatedTo?: JsonRpcId | undefined }): void;
  deliverError(id: JsonRpcId, err: CountersignError, record: boolean, requestId?: string | undefined): Promise<void>;
  fail(id: JsonRpcId, err: unknown): Promise<void>;
  observe(p: PendingRequest, outcome: "ok" | "error" | "refused"): void;
  maskForCaller(msg: JsonRpcMessage, justification: string | undefined): CallerView & IssuedView;
  /** The mask stage's pseudonyms remembered for the restore stage: delivered only once this resolves. */
  rememberIssued(view: IssuedView): Promise<void>;
  sendUpstream(msg: JsonRpcMessage): Promise<void>;
}

/** Whether a policy can hold a call (a rule, or the default, that requires approval and is enforced). */
function holdsCalls(policy: ConnectionConfig["policy"]): boolean {
  const p = policy as { shadow?: boolean; defaultAction?: string; rules?: Array<{ action?: string; shadow?: boolean }> } | undefined;
  if (!p || p.shadow) return false;
  return p.defaultAction === "require_approval" || (p.rules ?? []).some((r) => r.action === "require_approval" && !r.shadow);
}

export class SessionTasks {
  /** Offered to this client at initialize (protocol 2025-11-25 or later, and calls can be held). */
  offered = false;
  readonly #host: TaskHost;
  /** What the upstream runs as tasks itself. */
  #upstream = { toolsCall: false, list: false, any: false };
  readonly #upstreamTools = new Map<string, string>();
  #seq = 0;

  constructor(host: TaskHost) {
    this.#host = host;
  }

  /** At initialize: offers tasks when this connection can hold calls (and remembers the upstream's own). */
  offer(msg: JsonRpcMessage): JsonRpcMessage {
    const result = (msg.result ?? {}) as Record<string, unknown>;
    this.#upstream = upstreamTaskSupport(result);
    const version = typeof result.protocolVersion === "string" ? result.protocolVersion : "";
    if (!holdsCalls(this.#host.connection.policy) || version < "2025-11-25") return msg;
    this.offered = true;
    return { ...msg, result: advertiseTasks(result) };
  }

  /** Responses the gateway adds to when it offers tasks: tools/list (task support) and tasks/list (its tasks). */
  decorateResponse(msg: JsonRpcMessage, p: PendingRequest): JsonRpcMessage {
    const result = msg.result as Record<string, unknown> | undefined;
    if (!result || typeof result !== "object") return msg;
    if (p.method === "tools/list") return { ...msg, result: markTaskSupport(result, this.#upstream.toolsCall, this.#upstreamTools) };
    if (p.method === "tasks/list" && p.mergeTasks) {
      const mine = this.#host.registry.list(taskOwner(this.#host.identity, this.#host.sessionId), this.#host.connection.name).map(taskWire);
      return { ...msg, result: { ...result, tasks: [...mine, ...(Array.isArray(result.tasks) ? result.tasks : [])] } };
    }
    return msg;
  }

  /** Whether the upstream runs this tools/call as a task itself (then the call passes through untouched). */
  upstreamRunsAsTask(msg: JsonRpcMessage): boolean {
    const name = (msg.params as { name?: unknown } | undefined)?.name;
    return this.#upstream.toolsCall && typeof name === "string" && this.#upstreamTools.has(name);
  }

  /** Whether a tasks/* request is the gateway's to answer (its task ids, or no upstream tasks at all). */
  answersRequest(msg: JsonRpcMessage, id: JsonRpcId, method: string): boolean {
    const params = (msg.params ?? {}) as { taskId?: unknown; cursor?: unknown };
    if (method === "tasks/list") {
      if (!this.#upstream.list) return true;
      // The upstream lists its own tasks: the gateway's are added to its first page.
      if (params.cursor === undefined) this.#host.pending(id)!.mergeTasks = true;
      return false;
    }
    if (method !== "tasks/get" && method !== "tasks/result" && method !== "tasks/cancel") return false;
    return isGatewayTaskId(params.taskId) || !this.#upstream.any;
  }

  /** tasks/get, tasks/result, tasks/cancel and tasks/list for the gateway's tasks, scoped to the caller. */
  async handleRequest(msg: JsonRpcMessage, id: JsonRpcId, method: string): Promise<void> {
    const params = (msg.params ?? {}) as { taskId?: unknown; cursor?: unknown };
    const owner = taskOwner(this.#host.identity, this.#host.sessionId);
    if (method === "tasks/list") {
      if (params.cursor !== undefined) return this.#host.fail(id, new CountersignError("CS_ERR_TASK_NOT_FOUND", "the gateway lists all your tasks on one page; this cursor is not one of its"));
      return this.#answer(id, method, { tasks: this.#host.registry.list(owner, this.#host.connection.name).map(taskWire) });
    }
    const task = this.#host.registry.find(params.taskId, owner, this.#host.connection.name);
    if (!task) return this.#host.fail(id, new CountersignError("CS_ERR_TASK_NOT_FOUND", `task ${typeof params.taskId === "string" ? params.taskId.slice(0, 100) : "(no taskId)"}`));
    if (method === "tasks/get") return this.#answer(id, method, taskWire(task));
    if (method === "tasks/cancel") {
      if (isTerminal(task.status)) return this.#host.fail(id, new CountersignError("CS_ERR_TASK_FINISHED", `task ${task.taskId} is ${task.status}`));
      const stop = task.stop;
      const text = task.approvalId && !task.forwarded
        ? `Countersign: the task was cancelled before a decision; nothing was forwarded. Approval request ${task.approvalId} stays open: the identical call picks up its decision.`
        : "Countersign: the task was cancelled by the caller.";
      this.#end(task, "cancelled", "cancelled by the caller", { result: { content: [{ type: "text", text }], isError: true } });
      stop?.("cancelled");
      return this.#answer(id, method, taskWire(task));
    }
    // tasks/result waits for the outcome as long as the caller does (no upstream timeout applies).
    const p = this.#host.pending(id);
    if (p) clearTimeout(p.timer);
    await this.#host.registry.whenTerminal(task);
    if (!this.#host.isPending(id) || this.#host.ended) return;
    const outcome = task.outcome ?? { error: new CountersignError("CS_ERR_INTERNAL", `task ${task.taskId} ended without an outcome`).toJsonRpcError() };
    const response = (
      "error" in outcome
        ? { jsonrpc: "2.0", id, error: outcome.error }
        : { jsonrpc: "2.0", id, result: { ...outcome.result, _meta: { ...((outcome.result._meta as object | undefined) ?? {}), [RELATED_TASK]: { taskId: task.taskId } } } }
    ) as JsonRpcMessage;
    // The upstream's answer is masked for this caller exactly like a direct response; the gateway's
    // own refusal goes as a plain call's refusal does. Recorded before delivery either way.
    const view = task.fromUpstream ? this.#host.maskForCaller(response, task.justification) : { record: response, deliver: response, hits: null, exempted: undefined };
    const pending = this.#host.untrack(id);
    const writes = [this.#host.record("out", "gateway", view.record, { kind: "error" in outcome ? "error" : "response", id }, method, view.hits, pending?.requestId ?? null)];
    writes.push(this.#host.rememberIssued(view)); // mask stage: remember issued pseudonyms
    if (view.exempted) {
      writes.push(
        this.#host.recordEvent({
          type: "unmasked_delivery",
          reason: "role_exemption",
          sessionId: this.#host.sessionId,
          connection: this.#host.connection.name,
          subject: this.#host.identity.subject,
          detail: { types: view.exempted, groups: this.#host.identity.groups, justification: task.justification ?? null, method, requestId: id, taskId: task.taskId },
          requestId: pending?.requestId ?? null,
        }),
      );
    }
    try {
      await Promise.all(writes);
    } catch (err) {
      return this.#host.deliverError(id, err instanceof CountersignError ? err : new CountersignError("CS_ERR_AUDIT_UNAVAILABLE", String(err)), false);
    }
    if (pending) this.#host.observe(pending, "ok");
    this.#host.deliver(view.deliver, { responseTo: id });
  }

  /** A held, task-augmented call: a task now; the decision, and the forward, in the background. */
  async holdAsTask(msg: JsonRpcMessage, id: JsonRpcId, decision: PolicyDecision, request: ApprovalRequest, taskParams: { ttl?: number }, claims: ForwardClaims): Promise<void> {
    const p = this.#host.pending(id);
    if (!p) return;
    const group = decision.approval!.group;
    const waiting = `waiting for approval by ${group}, request ${request.id}, expires ${request.expiresAt.toISOString()}`;
    const task = this.#host.registry.create({
      owner: taskOwner(this.#host.identity, this.#host.sessionId),
      connection: this.#host.connection.name,
      sessionId: this.#host.sessionId,
      ttlMs: chooseTtl(taskParams.ttl, request.expiresAt.getTime() - Date.now() + TASK_TTL.afterExpiryMs),
      pollIntervalMs: 2000,
      justification: p.justification,
      statusMessage: request.status === "pending" ? waiting : `request ${request.id} is ${request.status}`,
    });
    task.approvalId = request.id;
    await this.#answerCreated(id, task, `Held by Countersign: ${waiting}. The result follows when it is approved.`);
    // The task settles the chain's claims from here on: confirmed once sent, released otherwise.
    claims.settled = true;
    const claimed = [...claims.claimed];
    const service = this.#host.approvals;
    void this.#awaitApproval(msg, task, request, decision, claimed)
      .then((sent) => {
        if (sent) return Promise.all(claimed.map((a) => service.confirmForward(a)));
        return Promise.all(claimed.map((a) => service.releaseForward(a)));
      }, (err: unknown) => {
        void Promise.all(claimed.map((a) => service.releaseForward(a))).catch(() => {});
        throw err;
      })
      .catch((err) =>
      this.#end(task, "failed", "the gateway failed while waiting for the decision", { error: new CountersignError("CS_ERR_INTERNAL", String(err)).toJsonRpcError() }),
    );
  }

  /** Resolves true when the call was sent upstream (its claims, pushed onto `claimed`, are then due for confirmation). */
  async #awaitApproval(msg: JsonRpcMessage, task: GatewayTask, request: ApprovalRequest, decision: PolicyDecision, claimed: string[]): Promise<boolean> {
    const service = this.#host.approvals;
    const abort = new AbortController();
    const key = `task:${task.taskId}`;
    this.#host.holds.set(key, abort);
    task.stop = () => abort.abort();
    let decided = request;
    try {
      // Until decided: the sweep expires the request at expiresAt, which releases this wait.
      while (decided.status === "pending" && !abort.signal.aborted && !this.#host.ended) {
        const left = Math.min(2 ** 31 - 1, Math.max(1000, decided.expiresAt.getTime() - Date.now() + 5000));
        decided = await service.waitForDecision(decided.id, abort.signal, left);
      }
    } finally {
      this.#host.holds.delete(key);
    }
    if (isTerminal(task.status)) return false; // cancelled or expired meanwhile: the approval stays for an identical call
    const fail = (code: "CS_ERR_APPROVAL_DENIED" | "CS_ERR_APPROVAL_PENDING", detail: string): false => {
      const result = refusalResult(new CountersignError(code, detail), decision);
      this.#end(task, "failed", detail, { result });
      return false;
    };
    const untouched = `approval pending, request ${decided.id}, expires ${decided.expiresAt.toISOString()}; the identical call after a decision picks it up`;
    if (decided.status === "pending") return fail("CS_ERR_APPROVAL_PENDING", `the session ended before a decision; ${untouched}`);
    if (decided.status === "denied" || decided.status === "expired") {
      const by = decided.status === "expired" ? "nobody decided before it expired" : `denied by ${decided.decidedBy ?? "an approver"}`;
      return fail("CS_ERR_APPROVAL_DENIED", `request ${decided.id}: ${by}${decided.decisionReason ? `: ${decided.decisionReason}` : ""}`);
    }
    // Approved. A session that ended cannot forward: the approval stays unclaimed for the identical call.
    if (this.#host.ended) return fail("CS_ERR_APPROVAL_PENDING", `approved, but the session ended before the call was forwarded; request ${decided.id} stays unclaimed: the identical call picks it up`);
    // Two-phase, as for a plain hold: claimed, sent, and only then recorded as forwarded (by holdAsTask).
    if (!(await service.claimForward(decided.id))) {
      return fail("CS_ERR_APPROVAL_DENIED", `request ${decided.id} was approved and its call already forwarded once; an approval covers one call`);
    }
    claimed.push(decided.id);
    if (isTerminal(task.status) || this.#host.ended) return false;
    this.#host.registry.update(task, "working", `approved by ${decided.decidedBy ?? "an approver"}; forwarded to the upstream`);
    void this.#statusNotice(task);
    return this.#forward(msg, task);
  }

  /** A refused task-augmented call: a task already failed with the refusal. */
  async refuse(p: PendingRequest, result: Record<string, unknown>): Promise<void> {
    let task: GatewayTask;
    try {
      task = this.#host.registry.create({ owner: taskOwner(this.#host.identity, this.#host.sessionId), connection: this.#host.connection.name, sessionId: this.#host.sessionId, ttlMs: chooseTtl(p.taskParams?.ttl), pollIntervalMs: 1000, justification: p.justification });
    } catch (err) {
      return this.#host.deliverError(p.id, err as CountersignError, true, p.requestId);
    }
    this.#host.registry.update(task, "failed", messageOfOutcome({ result }), { result });
    await this.#answerCreated(p.id, task, undefined, p);
  }

  /** An allowed task-augmented call the upstream cannot run as a task: the gateway runs the task. */
  async wrap(msg: JsonRpcMessage, id: JsonRpcId): Promise<void> {
    const p = this.#host.pending(id);
    if (!p) return;
    let task: GatewayTask;
    try {
      task = this.#host.registry.create({ owner: taskOwner(this.#host.identity, this.#host.sessionId), connection: this.#host.connection.name, sessionId: this.#host.sessionId, ttlMs: chooseTtl(p.taskParams?.ttl), pollIntervalMs: 500, justification: p.justification, statusMessage: "forwarded to the upstream" });
    } catch (err) {
      return this.#host.fail(id, err);
    }
    await this.#answerCreated(id, task, undefined);
    await this.#forward(msg, task);
  }

  /** Sends a task's call upstream, without `task`, under a gateway request id; recorded first. */
  async #forward(msg: JsonRpcMessage, task: GatewayTask): Promise<boolean> {
    if (this.#host.ended || isTerminal(task.status)) return false;
    const gid = `countersign-task-${++this.#seq}`;
    const { task: _omitted, ...params } = (msg.params ?? {}) as Record<string, unknown>;
    const forward = { ...msg, id: gid, params } as JsonRpcMessage;
    this.#host.track(forward, gid, "tools/call", task.justification);
    const p = this.#host.pending(gid)!;
    p.lifecycle.move("decided"); // decided with the task's own call, before the task was created
    p.task = task;
    task.forwarded = true;
    task.stop = () => {
      if (!this.#host.untrack(gid)) return;
      void this.#host.sendUpstream({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: gid, reason: "the task was cancelled" } }).catch(() => {});
    };
    try {
      const masked = this.#host.connection.masker?.maskMessage(forward);
      await this.#host.record("in", "gateway", masked?.masked ?? forward, { kind: "request", id: gid, method: "tools/call" }, "tools/call", masked?.changed ? masked.hits : null);
      if (!this.#host.isPending(gid)) return false; // cancelled meanwhile
      this.#host.forwarding(p);
      await this.#host.sendUpstream(forward);
      p.lifecycle.move("forwarded");
      return true;
    } catch (err) {
      await this.#host.fail(gid, err);
      return false;
    }
  }

  /** The upstream answered a task's call (or it failed): the task ends with that outcome. */
  finish(task: GatewayTask, outcome: TaskOutcome): void {
    // The status message is read by tasks/get and tasks/list: taken from the fully masked outcome.
    const masked = this.#host.connection.masker?.maskMessage(outcome).masked ?? outcome;
    if (!isTerminal(task.status)) task.fromUpstream = true;
    this.#end(task, statusOfOutcome(outcome), messageOfOutcome(masked), outcome);
  }

  #end(task: GatewayTask, status: TaskStatus, message: string | undefined, outcome: TaskOutcome): void {
    if (this.#host.registry.update(task, status, message, outcome)) void this.#statusNotice(task);
  }

  /** notifications/tasks/status to the task's session, recorded before delivery (optional in the protocol). */
  async #statusNotice(task: GatewayTask): Promise<void> {
    if (this.#host.ended || task.sessionId !== this.#host.sessionId) return;
    const notice = { jsonrpc: "2.0", method: "notifications/tasks/status", params: taskWire(task) } as JsonRpcMessage;
    try {
      await this.#host.record("out", "gateway", notice, { kind: "notification", method: "notifications/tasks/status" }, "notifications/tasks/status");
    } catch {
      return;
    }
    this.#host.deliver(notice, {});
  }

  /** Answers a task-augmented tools/call with its task (CreateTaskResult). */
  async #answerCreated(id: JsonRpcId, task: GatewayTask, immediate: string | undefined, untracked?: PendingRequest): Promise<void> {
    const result: Record<string, unknown> = { task: taskWire(task) };
    if (immediate) result._meta = { [IMMEDIATE_RESPONSE]: immediate };
    await this.#answer(id, "tools/call", result, untracked);
  }

  /** A gateway answer to a client request: recorded, then delivered; unrecorded, the caller gets the audit error instead. */
  async #answer(id: JsonRpcId, method: string, result: Record<string, unknown>, untracked?: PendingRequest): Promise<void> {
    const p = untracked ?? this.#host.untrack(id);
    if (!p) return;
    if (!untracked) this.#host.observe(p, "ok");
    const response = { jsonrpc: "2.0", id, result } as JsonRpcMessage;
    try {
      await this.#host.record("out", "gateway", response, { kind: "response", id }, method, null, p.requestId ?? null);
    } catch (err) {
      return this.#host.deliverError(id, err instanceof CountersignError ? err : new CountersignError("CS_ERR_AUDIT_UNAVAILABLE", String(err)), false);
    }
    this.#host.deliver(response, { responseTo: id });
  }
}
