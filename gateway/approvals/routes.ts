// The approvals API: deciding held calls without Slack, authenticated as an identity. A bearer
// token with the audience <publicUrl>/approvals names the approver (its e-mail claim); the
// service applies the same rules as a Slack click (approver group by e-mail, no self-approval,
// N-of-M, one Deny ends it), so a decision here releases a held call exactly like a click.
//
//   GET  /approvals                 requests visible to the caller (?status=pending|approved|denied|expired|all, ?limit=)
//   GET  /approvals/:id             one request with its votes
//   POST /approvals/:id/approve     {reason?}
//   POST /approvals/:id/deny        {reason}
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ConnectionConfig, GatewayConfig } from "../config/load.js";
import type { Authenticator } from "../auth/authenticator.js";
import type { Identity } from "../auth/identity.js";
import { CountersignError, sendError } from "../errors.js";
import { isSelfApproval, type ApprovalService } from "./service.js";
import type { ApprovalRequest, ApprovalStatus, ApprovalVote, Approver, VoteOutcome } from "./types.js";
import { consoleUrlFor } from "../console/links.js";

export const approvalsAudience = (publicUrl: string): string => `${publicUrl}/approvals`;

const STATUSES = ["pending", "approved", "denied", "expired"] as const;

/** What the API shows of a request: no argument hash (it would let a reader test guesses), no Slack internals. */
export function approvalView(r: ApprovalRequest, mayDecide: boolean | null, votes?: ApprovalVote[], publicUrl?: string) {
  return {
    id: r.id,
    /** The request's page in the web console, where it can be decided. */
    ...(publicUrl ? { consoleUrl: consoleUrlFor(r.id, publicUrl) } : {}),
    status: r.status,
    connection: r.connection,
    tool: r.tool,
    arguments: r.maskedArguments,
    requester: { subject: r.requester.subject, email: r.requester.email ?? null, name: r.requester.name ?? null, kind: r.requester.kind, groups: r.requester.groups },
    rule: { id: r.ruleId, description: r.ruleDescription },
    justification: r.justification,
    approverGroup: r.approverGroup,
    escalationGroup: r.escalationGroup,
    approvalsNeeded: r.approvalsNeeded,
    approveCount: r.approveCount,
    createdAt: r.createdAt.toISOString(),
    expiresAt: r.expiresAt.toISOString(),
    decidedAt: r.decidedAt?.toISOString() ?? null,
    decidedBy: r.decidedBy,
    decisionReason: r.decisionReason,
    forwarded: r.forwardedAt !== null,
    /** The caller may vote on it: a member of its groups, not its requester, and it is pending (null: unknown, break-glass without --as). */
    mayDecide,
    ...(votes ? { votes: votes.map((v) => ({ approver: v.approver, decision: v.decision, reason: v.reason, via: v.via, at: v.at.toISOString() })) } : {}),
  };
}

export type ApprovalView = ReturnType<typeof approvalView>;

export interface ApprovalsApiDeps {
  config: GatewayConfig;
  authenticator: Authenticator;
  service: ApprovalService;
}

