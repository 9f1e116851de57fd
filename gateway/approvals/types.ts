// The approvals layer's vocabulary: a held call (ApprovalRequest), a vote on it, and the two
// interfaces the outside implements: the notifier (the Slack bot, or nothing) and the directory
// that says who may decide. The gateway depends on these; nothing here knows about Slack.

export type ApprovalStatus = "pending" | "approved" | "denied" | "expired";
export type VoteDecision = "approve" | "deny";

/**
 * The client a held call came from, when the request itself says it (a 2026-07-28 request has no
 * session to read it from). Every value is caller-supplied: clipped when stored, escaped when shown.
 */
export interface ApprovalClient {
  name?: string | undefined;
  version?: string | undefined;
  remoteAddress?: string | undefined;
  userAgent?: string | undefined;
}

/** The caller whose call is held. */
export interface Requester {
  subject: string;
  issuer: string;
  kind: "user" | "service" | "anonymous";
  email?: string | undefined;
  name?: string | undefined;
  groups: string[];
}

export interface ApprovalVote {
  approver: string;
  slackUserId: string | null;
  decision: VoteDecision;
  reason: string | null;
  via: string;
  at: Date;
}

export interface ApprovalRequest {
  id: string;
  sessionId: string | null;
  connection: string;
  method: string;
  tool: string;
  argumentsHash: string;
  maskedArguments: unknown;
  requester: Requester;
  ruleId: string | null;
  ruleDescription: string | null;
  approverGroup: string;
  approvalsNeeded: number;
  approveCount: number;
  justification: string | null;
  createdAt: Date;
  expiresAt: Date;
  status: ApprovalStatus;
  decidedAt: Date | null;
  decidedBy: string | null;
  decisionReason: string | null;
  forwardedAt: Date | null;
  slack: {
    channel: string | null;
    ts: string | null;
    permalink: string | null;
    requesterDmChannel: string | null;
    requesterDmTs: string | null;
    state: string;
    attempts: number;
    error: string | null;
  };
  reminderCount: number;
  escalatedAt: Date | null;
  escalationGroup: string | null;
  /** The caller's client, where the request said it (otherwise its session's row does). */
  client?: ApprovalClient | null | undefined;
}

/** What the session hands over when policy says require_approval. */
export interface NewApprovalRequest {
  sessionId?: string | null | undefined;
  connection: string;
  method?: string | undefined;
  tool: string;
  /** The arguments as sent: hashed (canonical form) to recognise an identical retry, never stored. */
  arguments: unknown;
  /** The arguments with masking applied: what approvers see and what is stored. */
  maskedArguments: unknown;
  requester: Requester;
  rule: { id: string | null; description?: string | undefined };
  approverGroup: string;
  approvalsNeeded: number;
  timeoutMs: number;
  justification?: string | undefined;
  /** The caller's client, for a request that carries it (2026-07-28). */
  client?: ApprovalClient | undefined;
}

/** The person deciding: identified by e-mail (from Slack's profile, a mapping, a token's claim, or `--as`). */
export interface Approver {
  email: string;
  name?: string | undefined;
  slackUserId?: string | undefined;
  /** The token's subject and issuer when the approver authenticated with one (the approvals API). */
  subject?: string | undefined;
  issuer?: string | undefined;
}

export interface VoteInput {
  requestId: string;
  approver: Approver;
  decision: VoteDecision;
  reason?: string | undefined;
  /** Identifies one delivery of one click (Slack: user + action_ts, or the view id): replays find it taken. */
  actionKey?: string | undefined;
  /**
   * slack: a click; api: the approvals API (`countersign approvals` with a token); break_glass: the
   * CLI writing to the database directly with `--database --as` (trusted, not authenticated);
   * cli: older name of the API path, kept for callers inside the gateway; console: the web console (a browser login).
   */
  via: "slack" | "api" | "break_glass" | "cli" | "console";
}

export type VoteOutcome =
  /** Recorded; more approvals are needed. */
  | { kind: "recorded"; request: ApprovalRequest }
  /** This vote decided the request. */
  | { kind: "decided"; request: ApprovalRequest }
  /** This very action was processed before (Slack retry or replay): nothing changed. */
  | { kind: "duplicate_action"; request: ApprovalRequest }
  /** The approver already voted on this request. */
  | { kind: "already_voted"; request: ApprovalRequest }
  | { kind: "already_decided"; request: ApprovalRequest }
  | { kind: "self_approval_refused"; request: ApprovalRequest }
  /** The vote cannot be shown to come from someone other than the requester (four-eyes.ts); `message` says how to decide instead. */
  | { kind: "approver_unproven"; request: ApprovalRequest; message: string }
  | { kind: "unauthorized"; request: ApprovalRequest; groups: string[] }
  | { kind: "not_found" };

/** Who may decide: resolves approver groups (e-mail lists, Slack user groups). */
export interface ApproverDirectory {
  isMember(group: string, approver: Approver): Promise<boolean>;
}

/**
 * Tells people about requests (the Slack bot implements it). Each method may throw: the service
 * retries with back-off and records the failure. Returned references are stored on the request.
 */
export interface ApprovalNotifier {
  /** Posts the approval message and DMs the requester. */
  requested(req: ApprovalRequest): Promise<SlackRefs>;
  /** Shows the decision (buttons gone) and follows up with the requester. */
  decided(req: ApprovalRequest): Promise<void>;
  /** A reminder that the request is still pending. */
  reminder(req: ApprovalRequest): Promise<void>;
  /** Asks the escalation group; returns the message posted in its own channel, if any. */
  escalated(req: ApprovalRequest): Promise<SlackRefs | undefined | void>;
  /** A real-time security alert (tool definition changed, chain verification failed). */
  securityAlert?(alert: SecurityAlert): Promise<void>;
}

/** Something security people must hear of now, not in next week's digest. Plain text; the notifier escapes it. */
export interface SecurityAlert {
  kind: "tool_definition_changed" | "chain_verification_failed";
  /** One line: what happened. */
  title: string;
  connection?: string | undefined;
  tool?: string | undefined;
  /** A sentence or two. */
  summary: string;
  /** The diff, one change per line. */
  diff?: string[] | undefined;
  /** What to run once it is understood (the re-pin command, the verify command). */
  command?: string | undefined;
  /** When it was detected. */
  at: Date;
}

export interface SlackRefs {
  channel: string;
  ts: string;
  permalink?: string | undefined;
  requesterDmChannel?: string | undefined;
  requesterDmTs?: string | undefined;
}

export interface Decision {
  status: Exclude<ApprovalStatus, "pending">;
  decidedBy: string | null;
  reason: string | null;
  decidedAt: Date | null;
}
