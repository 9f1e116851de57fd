// decide: access (identity), then tool pinning (is this the definition that was pinned), then the
// policy rules. Pure and in memory: nothing is written here. `actionOf` turns the three verdicts
// into what the act stage does; the precedence between them lives in that one function.
import { toolCallRefusal } from "../auth/tool-access.js";
import { CountersignError } from "../errors.js";
import type { JsonRpcMessage } from "../mcp/jsonrpc.js";
import { asPolicyDecision, pinVerdict, type PinVerdict } from "../pinning/index.js";
import { evaluate, type PolicyDecision } from "../policy/engine.js";
import type { ExchangeContext } from "./context.js";
import type { Exchange } from "./exchange.js";

/** The methods the policy governs; the rest (initialize, lists, notifications…) pass. */
export const GOVERNED_METHODS: ReadonlySet<string> = new Set(["tools/call", "resources/read", "prompts/get"]);

export interface Decision {
  /** A governed method sent as a notification: it can act upstream, so it is decided too. */
  governedNotification: boolean;
  /** Refused by the caller's tool access. */
  access?: CountersignError | undefined;
  pinned?: PinVerdict | undefined;
  policy?: PolicyDecision | undefined;
}

export type Action =
  | { do: "pass" }
  /** A governed notification not allowed outright: nobody could be answered or held, so it is dropped. */
  | { do: "drop"; why: string }
  | { do: "fail"; err: CountersignError }
  | { do: "refuse"; err: CountersignError; decision: PolicyDecision }
  /** Held for each decision in turn (a changed tool's pin, then a rule); the last approval lets it go. */
  | { do: "hold"; chain: [PolicyDecision, ...PolicyDecision[]] };

/** Undefined when nothing is to be decided (not governed, or the gateway is draining). */
export function decide(ctx: ExchangeContext, ex: Exchange): Decision | undefined {
  const { c, message: msg } = ex;
  const governedNotification = c.kind === "notification" && GOVERNED_METHODS.has(c.method);
  if ((c.kind !== "request" && !governedNotification) || ctx.draining) return undefined;
  const access = toolCallRefusal(ctx.connection.access, ctx.identity, msg);
  if (access) return { governedNotification, access };
  const pinned = c.method === "tools/call" ? pinVerdictOf(ctx, msg) : undefined;
  const policy =
    pinned?.action !== "block" && GOVERNED_METHODS.has(c.method)
      ? evaluate(ctx.connection.policy, {
          connection: ctx.connection.name,
          method: c.method,
          params: msg.params,
          identity: { subject: ctx.identity.subject, groups: ctx.identity.groups, email: ctx.identity.email },
          justification: ex.justification,
        })
      : undefined;
  return { governedNotification, pinned, policy };
}

/** The pinning layer's verdict on a tools/call (pure: the pins are in memory). */
function pinVerdictOf(ctx: ExchangeContext, msg: JsonRpcMessage): PinVerdict | undefined {
  const pins = ctx.deps.pins;
  const tool = (msg.params as { name?: unknown } | undefined)?.name;
  if (!pins || typeof tool !== "string") return undefined;
  const name = ctx.connection.name;
  return pinVerdict(ctx.connection.pinning, name, tool, pins.get(name, tool), ctx.toolHashes.get(tool));
}

/**
 * The precedence, top to bottom: a dropped governed notification; shutting down; access; a
 * changed tool's pin (block, or hold, with a policy hold chained after it); a policy block; a
 * policy hold; otherwise the message passes. A hold with no approval channel fails closed.
 */
export function actionOf(ctx: ExchangeContext, ex: Exchange, d: Decision | undefined): Action {
  if (d?.governedNotification) {
    const why = d.access ? "access" : d.pinned && d.pinned.action !== "allow" ? `pin ${d.pinned.action}` : d.policy && d.policy.effectiveAction !== "allow" ? `policy ${d.policy.effectiveAction}` : undefined;
    return why ? { do: "drop", why } : { do: "pass" };
  }
  if (ex.c.kind === "request" && ctx.draining) return { do: "fail", err: new CountersignError("CS_ERR_SHUTTING_DOWN") };
  if (!d) return { do: "pass" };
  if (d.access) return { do: "fail", err: d.access };
  const { pinned, policy } = d;
  const policyHold = policy?.effectiveAction === "require_approval" ? policy : undefined;
  if (pinned && pinned.action !== "allow" && policy?.effectiveAction !== "block") {
    const pinDecision = asPolicyDecision(pinned);
    if (pinned.action === "block") return { do: "refuse", err: new CountersignError("CS_ERR_TOOL_DEFINITION_CHANGED", pinned.reason, { rule: pinned.ruleId, connection: ctx.connection.name, keyPath: "connections[].pinning.onChange" }), decision: pinDecision };
    if (!ctx.deps.approvals) return unavailable(ctx, `${pinned.ruleId} asks for approval by ${pinned.approval?.group ?? "an approver"}`, pinDecision);
    return { do: "hold", chain: policyHold ? [pinDecision, policyHold] : [pinDecision] };
  }
  if (policy?.effectiveAction === "block") return { do: "refuse", err: new CountersignError("CS_ERR_POLICY_BLOCKED", policy.message ?? policy.reason, { rule: policy.ruleId ?? "(default)", connection: ctx.connection.name }), decision: policy };
  if (policyHold) {
    if (!ctx.deps.approvals) return unavailable(ctx, `rule ${policyHold.ruleId ?? "(default)"} asks for approval by ${policyHold.approval?.group ?? "an approver"}`, policyHold);
    return { do: "hold", chain: [policyHold] };
  }
  return { do: "pass" };
}

/** No approval channel is configured: fail closed, clearly. */
function unavailable(ctx: ExchangeContext, detail: string, decision: PolicyDecision): Action {
  return { do: "refuse", err: new CountersignError("CS_ERR_APPROVAL_UNAVAILABLE", detail, { rule: decision.ruleId ?? "(default)", connection: ctx.connection.name, keyPath: "approvals" }), decision };
}

/** How the request log line names a decision. */
export function decisionLabel(a: Action): string | undefined {
  switch (a.do) {
    case "refuse":
      return a.decision.effectiveAction === "require_approval" ? "no_approver" : "block";
    case "hold":
      return "held";
    case "fail":
      return a.err.code === "CS_ERR_SHUTTING_DOWN" ? "shutting_down" : "access_denied";
    default:
      return undefined;
  }
}
