// The pinning layer's decision on one tools/call. Pure and synchronous: it reads the pin state
// the service keeps in memory (no database read per call). Precedence is fixed: identity access,
// then this, then policy rules.
import type { PolicyDecision } from "../policy/engine.js";

export type OnChange = "allow" | "hold" | "block";

export interface PinningConfig {
  enabled: boolean;
  onChange: OnChange;
  approvalGroup?: string | undefined;
  approvalTimeoutMs: number;
}

/** What the service knows of one tool's pin. */
export interface PinState {
  hash: string;
  currentHash: string;
  /** What changed from the pin to the current definition (empty when they are equal). */
  changeSummary: string;
}

export interface PinVerdict {
  tool: string;
  action: "allow" | "block" | "require_approval";
  /** tool-pin:<tool>: names the layer and the tool in records and approval requests. */
  ruleId: string;
  pinnedHash: string;
  currentHash: string;
  /** Why, for the record and for the caller. */
  reason: string;
  approval?: { group: string; timeoutMs: number } | undefined;
}

/**
 * Undefined when the tool's definition is the pinned one (or the tool was never seen: there is
 * nothing to compare it with). `seenHash` is the definition this session was shown; without one
 * (the session never listed tools) the connection's last seen definition is judged.
 */
export function pinVerdict(cfg: PinningConfig, connection: string, tool: string, pin: PinState | undefined, seenHash: string | undefined): PinVerdict | undefined {
  if (!cfg.enabled || !pin) return undefined;
  const current = seenHash ?? pin.currentHash;
  if (current === pin.hash) return undefined;
  const what = pin.changeSummary && current === pin.currentHash ? ` (${pin.changeSummary})` : "";
  const fix = `an admin must review it and re-pin it: countersign tools pin ${connection}${cfg.onChange === "block" ? "" : ` --tool ${tool}`}`;
  const base = { tool, ruleId: `tool-pin:${tool}`, pinnedHash: pin.hash, currentHash: current };
  switch (cfg.onChange) {
    case "block":
      return { ...base, action: "block", reason: `tool '${tool}' on connection '${connection}' is blocked: its definition changed since it was pinned${what}; ${fix}` };
    case "hold":
      return {
        ...base,
        action: "require_approval",
        reason: `tool '${tool}' on connection '${connection}' changed its definition since it was pinned${what}; each call waits for approval until ${fix}`,
        approval: { group: cfg.approvalGroup ?? "", timeoutMs: cfg.approvalTimeoutMs },
      };
    case "allow":
      return { ...base, action: "allow", reason: `tool '${tool}' on connection '${connection}' changed its definition since it was pinned${what}; allowed by pinning.onChange: allow` };
  }
}

/** The verdict in the shape the hold and refusal steps of the session take (a synthetic rule). */
export function asPolicyDecision(v: PinVerdict): PolicyDecision {
  return {
    action: v.action,
    effectiveAction: v.action,
    ruleId: v.ruleId,
    reason: v.reason,
    shadow: false,
    ...(v.action === "block" ? { message: v.reason } : {}),
    ...(v.approval
      ? { approval: { ruleId: v.ruleId, why: v.reason, group: v.approval.group, approvals: 1, timeoutMs: v.approval.timeoutMs, justificationRequired: false, justificationMissing: false } }
      : {}),
  };
}
