// An upstream message through the stages, back to the client:
//
//   admit ─▶ (shape the answer: tool access, pins, tasks) ─▶ mask ─▶ record(out) ─▶ deliver
//
// Nothing reaches the client before its masked record is committed. When the store cannot commit,
// the message is not delivered (fail closed): the client request it answers gets the audit error,
// an upstream request gets a JSON-RPC error back.
import { filterToolsList } from "../auth/tool-access.js";
import { CountersignError, jsonRpcErrorResponse } from "../errors.js";
import { classify, type JsonRpcId, type JsonRpcMessage } from "../mcp/jsonrpc.js";
import { observeToolsList } from "../pinning/index.js";
import { MAX_UNANSWERED_SERVER_REQUESTS, type UpstreamAdmission } from "./admit.js";
import { asCountersignError, deliverError, fail } from "./answer.js";
import type { ExchangeContext, Route } from "./context.js";
import { deliver } from "./deliver.js";
import type { PendingRequest } from "./exchange.js";
import { maskForCaller, rememberIssuedFor } from "./mask.js";
import { observe } from "./observe.js";
import { recordEvent, recordMessage, recordRejected } from "./record.js";

export function fromUpstream(ctx: ExchangeContext, admission: UpstreamAdmission, raw: unknown, relatedTo?: JsonRpcId): void {
  if (ctx.ended) return;
  const c = classify(raw);
  if (!c) return recordRejected(ctx, "upstream_invalid_json", { note: "the upstream sent JSON that is not a JSON-RPC 2.0 message" });
  let msg = raw as JsonRpcMessage;
  let method: string | null = c.method ?? null;
  let route: Route = { relatedTo };
  let answered: PendingRequest | undefined;
  let pinning: Promise<void> | undefined;

  // admit, and shape what the client is shown.
  if (c.kind === "response" || c.kind === "error") {
    answered = c.id === undefined ? undefined : ctx.requests.untrack(c.id);
    if (!answered) return recordRejected(ctx, "unknown_response_id", { id: c.id ?? null, note: "the upstream answered a request the client never sent (or one already answered)" });
    answered.lifecycle.move("answered");
    method = answered.method;
    route = { responseTo: answered.id };
    if (c.kind === "response") ({ msg, pinning } = shapeAnswer(ctx, answered, msg));
  } else if (c.kind === "notification") {
    if (!admission.notification()) return;
    if (c.method === "notifications/progress") {
      const token = (msg.params as { progressToken?: JsonRpcId } | undefined)?.progressToken;
      const owner = token === undefined ? undefined : ctx.requests.ownerOf(token);
      if (owner !== undefined) route = { relatedTo: owner };
    }
  } else {
    const admitted = admission.request(c.id, c.method);
    if (!admitted.admitted) return refuseUpstreamRequest(ctx, admission, c.id, c.method, admitted.report);
  }

  // mask, then record(out) with what the delivery needs on record beside it.
  const view = maskForCaller(ctx, msg, answered?.justification);
  const committed = [recordMessage(ctx, "out", "upstream", view.record, c, method, view.hits, answered?.httpRequestId ?? null)];
  committed.push(rememberIssuedFor(ctx, view)); // deliverable only once its pseudonyms can be restored
  if (pinning) committed.push(pinning);
  // A task's forwarded call is not delivered now: tasks/result masks it for the caller later.
  if (view.exempted && !answered?.task) {
    committed.push(
      recordEvent(ctx, {
        type: "unmasked_delivery",
        reason: "role_exemption",
        detail: { types: view.exempted, groups: ctx.identity.groups, justification: answered?.justification ?? null, method, requestId: route.responseTo ?? null },
        requestId: answered?.httpRequestId ?? null,
      }),
    );
  }
  // deliver, once committed.
  Promise.all(committed).then(
    () => {
      if (answered?.task) ctx.tasks?.finish(answered.task, c.kind === "error" ? { error: msg.error as Record<string, unknown> } : { result: msg.result as Record<string, unknown> });
      else deliver(ctx, view.deliver, route);
      if (answered) observe(ctx, answered, c.kind === "error" ? "error" : "ok");
    },
    (err: unknown) => {
      const e = asCountersignError(err, "CS_ERR_AUDIT_UNAVAILABLE");
      if (answered?.task) ctx.tasks?.finish(answered.task, { error: e.toJsonRpcError() });
      else if (route.responseTo !== undefined) void deliverError(ctx, route.responseTo, e, false);
      else if (c.kind === "request") void ctx.sendUpstream(jsonRpcErrorResponse(c.id, e) as unknown as JsonRpcMessage).catch(() => {});
    },
  );
}

