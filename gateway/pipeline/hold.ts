// hold: one coordinator for every held call. A call is held for each decision of its chain in turn
// (a changed tool's pin, then a policy rule); the approval of each is claimed, and only when the
// last is approved does the call go out, once. Claims are two-phase: confirmed (recorded as
// forwarded) only after the send resolved, released otherwise, so the identical retry can still
// use an approval whose call never went out.
//
// How the caller is answered is the flavour: a plain call waits (told where and how long, kept
// alive with progress) up to holdFor, then gets "approval pending, retry"; a task-augmented call
// gets a task at once and the decision lands in it (pipeline/tasks/). The decision, the claim and
// the words are the same for both, and live here.
import type { ApprovalService } from "../approvals/service.js";
import type { ApprovalRequest } from "../approvals/types.js";
import { pausedNotice } from "../approvals/notice.js";
import { CountersignError } from "../errors.js";
import type { JsonRpcId, JsonRpcMessage } from "../mcp/jsonrpc.js";
import type { PolicyDecision } from "../policy/engine.js";
import { answer, fail, notify, refuse } from "./answer.js";
import type { ExchangeContext } from "./context.js";
import type { CallerContext, ForwardClaims } from "./exchange.js";
import { forwardRequest } from "./forward.js";
import { maskingScopeOf } from "./mask.js";
import { idKey } from "../mcp/jsonrpc.js";

export type HoldRefusal = { code: "CS_ERR_APPROVAL_DENIED" | "CS_ERR_APPROVAL_PENDING" | "CS_ERR_JUSTIFICATION_REQUIRED"; detail: string };

/** What a decided (or still pending) request means for its call: go on, or the refusal to answer. */
export function verdictOf(decided: ApprovalRequest): "approved" | HoldRefusal {
  if (decided.status === "approved") return "approved";
  if (decided.status === "denied" || decided.status === "expired") {
    const by = decided.status === "expired" ? "nobody decided before it expired" : `denied by ${decided.decidedBy ?? "an approver"}`;
    return { code: "CS_ERR_APPROVAL_DENIED", detail: `request ${decided.id}: ${by}${decided.decisionReason ? `: ${decided.decisionReason}` : ""}` };
  }
  return { code: "CS_ERR_APPROVAL_PENDING", detail: `approval pending, request ${decided.id}, expires ${decided.expiresAt.toISOString()}; retry the same call after a decision` };
}

/** Claims an approved request's single forward; the refusal when it was already used. */
export async function claimForward(service: ApprovalService, decided: ApprovalRequest, claims: ForwardClaims): Promise<HoldRefusal | undefined> {
  if (!(await service.claimForward(decided.id))) {
    return { code: "CS_ERR_APPROVAL_DENIED", detail: `request ${decided.id} was approved and its call already forwarded once; an approval covers one call` };
  }
  claims.claimed.push(decided.id);
  return undefined;
}

/** Holds a call for its chain of decisions; claims its call never used are released at the end. */
export async function hold(ctx: ExchangeContext, msg: JsonRpcMessage, id: JsonRpcId, method: string, chain: readonly PolicyDecision[]): Promise<void> {
  const claims: ForwardClaims = { claimed: [], settled: false };
  const service = ctx.deps.approvals!.service;
  try {
    await holdFor(ctx, msg, id, method, chain, 0, claims);
  } finally {
    await releaseUnused(ctx, service, claims);
  }
}

/** Gives back the claims of a call that will not be forwarded, so the identical retry can use them. */
async function releaseUnused(ctx: ExchangeContext, service: ApprovalService, claims: ForwardClaims): Promise<void> {
  if (claims.settled || claims.claimed.length === 0) return;
  const released = claims.claimed.splice(0);
  await Promise.all(released.map((a) => service.releaseForward(a))).catch((err) => ctx.deps.log.warn({ err }, "could not release an approval claim"));
}

