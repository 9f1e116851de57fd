// The four-eyes rule by identity: a vote counts only when it is shown to come from someone other
// than the requester. The requester is known by issuer + subject and, when the token carried one,
// an e-mail; an approver by an e-mail (Slack's profile, a mapping, a token's claim, `--as`) and,
// through the approvals API, a token's issuer + subject.
//
//   self       the same issuer + subject, the same e-mail, or the approver's e-mail is the
//              requester's subject: refused.
//   other      shown different: a token of the requester's issuer with another subject, or an
//              e-mail that differs from the e-mail the requester's token carries.
//   unproven   neither: e.g. a Slack user known only by an e-mail while the requester's token
//              carries none (she may be that very user). Refused, and told how to decide instead.
// break_glass (`--database --as`) is an operator writing to the database directly: trusted, not
// authenticated, so only the self checks apply to it.
import type { Approver, Requester, VoteInput } from "./types.js";

export type FourEyesVerdict = { verdict: "other" } | { verdict: "self" } | { verdict: "unproven"; why: string };

/** The approver key stored with votes: the e-mail, lower case. */
export const approverKey = (email: string) => email.trim().toLowerCase();

/** An e-mail worth comparing: an address, not a placeholder such as `slack:U123` for a Slack user without one. */
const realEmail = (email: string | undefined): string | undefined => {
  const e = email === undefined ? undefined : approverKey(email);
  return e && e.includes("@") && !e.startsWith("slack:") ? e : undefined;
};

export function judgeApprover(requester: Requester, approver: Approver, via: VoteInput["via"]): FourEyesVerdict {
  const email = realEmail(approver.email);
  const requesterEmail = realEmail(requester.email);
  const sameToken = approver.subject !== undefined && approver.issuer !== undefined && approver.subject === requester.subject && approver.issuer === requester.issuer;
  if (sameToken) return { verdict: "self" };
  if (email !== undefined && requesterEmail !== undefined && email === requesterEmail) return { verdict: "self" };
  if (approverKey(approver.email) === requester.subject.trim().toLowerCase()) return { verdict: "self" };
  if (via === "break_glass") return { verdict: "other" };
  const otherSubjectSameIssuer = approver.subject !== undefined && approver.issuer !== undefined && approver.issuer === requester.issuer && approver.subject !== requester.subject;
  if (otherSubjectSameIssuer) return { verdict: "other" };
  if (email !== undefined && requesterEmail !== undefined) return { verdict: "other" };
  return {
    verdict: "unproven",
    why:
      requesterEmail === undefined
        ? `the requester (${requester.subject} of ${requester.issuer}) carries no e-mail, so ${approver.email} cannot be shown to be someone else`
        : `${approver.email} cannot be compared with the requester's identity`,
  };
}

/** What a refused approver is told to do instead: decide where an identity can be compared. */
export const DECIDE_INSTEAD =
  "Decide with a token of the requester's identity provider instead: in the Countersign console, or with `countersign approvals approve <id>` (or `deny <id> --reason ...`) through the approvals API.";