/**
 * What the client is shown of a response: initialize teaches the context its protocol version
 * (and may offer tasks); tools/list leaves out the tools this caller may not call, and tool pinning
 * pins new tools and reports changed ones (committed before delivery; with onChange block a changed
 * tool is left out until an admin re-pins it); offered tasks decorate lists.
 */
function shapeAnswer(ctx: ExchangeContext, p: PendingRequest, msg: JsonRpcMessage): { msg: JsonRpcMessage; pinning?: Promise<void> } {
  let pinning: Promise<void> | undefined;
  if (p.method === "initialize") {
    ctx.initialized((msg.result ?? {}) as Record<string, unknown>);
    if (ctx.tasks) msg = ctx.tasks.offer(msg);
  }
  if (p.method === "tools/list") {
    msg = filterToolsList(ctx.connection.access, ctx.identity, msg).msg;
    ({ msg, pinning } = pinToolsList(ctx, msg));
  }
  if (ctx.tasks?.offered) msg = ctx.tasks.decorateResponse(msg, p);
  return { msg, pinning };
}

function pinToolsList(ctx: ExchangeContext, msg: JsonRpcMessage): { msg: JsonRpcMessage; pinning?: Promise<void> } {
  const pins = ctx.deps.pins;
  const cfg = ctx.connection.pinning;
  const result = msg.result as { tools?: unknown } | undefined;
  if (!pins || !cfg.enabled || !Array.isArray(result?.tools)) return { msg };
  const name = ctx.connection.name;
  const observed = observeToolsList(result.tools, ctx.connection.masker);
  for (const t of observed) ctx.toolHashes.set(t.tool, t.hash);
  const pinning = pins.observe(name, observed, { sessionId: ctx.sessionId, subject: ctx.identity.subject });
  if (cfg.onChange !== "block") return { msg, pinning };
  const hidden = new Set(observed.filter((t) => { const pin = pins.get(name, t.tool); return pin !== undefined && pin.hash !== t.hash; }).map((t) => t.tool));
  if (hidden.size === 0) return { msg, pinning };
  const tools = (result.tools as Array<{ name?: unknown }>).filter((t) => !(typeof t?.name === "string" && hidden.has(t.name)));
  return { msg: { ...msg, result: { ...result, tools } } as JsonRpcMessage, pinning };
}

/**
 * An upstream request over the rate or the cap: answered upstream with an error at once. A flood of
 * them is recorded as one event per second with how many were refused, not a row each: a row each
 * would let one upstream fill the audit queue that every caller's records share.
 */
function refuseUpstreamRequest(ctx: ExchangeContext, admission: UpstreamAdmission, id: JsonRpcId, method: string, report: number): void {
  const err = new CountersignError("CS_ERR_UPSTREAM_REQUEST_LIMIT", `${admission.unanswered} unanswered; at most ${MAX_UNANSWERED_SERVER_REQUESTS}, ${ctx.deps.notificationsPerSecond} per second`, { keyPath: "limits.notificationsPerSecond" });
  if (report > 0) recordRejected(ctx, "upstream_request_limit", { id, method, refusedSinceLastEvent: report });
  ctx.sendUpstream(jsonRpcErrorResponse(id, err) as unknown as JsonRpcMessage).catch(() => {});
}

/** The upstream transport failed some requests (or sent something it could not parse). */
export function upstreamFailure(ctx: ExchangeContext, err: CountersignError, requestIds: JsonRpcId[]): void {
  ctx.deps.log.warn({ session: ctx.sessionId, code: err.code, detail: err.detail }, "upstream failure");
  if (requestIds.length === 0) {
    recordRejected(ctx, err.code === "CS_ERR_UPSTREAM_RESPONSE_TOO_LARGE" ? "upstream_message_too_large" : "upstream_invalid_json", { code: err.code, detail: err.detail ?? null });
  }
  for (const id of requestIds) void fail(ctx, id, err);
}

/** The upstream sent more notifications than the rate: recorded, and the client told in its session. */
export function reportFlood(ctx: ExchangeContext, dropped: number): void {
  const rate = ctx.deps.notificationsPerSecond;
  recordRejected(ctx, "upstream_flood", { dropped, limitPerSecond: rate });
  if (ctx.ended) return; // the count is on record; there is no client left to tell
  const notice: JsonRpcMessage = {
    jsonrpc: "2.0",
    method: "notifications/message",
    params: { level: "warning", logger: "countersign", data: `Countersign dropped ${dropped} notifications from upstream '${ctx.connection.name}': it sent more than ${rate} per second (limits.notificationsPerSecond).` },
  };
  recordMessage(ctx, "out", "gateway", notice, { kind: "notification" }, "notifications/message").then(
    () => deliver(ctx, notice, {}),
    () => {},
  );
}
