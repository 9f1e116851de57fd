// MCP tasks as another way of answering a call (the design is at the top of mcp/tasks.ts): offered
// at initialize, a held or wrapped tools/call answered with a task, the decision and the forward in
// the background, and the caller's tasks/* requests. The stages hand a call over through the
// TaskAnswering interface (pipeline/context.ts); this module uses the same stages back, so the data
// path's invariants hold for task traffic too: nothing is forwarded or delivered before its record
// is committed. The hold's decision, claim and words are the hold coordinator's (pipeline/hold.ts).
import type { ApprovalRequest } from "../../approvals/types.js";
import type { ConnectionConfig } from "../../config/load.js";
import { asCountersignError, CountersignError, logUnexpected } from "../../errors.js";
import type { JsonRpcId, JsonRpcMessage } from "../../mcp/jsonrpc.js";
import { refusalResult } from "../../mcp/refusal.js";
import type { PolicyDecision } from "../../policy/engine.js";
import { answer, deliverError, fail } from "../answer.js";
import type { ExchangeContext, TaskAnswering } from "../context.js";
import { deliver } from "../deliver.js";
import type { ForwardClaims, PendingRequest } from "../exchange.js";
import { startForwarding } from "../forward.js";
import { claimForward, verdictOf } from "../hold.js";
import { maskForCaller, maskForRecord, maskingScopeOf, rememberIssuedFor } from "../mask.js";
import { observe } from "../observe.js";
import { recordMessage } from "../record.js";
import {
  advertiseTasks, chooseTtl, IMMEDIATE_RESPONSE, isGatewayTaskId, isTerminal, markTaskSupport, messageOfOutcome, RELATED_TASK, statusOfOutcome,
  TASK_TTL, taskOwner, taskWire, upstreamTaskSupport, type GatewayTask, type TaskOutcome, type TaskRegistry, type TaskStatus,
} from "../../mcp/tasks.js";

/** Whether a policy can hold a call (a rule, or the default, that requires approval and is enforced). */
function holdsCalls(policy: ConnectionConfig["policy"]): boolean {
  const p = policy as { shadow?: boolean; defaultAction?: string; rules?: Array<{ action?: string; shadow?: boolean }> } | undefined;
  if (!p || p.shadow) return false;
  return p.defaultAction === "require_approval" || (p.rules ?? []).some((r) => r.action === "require_approval" && !r.shadow);
}

export class TaskAnswers implements TaskAnswering {
  /** Offered to this client at initialize (protocol 2025-11-25 or later, and calls can be held). */
  offered = false;
  readonly #ctx: ExchangeContext;
  readonly #registry: TaskRegistry;
  /** Tasks belong to a session (or, for a signed-in caller, to the identity): see taskOwner. */
  readonly #sessionId: string;
  /** What the upstream runs as tasks itself. */
  #upstream = { toolsCall: false, list: false, any: false };
  readonly #upstreamTools = new Map<string, string>();
  #seq = 0;

  constructor(ctx: ExchangeContext, registry: TaskRegistry, sessionId: string) {
    this.#ctx = ctx;
    this.#registry = registry;
    this.#sessionId = sessionId;
  }

