// The approvals inbox: held calls the person may decide (newest first), one request with its
// votes, and Approve / Deny. Deciding goes through the same ApprovalService.vote as a Slack click
// and the CLI, so four eyes, approver groups, N-of-M and one decision under concurrent clicks
// are its rules, not this page's.
//
//   GET  /console/approvals?view=pending|decided&page=N
//   GET  /console/approvals/:id
//   POST /console/approvals/:id/approve   {_csrf, reason?}
//   POST /console/approvals/:id/deny      {_csrf, reason}
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { isSelfApproval } from "../approvals/service.js";
import type { ApprovalRequest, ApprovalVote, Approver } from "../approvals/types.js";
import type { ConsoleContext } from "./context.js";
import { foldedJson, relative, timeView } from "./render.js";

const PAGE_SIZE = 20;
/** Requests read per listing before filtering by what the person may see (as the approvals API). */
const READ_MAX = 1000;
const REASON_MAX = 500;

const HOW: Record<string, string> = { slack: "Slack", api: "CLI", cli: "CLI", console: "console", break_glass: "break-glass" };

const RESULTS: Record<string, { text: string; error?: boolean }> = {
  approved: { text: "Approved: the held call goes on." },
  denied: { text: "Denied: the caller gets your reason." },
  recorded: { text: "Your approval is recorded; more approvals are needed." },
  self: { text: "Refused: you asked for this call, so someone else must decide it (four eyes).", error: true },
  unproven: { text: "Refused: the requester's token carries no e-mail, so your login cannot be shown to be someone else. Log in through the requester's identity provider, or decide with `countersign approvals approve|deny` and such a token.", error: true },
  unauthorized: { text: "Refused: you are not in the approver group of this request.", error: true },
  closed: { text: "Already decided: nothing changed.", error: true },
  voted: { text: "You have already voted on this request.", error: true },
  reason: { text: "A denial needs a reason: the caller sees it.", error: true },
  email: { text: "Your login carries no e-mail address, which approvers are known by.", error: true },
  unavailable: { text: "The audit store is unavailable: decisions are refused until it recovers.", error: true },
};

