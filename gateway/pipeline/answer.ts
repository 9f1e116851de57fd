// The gateway's own answers to a client request: an error, a refusal (a tool error the agent can
// read), a result, a notice about a held call. Each is recorded before delivery; an error carries
// no upstream data, so it is delivered even when the store cannot take it (never leave a caller
// hanging). A request is answered once: whatever answers first untracks it.
import { asCountersignError as mapError, CountersignError, jsonRpcErrorResponse, logUnexpected, type ErrorCode } from "../errors.js";
import type { JsonRpcId, JsonRpcMessage } from "../mcp/jsonrpc.js";
import { refusalResult } from "../mcp/refusal.js";
import type { PolicyDecision } from "../policy/engine.js";
import type { ExchangeContext } from "./context.js";
import { deliver } from "./deliver.js";
import type { PendingRequest } from "./exchange.js";
import { observe } from "./observe.js";
import { recordMessage } from "./record.js";

/** The catalogue's mapping (errors.ts), with the fallbacks the data path uses. */
export function asCountersignError(err: unknown, code: Extract<ErrorCode, "CS_ERR_INTERNAL" | "CS_ERR_AUDIT_UNAVAILABLE" | "CS_ERR_UPSTREAM_UNAVAILABLE"> = "CS_ERR_INTERNAL"): CountersignError {
  return mapError(err, code);
}

/** Answers a client request with a gateway error (recorded first when the store allows). */
export async function fail(ctx: ExchangeContext, id: JsonRpcId, err: unknown): Promise<void> {
  const p = ctx.requests.untrack(id);
  if (!p) return; // already answered (or timed out): no second answer
  p.lifecycle.move("failed");
  observe(ctx, p, p.forwardedAt === undefined ? "refused" : "error");
  let e = asCountersignError(err);
  if (e.code === "CS_ERR_INTERNAL" && e.detail === undefined) {
    // What failed stays in the log (with its stack); the caller gets the request id to quote.
    logUnexpected(ctx.deps.log.child({ session: ctx.sessionId, rpcId: id, httpRequestId: p.httpRequestId }), e);
    if (p.httpRequestId) e = new CountersignError("CS_ERR_INTERNAL", `request ${p.httpRequestId}`, { cause: e.cause });
  }
  // The gateway's forward of a task's call: the error is the task's outcome.
  if (p.task) return ctx.tasks?.finish(p.task, { error: e.toJsonRpcError() });
  await deliverError(ctx, id, e, true, p.httpRequestId);
}

export async function deliverError(ctx: ExchangeContext, id: JsonRpcId, err: CountersignError, record: boolean, httpRequestId?: string | undefined): Promise<void> {
  const response = jsonRpcErrorResponse(id, err) as unknown as JsonRpcMessage;
  if (record) await recordMessage(ctx, "out", "gateway", response, { kind: "error", id }, null, null, httpRequestId ?? null).catch(() => {});
  deliver(ctx, response, { responseTo: id });
}

/**
 * Refuses a governed call. A refused tools/call is answered as a tool error (isError) so the agent
 * reads the rule and its reason; other methods get a JSON-RPC error.
 */
export async function refuse(ctx: ExchangeContext, id: JsonRpcId, method: string, err: CountersignError, decision: PolicyDecision): Promise<void> {
  if (method !== "tools/call") return fail(ctx, id, err);
  const p = ctx.requests.untrack(id);
  if (!p) return;
  p.lifecycle.move("answered");
  observe(ctx, p, "refused");
  // A task-augmented call gets a task that has already failed, its outcome the same tool error.
  if (p.taskParams && ctx.tasks) return ctx.tasks.refuse(p, refusalResult(err, decision));
  const response = { jsonrpc: "2.0", id, result: refusalResult(err, decision) } as JsonRpcMessage;
  await recordMessage(ctx, "out", "gateway", response, { kind: "response", id }, method, null, p.httpRequestId ?? null).catch(() => {});
  deliver(ctx, response, { responseTo: id });
}

/** A gateway result for a client request: recorded, then delivered; unrecorded, the caller gets the audit error instead. */
export async function answer(ctx: ExchangeContext, id: JsonRpcId, method: string, result: Record<string, unknown>, untracked?: PendingRequest): Promise<void> {
  const p = untracked ?? ctx.requests.untrack(id);
  if (!p) return;
  if (!untracked) {
    p.lifecycle.move("answered");
    observe(ctx, p, "ok");
  }
  const response = { jsonrpc: "2.0", id, result } as JsonRpcMessage;
  try {
    await recordMessage(ctx, "out", "gateway", response, { kind: "response", id }, method, null, p.httpRequestId ?? null);
  } catch (err) {
    return deliverError(ctx, id, asCountersignError(err, "CS_ERR_AUDIT_UNAVAILABLE"), false);
  }
  deliver(ctx, response, { responseTo: id });
}

/** A gateway message to the client about one of its requests (a held call's notice), recorded before delivery. */
export async function notify(ctx: ExchangeContext, relatedTo: JsonRpcId | undefined, body: { method: string; params: Record<string, unknown> }): Promise<void> {
  const msg = { jsonrpc: "2.0", ...body } as JsonRpcMessage;
  try {
    await recordMessage(ctx, "out", "gateway", msg, { kind: "notification" }, body.method);
  } catch {
    return; // not recorded, not delivered
  }
  deliver(ctx, msg, relatedTo === undefined ? {} : { relatedTo });
}
