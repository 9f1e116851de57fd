// A client message through the stages, in the order the README draws:
//
//   admit ─▶ restore ─▶ decide ─▶ record(in) ─▶ act: forward | refuse | hold
//
// (authenticate ran at the front, before the body was read.) Nothing reaches the upstream before
// its record, with the decision, is committed; when the store cannot commit, a request gets
// CS_ERR_AUDIT_UNAVAILABLE and nothing moves on (fail closed). Requests always end in an answer
// through the context (the upstream's or the gateway's); for notifications and a client's answers
// a failure is thrown, for the front to report in its HTTP answer.
import { idKey, type Classified, type JsonRpcId, type JsonRpcMessage } from "../mcp/jsonrpc.js";
import { admitFromClient, type UpstreamAdmission } from "./admit.js";
import { fail, refuse } from "./answer.js";
import type { ExchangeContext } from "./context.js";
import { actionOf, decide, decisionLabel, type Action, type Decision } from "./decide.js";
import type { Exchange, RequestHints } from "./exchange.js";
import { forwardMessage, forwardRequest } from "./forward.js";
import { hold } from "./hold.js";
import { maskForRecord } from "./mask.js";
import { restoredEvent } from "../masking/restore/index.js";
import { accessDeniedEvent, governedNotificationDroppedEvent, pinDecisionEvent, policyDecisionEvent, recordMessage } from "./record.js";
import { restore } from "./restore.js";

export async function fromClient(ctx: ExchangeContext, upstreamSide: UpstreamAdmission, msg: JsonRpcMessage, c: Classified, hints?: RequestHints): Promise<void> {
  const admitted = admitFromClient(ctx, upstreamSide, msg, c, hints);
  let ex: Exchange;
  let restored: number;
  try {
    ({ ex, restored } = await restore(ctx, admitted));
  } catch (err) {
    if (!admitted.pending) throw err;
    return fail(ctx, admitted.pending.id, err);
  }
  const decision = decide(ctx, ex);
  const action = actionOf(ctx, ex, decision);
  if (ex.pending) ex.pending.decision = decisionLabel(action) ?? (decision?.policy ? "allow" : undefined);
  try {
    await recordIn(ctx, ex, decision, action, restored);
  } catch (err) {
    if (!ex.pending) throw err;
    return fail(ctx, ex.pending.id, err);
  }
  ex.pending?.lifecycle.move("decided");
  return act(ctx, ex, action);
}

/** record(in): the message, fully masked, with its decision's events in the same commit. */
function recordIn(ctx: ExchangeContext, ex: Exchange, d: Decision | undefined, action: Action, restored: number): Promise<unknown> {
  // A secret the caller pasted into a call must not stay in the store; the upstream still gets the message as sent.
  const { masked, hits } = maskForRecord(ctx, ex.message);
  const rpcId = ex.c.id ?? null;
  const writes = [recordMessage(ctx, "in", "client", masked, ex.c, ex.method, hits, ex.httpRequestId)];
  // The restore stage's fact, never its values: the record keeps the masked view.
  if (restored > 0) {
    const where = { sessionId: ctx.sessionId, connection: ctx.connection.name, subject: ctx.identity.subject, requestId: ex.httpRequestId };
    writes.push(ctx.deps.recorder.event(restoredEvent(where, restored, ex.method)));
  }
  if (d?.access) writes.push(accessDeniedEvent(ctx, ex.message, rpcId, ex.httpRequestId));
  if (d?.pinned) writes.push(pinDecisionEvent(ctx, d.pinned, rpcId, ex.httpRequestId));
  if (d?.policy) writes.push(policyDecisionEvent(ctx, d.policy, ex.message, rpcId, ex.httpRequestId));
  if (action.do === "drop") writes.push(governedNotificationDroppedEvent(ctx, ex.c.method ?? "", action.why, ex.httpRequestId));
  return Promise.all(writes);
}

/** act: forward, refuse or hold, as decided. */
async function act(ctx: ExchangeContext, ex: Exchange, action: Action): Promise<void> {
  const { c, message: msg, pending } = ex;
  switch (action.do) {
    case "drop":
      return;
    case "fail":
      return pending && fail(ctx, pending.id, action.err);
    case "refuse":
      return pending && refuse(ctx, pending.id, pending.method, action.err, action.decision);
    case "hold":
      if (!pending) return;
      // Detached, so the front is not blocked while a person decides.
      void hold(ctx, msg, pending.id, pending.method, action.chain).catch((err) => fail(ctx, pending.id, err));
      return;
    case "pass":
      break;
  }
  if (c.kind === "request") {
    // Cancelled, or the context closed, while it was being decided and recorded: it never goes out.
    if (!pending || !ctx.requests.has(pending.id)) return;
    const tasks = ctx.tasks?.offered ? ctx.tasks : undefined;
    if (tasks && c.method.startsWith("tasks/") && tasks.answersRequest(msg, c.id, c.method)) return tasks.handleRequest(msg, c.id, c.method);
    // A task-augmented call the upstream cannot run as a task: the gateway runs the task.
    if (tasks && pending.taskParams && !tasks.upstreamRunsAsTask(msg)) return tasks.wrap(msg, c.id);
    await forwardRequest(ctx, msg, pending);
    return;
  }
  if (c.kind === "notification" && c.method === "notifications/cancelled") return cancel(ctx, msg);
  await forwardMessage(ctx, msg);
}

/**
 * The client gave up on a request. Held, or not yet sent: it ends here, the hold aborted first,
 * and the upstream is not told of an id it never saw. Sent: the upstream is told, and the gateway
 * stops waiting (or the context counts as busy until the upstream timeout answers a request the
 * client no longer expects).
 */
async function cancel(ctx: ExchangeContext, msg: JsonRpcMessage): Promise<void> {
  const rpcId = (msg.params as { requestId?: unknown } | undefined)?.requestId;
  const p = typeof rpcId === "string" || typeof rpcId === "number" ? ctx.requests.get(rpcId) : undefined;
  if (p && !p.lifecycle.upstreamKnows) {
    p.lifecycle.move("cancelled");
    abortHold(ctx, p.id);
    ctx.requests.untrack(p.id);
    return;
  }
  await forwardMessage(ctx, msg);
  if (p) {
    p.lifecycle.move("cancelled");
    abortHold(ctx, p.id);
    ctx.requests.untrack(p.id);
  }
}

function abortHold(ctx: ExchangeContext, id: JsonRpcId): void {
  ctx.requests.holds.get(idKey(id))?.abort();
}
