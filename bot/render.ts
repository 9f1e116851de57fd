// Block Kit from the mustache templates in templates/slack/. Every {{value}} is escaped for Slack
// mrkdwn (&, <, >) and for a JSON string; the result is parsed, so a template that stops being
// valid JSON fails loudly here, and typed as @slack/types Block Kit (checked by a test that
// type-checks rendered output).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Mustache from "mustache";
import type { KnownBlock, ModalView } from "@slack/types";
import type { ApprovalRequest, ApprovalVote } from "../gateway/approvals/types.js";
import { PACKAGE_ROOT } from "../gateway/paths.js";

export interface SlackMessage {
  text: string;
  blocks: KnownBlock[];
}

const TEMPLATE_DIR = join(PACKAGE_ROOT, "templates", "slack");
const cache = new Map<string, string>();

function template(name: string): string {
  let t = cache.get(name);
  if (t === undefined) {
    t = readFileSync(join(TEMPLATE_DIR, `${name}.mustache`), "utf8");
    Mustache.parse(t);
    cache.set(name, t);
  }
  return t;
}

/** Safe inside a JSON string literal (no surrounding quotes). */
export const jsonText = (s: string): string => JSON.stringify(s).slice(1, -1);
/** Slack mrkdwn control characters, then JSON. */
const mrkdwnJson = (v: unknown): string => jsonText(String(v).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"));

function render<T>(name: string, view: Record<string, unknown>): T {
  const text = Mustache.render(template(name), view, undefined, { escape: mrkdwnJson });
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new Error(`templates/slack/${name}.mustache did not render to JSON: ${(err as Error).message}`);
  }
}

/** Slack's limits: 3000 characters per section text, 150 per header. */
const PREVIEW_CHARS = 2500;
const FOLD_STRING_AT = 200;
const CHUNK_CHARS = 2900;