async function holdFor(ctx: ExchangeContext, msg: JsonRpcMessage, id: JsonRpcId, method: string, chain: readonly PolicyDecision[], step: number, claims: ForwardClaims): Promise<void> {
  const approvals = ctx.deps.approvals!;
  const decision = chain[step]!;
  const last = step === chain.length - 1;
  const need = decision.approval!;
  // A refusal gives back the chain's earlier claims first: when the caller reads it, they are unspent.
  const refuseWith = async (r: HoldRefusal) => {
    await releaseUnused(ctx, approvals.service, claims);
    return refuse(ctx, id, method, new CountersignError(r.code, r.detail, { rule: need.ruleId ?? "(default)", connection: ctx.connection.name }), decision);
  };
  if (need.justificationMissing) {
    return refuseWith({ code: "CS_ERR_JUSTIFICATION_REQUIRED", detail: `rule ${need.ruleId ?? "(default)"} needs a justification for approval: send it in _meta["countersign/justification"] or the X-Countersign-Justification header` });
  }
  // A caller answered with input_required must be able to follow it: refused before any approval request is opened.
  const cannot = ctx.heldAsInputRequired ? ctx.holdRefusal?.(msg) : undefined;
  if (cannot) return fail(ctx, id, cannot);
  const p = ctx.requests.get(id);
  const request = await askApprovers(ctx, msg, method, decision, p?.caller);
  if (p) p.decision = "held";
  // The task flavour: answered now with a task; the last hold of a chain answers with it.
  if (p?.taskParams && last && ctx.tasks) return ctx.tasks.holdAsTask(msg, id, decision, request, p.taskParams, claims);
  // The multi-round-trip flavour (2026-07-28): every pending hold of a chain is answered now with
  // input_required; the retry with its requestState gets the decision (and meets the next hold).
  if (ctx.heldAsInputRequired && request.status === "pending") return answer(ctx, id, method, ctx.heldAsInputRequired(msg, request));

  p?.lifecycle.move("held");
  const decided = request.status === "pending" ? await waitInSession(ctx, id, request) : request;
  const verdict = verdictOf(decided);
  if (verdict !== "approved") return refuseWith(verdict);
  // Cancelled or closed meanwhile: leave the approval unclaimed for the identical retry.
  if (!ctx.requests.has(id) || ctx.ended) return;
  const used = await claimForward(approvals.service, decided, claims);
  if (used) return refuseWith(used);
  if (!last) return holdFor(ctx, msg, id, method, chain, step + 1, claims);
  const pending = ctx.requests.get(id);
  if (!pending || ctx.ended) return;
  pending.decision = "approved";
  if (!(await forwardRequest(ctx, msg, pending))) return;
  claims.settled = true;
  await Promise.all(claims.claimed.map((a) => approvals.service.confirmForward(a))).catch((err) => ctx.deps.log.warn({ err }, "could not record an approved call as forwarded"));
}

/** Opens (or finds, for an identical retry) the approval request for this call. */
async function askApprovers(ctx: ExchangeContext, msg: JsonRpcMessage, method: string, decision: PolicyDecision, caller: CallerContext | undefined): Promise<ApprovalRequest> {
  const need = decision.approval!;
  const params = (msg.params ?? {}) as { name?: unknown; uri?: unknown; arguments?: unknown };
  const args = params.arguments ?? {};
  const id = ctx.identity;
  const { request } = await ctx.deps.approvals!.service.request({
    sessionId: ctx.sessionId,
    connection: ctx.connection.name,
    method,
    tool: typeof params.name === "string" ? params.name : typeof params.uri === "string" ? params.uri : method,
    arguments: args,
    // Masked in the caller's scope: approvers see the same pseudonyms the caller sees.
    maskedArguments: ctx.connection.masker?.maskMessage(args, { scope: maskingScopeOf(ctx) }).masked ?? args,
    requester: { subject: id.subject, issuer: id.issuer, kind: id.kind, email: id.email, name: id.name, groups: id.groups },
    rule: { id: decision.ruleId, description: need.why },
    approverGroup: need.group,
    approvalsNeeded: need.approvals,
    timeoutMs: need.timeoutMs,
    justification: need.justification,
    client: caller && { name: caller.clientName, version: caller.clientVersion, remoteAddress: caller.remoteAddress, userAgent: caller.userAgent },
  });
  return request;
}

/**
 * The plain flavour's wait: the caller is told at once where it waits and for how long (a log
 * notification), kept alive with progress when it sent a progress token, and waits up to holdFor.
 * A cancel or the end of the context aborts the wait.
 */
async function waitInSession(ctx: ExchangeContext, id: JsonRpcId, request: ApprovalRequest): Promise<ApprovalRequest> {
  const approvals = ctx.deps.approvals!;
  const abort = new AbortController();
  ctx.requests.holds.set(idKey(id), abort);
  const token = ctx.requests.get(id)?.progressToken;
  await notify(ctx, id, { method: "notifications/message", params: { level: "notice", logger: "countersign", data: pausedNotice(request, new Date()) } });
  let step = 0;
  const everyMs = Math.min(5000, Math.max(250, approvals.holdForMs / 4));
  const ticker =
    token === undefined
      ? undefined
      : setInterval(() => {
          void approvals.service.store
            .get(request.id)
            .catch(() => request)
            .then((now) => notify(ctx, id, { method: "notifications/progress", params: { progressToken: token, progress: ++step, message: pausedNotice(now ?? request, new Date()) } }));
        }, everyMs);
  try {
    return await approvals.service.waitForDecision(request.id, abort.signal, approvals.holdForMs);
  } finally {
    if (ticker) clearInterval(ticker);
    ctx.requests.holds.delete(idKey(id));
  }
}
