// What the tests of held calls share: the rule that holds the logging server's echo for on-call,
// and approvals settings that decide quickly.

/** Holds `echo` for the on-call group when its message starts with "deploy". */
export const DEPLOYS_NEED_ONCALL = {
  id: "deploys-need-oncall",
  description: "Deploy messages wait for on-call",
  tools: ["echo"],
  when: { path: "$.arguments.message", matches: "^deploy" },
  action: "require_approval",
  approval: { group: "oncall", timeout: "10m" },
};

/** approvals: the on-call group by e-mail, sweeps and polls every 200 ms. */
export function quickApprovals(oncall: string[], holdFor: string): Record<string, unknown> {
  return { groups: { oncall: { emails: oncall } }, holdFor, sweepIntervalMs: 200, pollIntervalMs: 200 };
}
