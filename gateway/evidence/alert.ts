// The real-time alert for a failed verification of the audit chain, found while computing a
// digest: posted at once (approvals notifier), not left for a manager to spot in the report.
import type { SecurityAlert } from "../approvals/types.js";
import type { DigestContent } from "./digest.js";

export function chainFailureAlert(content: DigestContent): SecurityAlert | undefined {
  const integrity = content.sections.find((s) => s.id === "integrity");
  const verification = String(integrity?.counts.find((c) => c.key === "verification")?.value ?? "");
  if (!integrity || !verification.startsWith("failed")) return undefined;
  return {
    kind: "chain_verification_failed",
    title: `The audit record of ${content.week} does not verify: ${verification}`,
    summary: `Computing the weekly digest of ${content.week} recomputed the hash chain and found it broken: records were changed, removed or reordered after they were sealed, or a checkpoint signature is wrong. Treat the record as tampered with until explained.`,
    diff: integrity.exceptions,
    command: `countersign verify --since ${content.period.start} --until ${content.period.end}`,
    at: new Date(content.generatedAt),
  };
}
