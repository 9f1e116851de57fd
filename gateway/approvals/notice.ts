// The words a paused caller reads while its call waits for approval: the MCP log and progress
// notices (the data path calls pausedNotice on each tick) and, in the same terms, the Slack DM.
// Pure functions of the request and the clock, so every surface says the same thing.
import type { ApprovalRequest } from "./types.js";

/** "4m 05s", "1h 02m", "12s". */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
}

/** Where approvers are asked: the channel (a name or id) and the message's link once posted. */
export interface NoticeWhere {
  channel?: string | null | undefined;
  permalink?: string | null | undefined;
  /** Whether the requester gets a Slack DM with the decision (a person with an e-mail, Slack configured). */
  dm?: boolean | undefined;
}

/**
 * "Paused: approval by oncall (1 of 2 needed) asked in Slack #C0APPROVALS <link>; waiting 1m 05s,
 * expires in 13m 55s (09:15:00 UTC). A Slack DM will tell you the decision. Request apr_…, rule …."
 */
export function pausedNotice(r: ApprovalRequest, now: Date = new Date(), where: NoticeWhere = {}): string {
  const waited = duration(now.getTime() - r.createdAt.getTime());
  const left = r.expiresAt.getTime() - now.getTime();
  const channel = where.channel ?? r.slack.channel;
  const link = where.permalink ?? r.slack.permalink;
  const asked = channel ? ` asked in Slack channel ${channel}${link ? ` (${link})` : ""}` : " being asked";
  const needed = r.approvalsNeeded > 1 ? ` (${r.approveCount} of ${r.approvalsNeeded} approvals so far)` : "";
  const expiry = left > 0 ? `expires in ${duration(left)} (${r.expiresAt.toISOString()})` : `expired at ${r.expiresAt.toISOString()}`;
  // The DM is promised only where it was sent, or may still be (the message is not posted yet).
  const person = r.requester.kind === "user" && r.requester.email !== undefined;
  const dm =
    where.dm === false || !person
      ? ""
      : r.slack.requesterDmChannel
        ? " You have a Slack DM about it; the decision will follow there."
        : r.slack.ts
          ? ""
          : " A Slack DM with the decision will follow (if Slack knows your e-mail).";
  return `Paused for approval by ${r.approverGroup}${needed},${asked}; waiting ${waited}, ${expiry}.${dm} Request ${r.id}, rule ${r.ruleId ?? "(default)"}.`;
}

/** What a caller does after an expiry: the same call opens a new request. */
export function askAgainHint(r: ApprovalRequest): string {
  return `To ask again, make the same call again: it opens a new request${r.justification ? "" : " (a justification helps approvers decide)"}. To be decided faster, tell someone in ${r.approverGroup}.`;
}