  /** At initialize: offers tasks when this connection can hold calls (and remembers the upstream's own). */
  offer(msg: JsonRpcMessage): JsonRpcMessage {
    const result = (msg.result ?? {}) as Record<string, unknown>;
    this.#upstream = upstreamTaskSupport(result);
    const version = typeof result.protocolVersion === "string" ? result.protocolVersion : "";
    if (!holdsCalls(this.#ctx.connection.policy) || version < "2025-11-25") return msg;
    this.offered = true;
    return { ...msg, result: advertiseTasks(result) };
  }

  /** Responses the gateway adds to when it offers tasks: tools/list (task support) and tasks/list (its tasks). */
  decorateResponse(msg: JsonRpcMessage, p: PendingRequest): JsonRpcMessage {
    const result = msg.result as Record<string, unknown> | undefined;
    if (!result || typeof result !== "object") return msg;
    if (p.method === "tools/list") return { ...msg, result: markTaskSupport(result, this.#upstream.toolsCall, this.#upstreamTools) };
    if (p.method === "tasks/list" && p.mergeTasks) {
      const mine = this.#registry.list(taskOwner(this.#ctx.identity, this.#sessionId), this.#ctx.connection.name).map(taskWire);
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
      if (params.cursor === undefined) this.#ctx.requests.get(id)!.mergeTasks = true;
      return false;
    }
    if (method !== "tasks/get" && method !== "tasks/result" && method !== "tasks/cancel") return false;
    return isGatewayTaskId(params.taskId) || !this.#upstream.any;
  }

  /** tasks/get, tasks/result, tasks/cancel and tasks/list for the gateway's tasks, scoped to the caller. */
  async handleRequest(msg: JsonRpcMessage, id: JsonRpcId, method: string): Promise<void> {
    const params = (msg.params ?? {}) as { taskId?: unknown; cursor?: unknown };
    const owner = taskOwner(this.#ctx.identity, this.#sessionId);
    if (method === "tasks/list") {
      if (params.cursor !== undefined) return fail(this.#ctx, id, new CountersignError("CS_ERR_TASK_NOT_FOUND", "the gateway lists all your tasks on one page; this cursor is not one of its"));
      return answer(this.#ctx, id, method, { tasks: this.#registry.list(owner, this.#ctx.connection.name).map(taskWire) });
    }
    const task = this.#registry.find(params.taskId, owner, this.#ctx.connection.name);
    if (!task) return fail(this.#ctx, id, new CountersignError("CS_ERR_TASK_NOT_FOUND", `task ${typeof params.taskId === "string" ? params.taskId.slice(0, 100) : "(no taskId)"}`));
    if (method === "tasks/get") return answer(this.#ctx, id, method, taskWire(task));
    if (method === "tasks/cancel") {
      if (isTerminal(task.status)) return fail(this.#ctx, id, new CountersignError("CS_ERR_TASK_FINISHED", `task ${task.taskId} is ${task.status}`));
      const stop = task.stop;
      const text = task.approvalId && !task.forwarded
        ? `Countersign: the task was cancelled before a decision; nothing was forwarded. Approval request ${task.approvalId} stays open: the identical call picks up its decision.`
        : "Countersign: the task was cancelled by the caller.";
      this.#end(task, "cancelled", "cancelled by the caller", { result: { content: [{ type: "text", text }], isError: true } });
      stop?.("cancelled");
      return answer(this.#ctx, id, method, taskWire(task));
    }
    // tasks/result waits for the outcome as long as the caller does (no upstream timeout applies).
    const p = this.#ctx.requests.get(id);
    if (p) clearTimeout(p.timer);
    await this.#registry.whenTerminal(task);
    if (!this.#ctx.requests.has(id) || this.#ctx.ended) return;
    const outcome = task.outcome ?? { error: new CountersignError("CS_ERR_INTERNAL", `task ${task.taskId} ended without an outcome`).toJsonRpcError() };
    const response = (
      "error" in outcome
        ? { jsonrpc: "2.0", id, error: outcome.error }
        : { jsonrpc: "2.0", id, result: { ...outcome.result, _meta: { ...((outcome.result._meta as object | undefined) ?? {}), [RELATED_TASK]: { taskId: task.taskId } } } }
    ) as JsonRpcMessage;
    // The upstream's answer is masked for this caller exactly like a direct response; the gateway's
    // own refusal goes as a plain call's refusal does. Recorded before delivery either way.
    const view = task.fromUpstream ? maskForCaller(this.#ctx, response, task.justification) : { record: response, deliver: response, hits: null, exempted: undefined };
    const pending = this.#ctx.requests.untrack(id);
    const writes = [recordMessage(this.#ctx, "out", "gateway", view.record, { kind: "error" in outcome ? "error" : "response", id }, method, view.hits, pending?.httpRequestId ?? null)];
    writes.push(rememberIssuedFor(this.#ctx, view)); // mask stage: remember issued pseudonyms
    if (view.exempted) {
      writes.push(
        this.#ctx.deps.recorder.event({
          type: "unmasked_delivery",
          reason: "role_exemption",
          sessionId: this.#sessionId,
          connection: this.#ctx.connection.name,
          subject: this.#ctx.identity.subject,
          detail: { types: view.exempted, groups: this.#ctx.identity.groups, justification: task.justification ?? null, method, requestId: id, taskId: task.taskId },
          requestId: pending?.httpRequestId ?? null,
        }),
      );
    }
    try {
      await Promise.all(writes);
    } catch (err) {
      return deliverError(this.#ctx, id, asCountersignError(err, "CS_ERR_AUDIT_UNAVAILABLE"), false);
    }
    if (pending) observe(this.#ctx, pending, "ok");
    deliver(this.#ctx, view.deliver, { responseTo: id });
  }

  /** A held, task-augmented call: a task now; the decision, and the forward, in the background. */
  async holdAsTask(msg: JsonRpcMessage, id: JsonRpcId, decision: PolicyDecision, request: ApprovalRequest, taskParams: { ttl?: number }, claims: ForwardClaims): Promise<void> {
    const p = this.#ctx.requests.get(id);
    if (!p) return;
    const group = decision.approval!.group;
    const waiting = `waiting for approval by ${group}, request ${request.id}, expires ${request.expiresAt.toISOString()}`;
    const task = this.#registry.create({
      owner: taskOwner(this.#ctx.identity, this.#sessionId),
      connection: this.#ctx.connection.name,
      sessionId: this.#sessionId,
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
    const service = this.#ctx.deps.approvals!.service;
    void this.#awaitApproval(msg, task, request, decision, claimed)
      .then((sent) => {
        if (sent) return Promise.all(claimed.map((a) => service.confirmForward(a)));
        return Promise.all(claimed.map((a) => service.releaseForward(a)));
      }, (err: unknown) => {
        void Promise.all(claimed.map((a) => service.releaseForward(a))).catch(() => {});
        throw err;
      })
      .catch((err: unknown) => {
        const e = asCountersignError(err);
        if (e.code === "CS_ERR_INTERNAL") logUnexpected(this.#ctx.deps.log.child({ session: this.#ctx.sessionId, taskId: task.taskId }), e);
        this.#end(task, "failed", "the gateway failed while waiting for the decision", { error: e.toJsonRpcError() });
      });
  }

  /** Resolves true when the call was sent upstream (its claims, pushed onto `claimed`, are then due for confirmation). */
  async #awaitApproval(msg: JsonRpcMessage, task: GatewayTask, request: ApprovalRequest, decision: PolicyDecision, claimed: string[]): Promise<boolean> {
    const service = this.#ctx.deps.approvals!.service;
    const abort = new AbortController();
    const key = `task:${task.taskId}`;
    this.#ctx.requests.holds.set(key, abort);
    task.stop = () => abort.abort();
    let decided = request;
    try {
      // Until decided: the sweep expires the request at expiresAt, which releases this wait.
      while (decided.status === "pending" && !abort.signal.aborted && !this.#ctx.ended) {
        const left = Math.min(2 ** 31 - 1, Math.max(1000, decided.expiresAt.getTime() - Date.now() + 5000));
        decided = await service.waitForDecision(decided.id, abort.signal, left);
      }
    } finally {
      this.#ctx.requests.holds.delete(key);
    }
    if (isTerminal(task.status)) return false; // cancelled or expired meanwhile: the approval stays for an identical call
    const failTask = (code: "CS_ERR_APPROVAL_DENIED" | "CS_ERR_APPROVAL_PENDING", detail: string): false => {
      const result = refusalResult(new CountersignError(code, detail), decision);
      this.#end(task, "failed", detail, { result });
      return false;
    };
    const untouched = `approval pending, request ${decided.id}, expires ${decided.expiresAt.toISOString()}; the identical call after a decision picks it up`;
    if (decided.status === "pending") return failTask("CS_ERR_APPROVAL_PENDING", `the session ended before a decision; ${untouched}`);
    const verdict = verdictOf(decided);
    if (verdict !== "approved") return failTask(verdict.code as "CS_ERR_APPROVAL_DENIED", verdict.detail);
    // Approved. A session that ended cannot forward: the approval stays unclaimed for the identical call.
    if (this.#ctx.ended) return failTask("CS_ERR_APPROVAL_PENDING", `approved, but the session ended before the call was forwarded; request ${decided.id} stays unclaimed: the identical call picks it up`);
    // Two-phase, as for a plain hold: claimed, sent, and only then recorded as forwarded (by holdAsTask).
    const claims: ForwardClaims = { claimed, settled: true };
    const used = await claimForward(this.#ctx.deps.approvals!.service, decided, claims);
    if (used) return failTask("CS_ERR_APPROVAL_DENIED", used.detail);
    if (isTerminal(task.status) || this.#ctx.ended) return false;
    this.#registry.update(task, "working", `approved by ${decided.decidedBy ?? "an approver"}; forwarded to the upstream`);
    void this.#statusNotice(task);
    return this.#forward(msg, task);
  }

  /** A refused task-augmented call: a task already failed with the refusal. */
  async refuse(p: PendingRequest, result: Record<string, unknown>): Promise<void> {
    let task: GatewayTask;
    try {
      task = this.#registry.create({ owner: taskOwner(this.#ctx.identity, this.#sessionId), connection: this.#ctx.connection.name, sessionId: this.#sessionId, ttlMs: chooseTtl(p.taskParams?.ttl), pollIntervalMs: 1000, justification: p.justification });
    } catch (err) {
      return deliverError(this.#ctx, p.id, err as CountersignError, true, p.httpRequestId);
    }
    this.#registry.update(task, "failed", messageOfOutcome({ result }), { result });
    await this.#answerCreated(p.id, task, undefined, p);
  }

  /** An allowed task-augmented call the upstream cannot run as a task: the gateway runs the task. */
  async wrap(msg: JsonRpcMessage, id: JsonRpcId): Promise<void> {
    const p = this.#ctx.requests.get(id);
    if (!p) return;
    let task: GatewayTask;
    try {
      task = this.#registry.create({ owner: taskOwner(this.#ctx.identity, this.#sessionId), connection: this.#ctx.connection.name, sessionId: this.#sessionId, ttlMs: chooseTtl(p.taskParams?.ttl), pollIntervalMs: 500, justification: p.justification, statusMessage: "forwarded to the upstream" });
    } catch (err) {
      return fail(this.#ctx, id, err);
    }
    await this.#answerCreated(id, task, undefined);
    await this.#forward(msg, task);
  }

  /** Sends a task's call upstream, without `task`, under a gateway request id; recorded first. */
  async #forward(msg: JsonRpcMessage, task: GatewayTask): Promise<boolean> {
    if (this.#ctx.ended || isTerminal(task.status)) return false;
    const gid = `countersign-task-${++this.#seq}`;
    const { task: _omitted, ...params } = (msg.params ?? {}) as Record<string, unknown>;
    const forward = { ...msg, id: gid, params } as JsonRpcMessage;
    const p = this.#ctx.requests.track(forward, gid, "tools/call", { justification: task.justification });
    p.lifecycle.move("decided"); // decided with the task's own call, before the task was created
    p.task = task;
    task.forwarded = true;
    task.stop = () => {
      if (!this.#ctx.requests.untrack(gid)) return;
      void this.#ctx.sendUpstream({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: gid, reason: "the task was cancelled" } }).catch(() => {});
    };
    try {
      const masked = maskForRecord(this.#ctx, forward);
      await recordMessage(this.#ctx, "in", "gateway", masked.masked, { kind: "request", id: gid }, "tools/call", masked.hits);
      if (!this.#ctx.requests.has(gid)) return false; // cancelled meanwhile
      startForwarding(this.#ctx, p);
      await this.#ctx.sendUpstream(forward);
      p.lifecycle.move("forwarded");
      return true;
    } catch (err) {
      await fail(this.#ctx, gid, err);
      return false;
    }
  }

  /** The upstream answered a task's call (or it failed): the task ends with that outcome. */
  finish(task: GatewayTask, outcome: TaskOutcome): void {
    // The status message is read by tasks/get and tasks/list: taken from the fully masked outcome.
    const masked = this.#ctx.connection.masker?.maskMessage(outcome, { scope: maskingScopeOf(this.#ctx) }).masked ?? outcome;
    if (!isTerminal(task.status)) task.fromUpstream = true;
    this.#end(task, statusOfOutcome(outcome), messageOfOutcome(masked), outcome);
  }

  #end(task: GatewayTask, status: TaskStatus, message: string | undefined, outcome: TaskOutcome): void {
    if (this.#registry.update(task, status, message, outcome)) void this.#statusNotice(task);
  }

  /** notifications/tasks/status to the task's session, recorded before delivery (optional in the protocol). */
  async #statusNotice(task: GatewayTask): Promise<void> {
    if (this.#ctx.ended || task.sessionId !== this.#sessionId) return;
    const notice = { jsonrpc: "2.0", method: "notifications/tasks/status", params: taskWire(task) } as JsonRpcMessage;
    try {
      await recordMessage(this.#ctx, "out", "gateway", notice, { kind: "notification" }, "notifications/tasks/status");
    } catch {
      return;
    }
    deliver(this.#ctx, notice, {});
  }

  /** Answers a task-augmented tools/call with its task (CreateTaskResult). */
  async #answerCreated(id: JsonRpcId, task: GatewayTask, immediate: string | undefined, untracked?: PendingRequest): Promise<void> {
    const result: Record<string, unknown> = { task: taskWire(task) };
    if (immediate) result._meta = { [IMMEDIATE_RESPONSE]: immediate };
    await answer(this.#ctx, id, "tools/call", result, untracked);
  }

}