/** Long string values cut to a preview with the count of what was left out. */
export function foldArguments(value: unknown, at = FOLD_STRING_AT): { value: unknown; folded: boolean } {
  let folded = false;
  const walk = (v: unknown): unknown => {
    if (typeof v === "string" && v.length > at) {
      folded = true;
      return `${v.slice(0, at)}… [+${v.length - at} chars]`;
    }
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return { value: walk(value), folded };
}

export function prettyArguments(args: unknown): { preview: string; folded: boolean } {
  const f = foldArguments(args);
  let text = JSON.stringify(f.value, null, 2) ?? "null";
  let folded = f.folded;
  if (text.length > PREVIEW_CHARS) {
    text = `${text.slice(0, PREVIEW_CHARS)}\n…`;
    folded = true;
  }
  // A ``` inside a value would end the code block early.
  return { preview: text.replace(/```/g, "`\u200b``"), folded };
}

const epoch = (d: Date) => Math.floor(d.getTime() / 1000);
const OUTCOME: Record<string, { word: string; emoji: string }> = {
  approved: { word: "Approved", emoji: ":white_check_mark:" },
  denied: { word: "Denied", emoji: ":no_entry:" },
  expired: { word: "Expired", emoji: ":hourglass:" },
  pending: { word: "Pending", emoji: ":hourglass_flowing_sand:" },
};

export function requesterLabel(r: ApprovalRequest): string {
  const q = r.requester;
  const who = q.name && q.email ? `${q.name} (${q.email})` : (q.email ?? q.name ?? q.subject);
  return q.kind === "service" ? `service account ${who}` : who;
}

function baseView(r: ApprovalRequest): Record<string, unknown> {
  const o = OUTCOME[r.status] ?? OUTCOME.pending!;
  return {
    id: r.id,
    connection: r.connection,
    tool: r.tool,
    requesterLabel: requesterLabel(r),
    approverGroup: r.approverGroup,
    escalationGroup: r.escalationGroup,
    approvalsNeeded: r.approvalsNeeded,
    approveCount: r.approveCount,
    plural: r.approvalsNeeded > 1,
    pending: r.status === "pending",
    approved: r.status === "approved",
    outcomeWord: o.word,
    outcomeLower: o.word.toLowerCase(),
    outcomeEmoji: o.emoji,
    decidedBy: r.decidedBy,
    decisionReason: r.status === "expired" ? "No decision before the request expired." : r.decisionReason,
    decidedEpoch: epoch(r.decidedAt ?? new Date()),
    decidedIso: (r.decidedAt ?? new Date()).toISOString(),
    askedEpoch: epoch(r.createdAt),
    askedIso: r.createdAt.toISOString(),
    expiresEpoch: epoch(r.expiresAt),
    expiresIso: r.expiresAt.toISOString(),
  };
}

/**
 * The approval message (buttons while pending; the outcome once decided). `escalation`: the copy
 * posted in the escalation group's own channel, which says why it is there.
 */
export function renderRequestMessage(r: ApprovalRequest, votes: ApprovalVote[] = [], escalation?: { mentions: string[]; originalPermalink?: string | undefined }): SlackMessage {
  const args = prettyArguments(r.maskedArguments);
  const approvers = votes.filter((v) => v.decision === "approve").map((v) => v.approver);
  const header = `${r.status === "pending" ? "Approval needed" : (OUTCOME[r.status]?.word ?? r.status)}: ${r.connection} / ${r.tool}`;
  return render<SlackMessage>("request", {
    ...baseView(r),
    headerText: jsonText(header.length > 150 ? `${header.slice(0, 149)}…` : header),
    requesterName: r.requester.name ?? r.requester.subject,
    requesterEmail: r.requester.email,
    requesterKindLabel: r.requester.kind === "service" ? "service account" : r.requester.kind === "anonymous" ? "anonymous caller" : "person",
    requesterGroups: r.requester.groups.map((g) => `\`${g}\``),
    argumentsPreview: args.preview,
    folded: args.folded,
    ruleId: r.ruleId,
    ruleDescription: r.ruleDescription,
    justification: r.justification,
    hasVotes: r.approvalsNeeded > 1 && approvers.length > 0,
    approvers,
    escalationNotice: escalation !== undefined && r.status === "pending",
    mentions: (escalation?.mentions ?? []).map((id) => jsonText(`<!subteam^${id}>`)),
    originalPermalink: escalation?.originalPermalink,
  });
}

export function renderDenyModal(r: ApprovalRequest): ModalView {
  return render<ModalView>("deny-modal", baseView(r));
}

export function renderDetailsModal(r: ApprovalRequest): ModalView {
  const text = (JSON.stringify(r.maskedArguments, null, 2) ?? "null").replace(/```/g, "`\u200b``");
  const chunks: Array<{ text: string }> = [];
  // Slack allows 100 blocks per view: two are taken by the header and the footer.
  for (let i = 0; i < text.length && chunks.length < 98; i += CHUNK_CHARS) chunks.push({ text: text.slice(i, i + CHUNK_CHARS) });
  return render<ModalView>("details-modal", { ...baseView(r), chunks });
}

export function renderRequesterDm(r: ApprovalRequest, permalink: string | undefined): SlackMessage {
  return render<SlackMessage>("requester-dm", { ...baseView(r), permalink });
}

export function renderRequesterFollowUp(r: ApprovalRequest): SlackMessage {
  return render<SlackMessage>("requester-followup", baseView(r));
}

export function renderReminder(r: ApprovalRequest, escalation?: { group: string; mentions: string[]; channel?: string | undefined }): SlackMessage {
  return render<SlackMessage>("reminder", {
    ...baseView(r),
    escalated: escalation !== undefined,
    escalationGroup: escalation?.group,
    escalationChannel: escalation?.channel,
    mentions: (escalation?.mentions ?? []).map((id) => jsonText(`<!subteam^${id}>`)),
  });
}

export function renderEphemeral(requestId: string, text: string): SlackMessage {
  return render<SlackMessage>("ephemeral", { id: requestId, text });
}