export function registerInbox(app: FastifyInstance, ctx: ConsoleContext): void {
  const service = ctx.deps.approvals?.service;

  const approverOf = (req: FastifyRequest): Approver | undefined => {
    const login = ctx.state(req).login!;
    return login.email ? { email: login.email.toLowerCase(), name: login.name, subject: login.subject, issuer: login.issuer } : undefined;
  };

  const access = async (r: ApprovalRequest, a: Approver | undefined, auditor: boolean) => {
    const self = a ? isSelfApproval(r, a.email, a) : false;
    const member = a && service ? await service.mayDecide(r, a) : false;
    return { self, member, visible: self || member || auditor, mayDecide: r.status === "pending" && member && !self };
  };

  const view = (r: ApprovalRequest, acc: { self: boolean; mayDecide: boolean }, votes: ApprovalVote[] | undefined) => {
    const args = foldedJson(r.maskedArguments ?? {});
    const left = r.expiresAt.getTime() - Date.now();
    const deciding = votes?.filter((v) => r.status !== "pending" && v.decision === (r.status === "approved" ? "approve" : "deny")) ?? [];
    return {
      id: r.id,
      href: `/console/approvals/${encodeURIComponent(r.id)}`,
      status: r.status,
      pending: r.status === "pending",
      tool: r.tool,
      connection: r.connection,
      requester: r.requester.email ?? r.requester.subject,
      requesterName: r.requester.name ?? null,
      requesterGroups: r.requester.groups.join(", "),
      rule: r.ruleId ?? "(no rule id)",
      why: r.ruleDescription,
      justification: r.justification,
      args: args.text,
      folded: args.folded,
      hasFolded: args.folded.length > 0,
      progress: `${r.approveCount} of ${r.approvalsNeeded}`,
      approverGroup: [r.approverGroup, r.escalationGroup].filter(Boolean).join(", then "),
      created: timeView(r.createdAt),
      createdAgo: relative(r.createdAt),
      expires: timeView(r.expiresAt),
      timeLeft: left > 0 ? relative(r.expiresAt) : "expired",
      decided: timeView(r.decidedAt),
      decidedBy: r.decidedBy,
      reason: r.decisionReason,
      how: r.status === "expired" ? "expired (nobody decided in time)" : [...new Set(deciding.map((v) => HOW[v.via] ?? v.via))].join(", ") || null,
      forwarded: r.forwardedAt !== null,
      self: acc.self,
      mayDecide: acc.mayDecide,
      votes: votes?.map((v) => ({ approver: v.approver, decision: v.decision, reason: v.reason, how: HOW[v.via] ?? v.via, at: timeView(v.at) })) ?? [],
      hasVotes: (votes?.length ?? 0) > 0,
    };
  };

  const noApprovals = (req: FastifyRequest, reply: FastifyReply) =>
    ctx.page(req, reply, "error", { title: "Approvals", nav: "inbox" }, { heading: "Approvals are not configured", message: "This gateway has no approvals block: no call is ever held." });

  app.get("/", async (_req, reply) => reply.redirect("/console/approvals"));

  app.get<{ Querystring: { view?: string; page?: string } }>("/approvals", async (req, reply) => {
    if (!service) return noApprovals(req, reply);
    const decidedView = req.query.view === "decided";
    const page = Math.max(1, Math.min(50, Number(req.query.page) || 1));
    const a = approverOf(req);
    const auditor = ctx.state(req).roles?.auditor ?? false;
    const rows = decidedView
      ? (await service.store.list({ limit: Math.min(READ_MAX, page * PAGE_SIZE * 4 + 1) })).filter((r) => r.status !== "pending")
      : await service.store.list({ status: "pending", limit: READ_MAX });
    const visible: ReturnType<typeof view>[] = [];
    const want = page * PAGE_SIZE + 1;
    for (const r of rows) {
      if (visible.length >= want) break;
      const acc = await access(r, a, decidedView && auditor);
      if (acc.visible) visible.push(view(r, acc, decidedView ? await service.store.votes(r.id) : undefined));
    }
    const items = visible.slice((page - 1) * PAGE_SIZE, page * PAGE_SIZE);
    const base = `/console/approvals?view=${decidedView ? "decided" : "pending"}`;
    return ctx.page(req, reply, "inbox", { title: decidedView ? "Decided requests" : "Approvals inbox", nav: "inbox" }, {
      items,
      empty: items.length === 0,
      decidedView,
      pendingView: !decidedView,
      noEmail: !a,
      prev: page > 1 ? `${base}&page=${page - 1}` : null,
      next: visible.length > page * PAGE_SIZE ? `${base}&page=${page + 1}` : null,
      page,
    });
  });

  app.get<{ Params: { id: string }; Querystring: { result?: string } }>("/approvals/:id", async (req, reply) => {
    if (!service) return noApprovals(req, reply);
    const r = await service.store.get(req.params.id);
    const acc = r ? await access(r, approverOf(req), ctx.state(req).roles?.auditor ?? false) : undefined;
    // Nobody learns a request exists unless they may see it.
    if (!r || !acc?.visible) return ctx.page(req, reply, "error", { title: "Not found", nav: "inbox" }, { heading: "No such request", message: "It does not exist, or you are not among the people who may see it." }, 404);
    const notice = req.query.result ? RESULTS[req.query.result] : undefined;
    return ctx.page(req, reply, "approval", { title: `${r.tool} on ${r.connection}`, nav: "inbox", notice }, { r: view(r, acc, await service.store.votes(r.id)), sessionHref: r.sessionId ? `/console/sessions/${encodeURIComponent(r.sessionId)}` : null, auditor: ctx.state(req).roles?.auditor ?? false });
  });

  for (const decision of ["approve", "deny"] as const) {
    app.post<{ Params: { id: string }; Body: { reason?: string } }>(`/approvals/:id/${decision}`, async (req, reply) => {
      const id = req.params.id;
      const back = (result: string) => reply.redirect(`/console/approvals/${encodeURIComponent(id)}?result=${result}`);
      if (!service) return noApprovals(req, reply);
      const a = approverOf(req);
      if (!a) return back("email");
      const reason = typeof req.body?.reason === "string" ? req.body.reason.trim().slice(0, REASON_MAX) : "";
      if (decision === "deny" && !reason) return back("reason");
      const outcome = await service.vote({ requestId: id, approver: a, decision, reason: reason || undefined, via: "console" });
      const result =
        outcome.kind === "decided" ? (outcome.request.status === "approved" ? "approved" : "denied")
        : outcome.kind === "recorded" ? "recorded"
        : outcome.kind === "self_approval_refused" ? "self"
        : outcome.kind === "approver_unproven" ? "unproven"
        : outcome.kind === "unauthorized" ? "unauthorized"
        : outcome.kind === "already_voted" ? "voted"
        : outcome.kind === "not_found" ? "closed"
        : "closed";
      const r = "request" in outcome ? outcome.request : undefined;
      await ctx
        .record(req, outcome.kind === "decided" || outcome.kind === "recorded" ? "approval_decided" : "approval_refused", { requestId: id, decision, outcome: outcome.kind, tool: r?.tool ?? null }, { sessionId: r?.sessionId ?? null, connection: r?.connection ?? null })
        .catch(() => {});
      if (outcome.kind === "not_found") return ctx.page(req, reply, "error", { title: "Not found", nav: "inbox" }, { heading: "No such request", message: "It does not exist." }, 404);
      return back(result);
    });
  }
}
