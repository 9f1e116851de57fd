// How the gateway answers a tools/call it refuses (blocked, denied, still pending): as a tool
// error the agent can read, naming the rule, rather than a protocol error it would not show.
import type { CountersignError } from "../errors.js";
import type { PolicyDecision } from "../policy/engine.js";

export function refusalResult(err: CountersignError, decision: PolicyDecision): Record<string, unknown> {
  return {
    content: [{ type: "text", text: `Countersign: ${err.detail ?? err.message}` }],
    isError: true,
    _meta: { "countersign/decision": { code: err.code, ruleId: decision.ruleId, action: decision.effectiveAction } },
  };
}
