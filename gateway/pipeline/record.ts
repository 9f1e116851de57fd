// record(in) and record(out): every message and every decision is committed before it moves on
// (invariant 1). These functions only build rows; the recorder commits them (group commit).
import type { EventRecord } from "../audit/recorder.js";
import type { Classified, JsonRpcId, JsonRpcMessage } from "../mcp/jsonrpc.js";
import type { PinVerdict } from "../pinning/index.js";
import type { PolicyDecision } from "../policy/engine.js";
import type { ExchangeContext } from "./context.js";

export type Origin = "client" | "upstream" | "gateway";

export function recordMessage(
  ctx: ExchangeContext,
  direction: "in" | "out",
  origin: Origin,
  msg: JsonRpcMessage,
  c: Pick<Classified, "kind" | "id">,
  method: string | null,
  maskHits: Record<string, number> | null = null,
  httpRequestId: string | null = null,
): Promise<void> {
  const text = JSON.stringify(msg); // once: for the size and for the INSERT
  return ctx.deps.recorder.message({
    sessionId: ctx.sessionId,
    connection: ctx.connection.name,
    direction,
    origin,
    kind: c.kind,
    jsonrpcId: c.id === undefined ? null : String(c.id),
    method,
    size: Buffer.byteLength(text),
    payload: msg,
    payloadText: text,
    maskHits,
    subject: ctx.identity.subject,
    requestId: httpRequestId,
    at: new Date(),
  });
}

/** An event about this context's caller (session, connection and subject filled in). */
export function recordEvent(ctx: ExchangeContext, event: Omit<EventRecord, "sessionId" | "connection" | "subject">): Promise<void> {
  return ctx.deps.recorder.event({ ...event, sessionId: ctx.sessionId, connection: ctx.connection.name, subject: ctx.identity.subject } as EventRecord);
}

export type RejectedReason = "upstream_invalid_json" | "unknown_response_id" | "upstream_flood" | "upstream_message_too_large" | "upstream_request_limit";

/** An upstream message the gateway did not pass on: recorded best effort (it carries no caller's call). */
export function recordRejected(ctx: ExchangeContext, reason: RejectedReason, detail: Record<string, unknown>): void {
  ctx.deps.recorder.eventBestEffort({ type: "message_rejected", reason, sessionId: ctx.sessionId, connection: ctx.connection.name, detail });
}

/** A call refused by the caller's tool access (identity), before any rule. */
export function accessDeniedEvent(ctx: ExchangeContext, msg: JsonRpcMessage, rpcId: JsonRpcId | null, httpRequestId: string | null): Promise<void> {
  const tool = (msg.params as { name?: unknown } | undefined)?.name;
  return recordEvent(ctx, {
    type: "access_denied",
    reason: "tool_denied",
    detail: { tool: typeof tool === "string" ? tool : null, groups: ctx.identity.groups, requestId: rpcId },
    requestId: httpRequestId,
  });
}

/** A call to a tool whose definition differs from its pin is a decision: recorded with its rule and why. */
export function pinDecisionEvent(ctx: ExchangeContext, v: PinVerdict, rpcId: JsonRpcId | null, httpRequestId: string | null): Promise<void> {
  return recordEvent(ctx, {
    type: "tool_definition_changed",
    reason: v.action === "block" ? "call_blocked" : v.action === "require_approval" ? "call_held" : "call_allowed",
    detail: { requestId: rpcId, tool: v.tool, ruleId: v.ruleId, action: v.action, pinnedHash: v.pinnedHash, currentHash: v.currentHash, why: v.reason, ...(v.approval ? { approval: { group: v.approval.group } } : {}) },
    requestId: httpRequestId,
  });
}

/** Every decision on a governed call is an event: who, which rule, which action, and why. */
export function policyDecisionEvent(ctx: ExchangeContext, d: PolicyDecision, msg: JsonRpcMessage, rpcId: JsonRpcId | null, httpRequestId: string | null): Promise<void> {
  const reason = d.shadow ? (d.action === "block" ? "shadow_block" : d.action === "require_approval" ? "shadow_require_approval" : "allow") : d.effectiveAction;
  const params = msg.params as { name?: unknown; uri?: unknown } | undefined;
  return recordEvent(ctx, {
    type: "policy_decision",
    reason,
    requestId: httpRequestId,
    detail: {
      requestId: rpcId,
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

/** A governed method sent as a notification that was not allowed outright: dropped, on record. */
export function governedNotificationDroppedEvent(ctx: ExchangeContext, method: string, why: string, httpRequestId: string | null): Promise<void> {
  return recordEvent(ctx, { type: "message_rejected", reason: "governed_notification", detail: { method, why }, requestId: httpRequestId });
}