export function registerApprovalsApi(app: FastifyInstance, deps: ApprovalsApiDeps): void {
  const { config, authenticator, service } = deps;
  // Any authenticated identity may call the API; what it may see and decide is the service's rules.
  const pseudo: ConnectionConfig = { ...config.connections[0]!, name: "approvals", access: { anonymous: false, tools: [] } };

  const approverOf = async (req: FastifyRequest): Promise<{ identity: Identity; approver: Approver }> => {
    const identity = await authenticator.authenticate(pseudo, req.headers.authorization, req.ip, approvalsAudience(config.publicUrl), req.id);
    if (!identity.email) throw new CountersignError("CS_ERR_APPROVER_NO_EMAIL", `subject '${identity.subject}' of ${identity.issuer}`);
    return { identity, approver: { email: identity.email.toLowerCase(), name: identity.name, subject: identity.subject, issuer: identity.issuer } };
  };

  const mayDecide = async (r: ApprovalRequest, a: Approver) => r.status === "pending" && !isSelfApproval(r, a.email, a) && (await service.mayDecide(r, a));
  /** Members of the request's groups and its requester see it; nobody else learns it exists. */
  const visible = async (r: ApprovalRequest, a: Approver) => isSelfApproval(r, a.email, a) || (await service.mayDecide(r, a));

  const fail = (reply: FastifyReply, err: unknown) => sendError(reply, err);

  app.get<{ Querystring: { status?: string; limit?: string } }>("/approvals", async (req, reply) => {
    try {
      const { approver } = await approverOf(req);
      const status = req.query.status ?? "pending";
      if (status !== "all" && !(STATUSES as readonly string[]).includes(status)) {
        throw new CountersignError("CS_ERR_INVALID_REQUEST", `status '${status}' is not one of ${STATUSES.join(", ")}, all`);
      }
      const limit = Math.min(500, Math.max(1, Number(req.query.limit) || 50));
      // Read more than asked, then keep what the caller may see.
      const rows = await service.store.list({ status: status === "all" ? undefined : (status as ApprovalStatus), limit: 1000 });
      const out: ApprovalView[] = [];
      for (const r of rows) {
        if (out.length >= limit) break;
        if (await visible(r, approver)) out.push(approvalView(r, await mayDecide(r, approver), undefined, config.publicUrl));
      }
      return reply.send({ approver: approver.email, requests: out });
    } catch (err) {
      return fail(reply, err);
    }
  });

  app.get<{ Params: { id: string } }>("/approvals/:id", async (req, reply) => {
    try {
      const { approver } = await approverOf(req);
      const r = await service.store.get(req.params.id);
      if (!r) throw new CountersignError("CS_ERR_APPROVAL_NOT_FOUND", req.params.id);
      if (!(await visible(r, approver))) throw notAnApprover(approver.email, [r.approverGroup, ...(r.escalationGroup ? [r.escalationGroup] : [])]);
      return reply.send(approvalView(r, await mayDecide(r, approver), await service.store.votes(r.id), config.publicUrl));
    } catch (err) {
      return fail(reply, err);
    }
  });

  for (const decision of ["approve", "deny"] as const) {
    app.post<{ Params: { id: string } }>(`/approvals/:id/${decision}`, async (req, reply) => {
      try {
        const { approver } = await approverOf(req);
        const reason = reasonOf(req.body);
        if (decision === "deny" && !reason) throw new CountersignError("CS_ERR_DENY_REASON_REQUIRED");
        const outcome = await service.vote({ requestId: req.params.id, approver, decision, reason, via: "api" });
        const r = refusal(outcome, approver.email, req.params.id);
        if (r) throw r;
        const decided = outcome as Extract<VoteOutcome, { kind: "recorded" | "decided" }>;
        return reply.send({ outcome: decided.kind, request: approvalView(decided.request, false, undefined, config.publicUrl) });
      } catch (err) {
        return fail(reply, err);
      }
    });
  }
}

function notAnApprover(email: string, groups: string[]): CountersignError {
  return new CountersignError("CS_ERR_NOT_AN_APPROVER", `${email} is not in ${groups.length > 1 ? "any of the groups" : "the group"} ${groups.join(", ")}`);
}

/** The body is kept as text by the server: `{"reason": "..."}`, or nothing. */
function reasonOf(body: unknown): string | undefined {
  if (body === undefined || body === null || body === "") return undefined;
  let parsed: unknown = body;
  if (typeof body === "string") {
    try {
      parsed = JSON.parse(body);
    } catch {
      throw new CountersignError("CS_ERR_PARSE");
    }
  }
  const reason = (parsed as { reason?: unknown } | null)?.reason;
  if (reason !== undefined && typeof reason !== "string") throw new CountersignError("CS_ERR_INVALID_REQUEST", "reason must be a string");
  return reason?.trim() || undefined;
}

function refusal(o: VoteOutcome, email: string, id: string): CountersignError | undefined {
  switch (o.kind) {
    case "not_found":
      return new CountersignError("CS_ERR_APPROVAL_NOT_FOUND", id);
    case "self_approval_refused":
      return new CountersignError("CS_ERR_SELF_APPROVAL", `${email} asked for ${id}`);
    case "approver_unproven":
      return new CountersignError("CS_ERR_APPROVER_UNPROVEN", `${email} on ${id}`);
    case "unauthorized":
      return notAnApprover(email, o.groups);
    case "already_voted":
      return new CountersignError("CS_ERR_APPROVAL_CLOSED", `${email} has already voted on ${id}`);
    case "already_decided":
    case "duplicate_action":
      return new CountersignError("CS_ERR_APPROVAL_CLOSED", `${id} is already ${o.request.status}${o.request.decidedBy ? ` (by ${o.request.decidedBy})` : ""}`);
    default:
      return undefined;
  }
}
