// The approval messages as Block Kit, built by typed functions (bot/blocks.ts) that escape every
// value first and then fit it to Slack's limits: the approval message, the Deny and Details
// modals, the requester's DMs, reminders and ephemeral answers.
import type { KnownBlock, ModalView } from "@slack/types";
import type { ApprovalRequest, ApprovalVote } from "../gateway/approvals/types.js";
import { askAgainHint, duration } from "../gateway/approvals/notice.js";
import type { SessionContext } from "../gateway/store/session-context.js";
import { summarizeArguments } from "./arguments.js";
import {
  actions,
  button,
  capBlocks,
  clip,
  confirmDialog,
  context,
  escapeMrkdwn as esc,
  fields,
  fit,
  fitList,
  header,
  LIMITS,
  link,
  plain,
  section,
  slackDate,
  subteamMention,
  thousands,
  userMention,
} from "./blocks.js";

export interface SlackMessage {
  text: string;
  blocks: KnownBlock[];
}

export const ACTION_APPROVE = "countersign_approve";
export const ACTION_DENY = "countersign_deny";
export const ACTION_DETAILS = "countersign_details";
export const VIEW_DENY = "countersign_deny";

const OUTCOME: Record<string, { word: string; emoji: string }> = {
  approved: { word: "Approved", emoji: ":white_check_mark:" },
  denied: { word: "Denied", emoji: ":no_entry:" },
  expired: { word: "Expired", emoji: ":hourglass:" },
  pending: { word: "Pending", emoji: ":hourglass_flowing_sand:" },
};

/** Raw (unescaped) label of the requester. */
export function requesterLabel(r: ApprovalRequest): string {
  const q = r.requester;
  const who = q.name && q.email ? `${q.name} (${q.email})` : (q.email ?? q.name ?? q.subject);
  return q.kind === "service" ? `service account ${who}` : who;
}

/** `conn` / `tool`, escaped and short. */
const target = (r: ApprovalRequest) => `\`${fit(r.connection, 100, { tail: 0 })}\` / \`${fit(r.tool, 150)}\``;
const who = (r: ApprovalRequest, max = 200) => fit(requesterLabel(r), max);
/** Top-level `text` (notifications, screen readers): plain words, escaped, short. */
const topText = (s: string) => clip(s, LIMITS.messageText);

export interface RequestView {
  /** Votes so far (voters as mentions, break-glass votes marked). */
  votes?: ApprovalVote[] | undefined;
  /** The copy posted in the escalation group's channel. */
  escalation?: { mentions: string[]; originalPermalink?: string | undefined } | undefined;
  /** Client, source address, session. */
  session?: SessionContext | undefined;
  /** The rule asks approvers to confirm Approve (approval.confirm: true). */
  confirm?: boolean | undefined;
  /** Link to the session's replay in the console, when there is one. */
  replayUrl?: string | undefined;
}

/** Whom a vote or decision names: a Slack mention when the vote came through Slack. */
function voterLabel(email: string | null, votes: ApprovalVote[]): string {
  if (!email) return "nobody";
  const v = votes.find((x) => x.approver === email);
  return userMention(v?.slackUserId, email);
}

const BREAK_GLASS = "break_glass";

function sessionLine(r: ApprovalRequest, v: RequestView): string | undefined {
  const s = v.session;
  const parts: string[] = [];
  if (s?.clientName) parts.push(`:computer: ${fit(`${s.clientName}${s.clientVersion ? ` ${s.clientVersion}` : ""}`, 140)}`);
  else if (s?.userAgent) parts.push(`:computer: ${fit(s.userAgent, 140)}`);
  if (s?.remoteAddress) parts.push(`from ${fit(s.remoteAddress, 64)}`);
  if (r.sessionId) {
    const replay = link(v.replayUrl, "replay");
    parts.push(`session \`${fit(r.sessionId, 80)}\`${replay ? ` (${replay})` : ""}`);
  }
  return parts.length > 0 ? parts.join(" · ") : undefined;
}

/**
 * The approval message (buttons while pending; the outcome once decided). `view.escalation`: the
 * copy posted in the escalation group's own channel, which says why it is there.
 */
export function renderRequestMessage(r: ApprovalRequest, votesOrView: ApprovalVote[] | RequestView = [], escalation?: RequestView["escalation"]): SlackMessage {
  const v: RequestView = Array.isArray(votesOrView) ? { votes: votesOrView, escalation } : { ...votesOrView, ...(escalation ? { escalation } : {}) };
  const votes = v.votes ?? [];
  const pending = r.status === "pending";
  const o = OUTCOME[r.status] ?? OUTCOME.pending!;
  const blocks: KnownBlock[] = [];
  blocks.push(header(`${pending ? "Approval needed" : o.word}: ${r.connection} / ${r.tool}`));

  if (v.escalation && pending) {
    const mentions = v.escalation.mentions.map(subteamMention).filter(Boolean).join(" ");
    const original = link(v.escalation.originalPermalink, "The original request");
    blocks.push(
      section(
        `:rotating_light: *Escalated to ${fit(r.escalationGroup ?? "", 80)}*${mentions ? ` ${mentions}` : ""}: no decision from *${fit(r.approverGroup, 80)}* since ${slackDate(r.createdAt, "{time}")}. Members of either group may decide here.${original ? ` ${original}` : ""}`,
        "escalation",
      ),
    );
  }

  const q = r.requester;
  const kind = q.kind === "service" ? "service account" : q.kind === "anonymous" ? "anonymous caller" : "person";
  const whoField = `*Who*\n${fit(q.name ?? q.subject, 300)}${q.email ? `\n${fit(q.email, 254)}` : ""}${q.name && q.name !== q.subject ? `\n\`${fit(q.subject, 200)}\`` : ""}\n_${kind}_`;
  // At most 12 groups by name: Entra ID tokens often carry 100-200.
  const groupsField = `*Groups* (${thousands(q.groups.length)})\n${q.groups.length ? fitList(q.groups, LIMITS.fieldText - 40, (g) => `\`${fit(g, 64)}\``, " ", 12) : "none"}`;
  blocks.push(fields([whoField, groupsField, `*Connection*\n\`${fit(r.connection, 300)}\``, `*Tool*\n\`${fit(r.tool, 300)}\``], "who_what"));
  const where = sessionLine(r, v);
  if (where) blocks.push(context([where], "session"));

  // Arguments: the fixed text around the lines is counted in the section's budget.
  const prefixLen = "*Arguments* (masked) · 99,999 of 99,999 keys shown · long values shortened: see Details\n``````".length;
  const args = summarizeArguments(r.maskedArguments, LIMITS.sectionText - prefixLen);
  const keysNote = args.totalKeys > 1 || args.shownKeys < args.totalKeys ? ` · ${thousands(args.shownKeys)} of ${thousands(args.totalKeys)} keys shown` : "";
  blocks.push(section(`*Arguments* (masked)${keysNote}${args.folded ? " · long values shortened: see Details" : ""}\n\`\`\`${args.text || " "}\`\`\``, "arguments"));
  for (const s of args.sql) blocks.push(section(`*SQL in \`${fit(s.key, 60)}\`*: ${s.description}`, `sql:${s.key.slice(0, 200)}`));

  const rule = r.ruleId ? `Rule \`${fit(r.ruleId, 100)}\`` : "The connection's default policy";
  blocks.push(
    section(
      `*Why it was held*\n${rule}${r.ruleDescription ? `: ${fit(r.ruleDescription, 1000)}` : ""}\nNeeds ${r.approvalsNeeded} approval${r.approvalsNeeded > 1 ? "s" : ""} from *${fit(r.approverGroup, 80)}*${r.escalationGroup ? ` (escalated to *${fit(r.escalationGroup, 80)}*)` : ""}`,
      "why",
    ),
  );
  if (r.justification) blocks.push(section(`*Justification*\n>${fit(r.justification, 2000).replace(/\n/g, "\n>")}`, "justification"));

  const approvals = votes.filter((x) => x.decision === "approve");
  if (r.approvalsNeeded > 1 || approvals.length > 0) {
    const voters = approvals.map((x) => `${userMention(x.slackUserId, x.approver)}${x.via === BREAK_GLASS ? " (break-glass)" : ""}`);
    blocks.push(context([`:ballot_box_with_check: *${r.approveCount} of ${r.approvalsNeeded}* approvals${voters.length ? `: ${fitList(voters, 2500, (s) => s, ", ")}` : ""}`], "votes"));
  }

  if (pending) {
    const approve = button({
      actionId: ACTION_APPROVE,
      text: "Approve",
      value: r.id,
      style: "primary",
      confirm: v.confirm
        ? confirmDialog(
            "Approve this call?",
            `${target(r)} for ${who(r, 80)}. The rule asks for a second look: read the arguments (Details) first. The call runs once.`,
            "Approve",
            "Not yet",
            "primary",
          )
        : undefined,
    });
    blocks.push(actions([approve, button({ actionId: ACTION_DENY, text: "Deny", value: r.id, style: "danger" }), button({ actionId: ACTION_DETAILS, text: "Details", value: r.id })], `decide:${r.id}`));
  } else {
    const decider = votes.find((x) => x.approver === r.decidedBy && (r.status === "approved" ? x.decision === "approve" : x.decision === "deny"));
    const breakGlass = decider?.via === BREAK_GLASS;
    const by = r.decidedBy ? ` by ${voterLabel(r.decidedBy, votes)}` : "";
    const reason = r.status === "expired" ? "No decision before the request expired." : r.decisionReason;
    const line = breakGlass
      ? `:rotating_light: *${o.word} by break-glass*${by} ${slackDate(r.decidedAt ?? new Date())}: decided from the command line against the database, not through Slack or the approvals API.`
      : `${o.emoji} *${o.word}*${by} ${slackDate(r.decidedAt ?? new Date())}`;
    blocks.push(section(`${line}${reason ? `\n>${fit(reason, 1500).replace(/\n/g, "\n>")}` : breakGlass ? "\n>_no reason given_" : ""}`, "outcome"));
    blocks.push(actions([button({ actionId: ACTION_DETAILS, text: "Details", value: r.id })], `details:${r.id}`));
  }

  // A decided message no longer says when it expires.
  blocks.push(
    context(
      [pending ? `Asked ${slackDate(r.createdAt)} · expires ${slackDate(r.expiresAt)} · request \`${fit(r.id, 80)}\`` : `Asked ${slackDate(r.createdAt)} · request \`${fit(r.id, 80)}\``],
      "when",
    ),
  );
  return { text: topText(`${pending ? "Approval needed" : o.word}: ${esc(r.connection)} / ${esc(r.tool)} requested by ${who(r)}`), blocks: capBlocks(blocks, LIMITS.messageBlocks) };
}

export function renderDenyModal(r: ApprovalRequest): ModalView {
  return {
    type: "modal",
    callback_id: VIEW_DENY,
    private_metadata: r.id.slice(0, LIMITS.privateMetadata),
    title: plain("Deny request", LIMITS.modalTitle),
    submit: plain("Deny", LIMITS.modalButton),
    close: plain("Cancel", LIMITS.modalButton),
    blocks: [
      section(`Deny ${target(r)} requested by ${who(r)}?`),
      {
        type: "input",
        block_id: "reason",
        label: plain("Reason (the requester sees it)", LIMITS.inputLabel),
        element: { type: "plain_text_input", action_id: "reason", multiline: true, max_length: 500 },
      },
    ],
  };
}

/** Splits raw text into pieces whose escaped form fits `limit` (never inside a character or an entity). */
function chunksOf(raw: string, limit: number, max: number): { chunks: string[]; rest: number } {
  const chunks: string[] = [];
  let i = 0;
  while (i < raw.length && chunks.length < max) {
    let len = 0;
    let j = i;
    while (j < raw.length) {
      const ch = raw.codePointAt(j)!;
      const w = ch === 38 ? 5 : ch === 60 || ch === 62 ? 4 : 1;
      const size = ch > 0xffff ? 2 : 1;
      if (len + w > limit) break;
      len += w;
      j += size;
    }
    chunks.push(esc(raw.slice(i, j)));
    i = j;
  }
  return { chunks, rest: raw.length - i };
}

export function renderDetailsModal(r: ApprovalRequest): ModalView {
  const text = (JSON.stringify(r.maskedArguments, null, 2) ?? "null").replace(/```/g, "`\u200b``");
  // 100 blocks per view: the heading, the chunks, and the footer.
  const { chunks, rest } = chunksOf(text, LIMITS.sectionText - 6, LIMITS.modalBlocks - 2);
  return {
    type: "modal",
    title: plain("Request details", LIMITS.modalTitle),
    close: plain("Close", LIMITS.modalButton),
    blocks: [
      section(`${target(r)} requested by ${who(r)} · request \`${fit(r.id, 80)}\` · ${thousands(text.length)} characters of arguments`),
      ...chunks.map((c) => section(`\`\`\`${c}\`\`\``)),
      context([
        rest > 0
          ? `Arguments are shown masked, as recorded. ${thousands(rest)} more characters are not shown here: \`countersign approvals show ${fit(r.id, 80)}\` prints them all.`
          : "Arguments are shown masked, as recorded.",
      ]),
    ],
  };
}

export interface DmView {
  permalink?: string | null | undefined;
  /** The channel the approvers are asked in. */
  channel?: string | undefined;
  now?: Date | undefined;
}

/** The requester's DM when the call is held: where approvers are asked, since when, until when. */
export function renderRequesterDm(r: ApprovalRequest, permalinkOrView: string | undefined | DmView): SlackMessage {
  const v: DmView = typeof permalinkOrView === "object" && permalinkOrView !== null ? permalinkOrView : { permalink: permalinkOrView };
  const channel = v.channel && /^[CG][A-Z0-9]{2,20}$/.test(v.channel) ? ` in <#${v.channel}>` : "";
  const msg = link(v.permalink, "the approval request");
  const needed = r.approvalsNeeded > 1 ? ` (${r.approvalsNeeded} approvals needed)` : "";
  const waitFor = duration(r.expiresAt.getTime() - r.createdAt.getTime());
  return {
    text: topText(`Your call to ${esc(r.connection)} / ${esc(r.tool)} is paused waiting for approval by ${esc(r.approverGroup)}`),
    blocks: [
      section(
        `:hourglass_flowing_sand: Your call to ${target(r)} is paused: *${fit(r.approverGroup, 80)}* ${needed ? `${needed} ` : ""}are asked to approve it${channel}.${msg ? ` See ${msg}.` : ""}\nIt waits up to ${waitFor}, until ${slackDate(r.expiresAt, "{time}")}. I will write here when it is decided.`,
      ),
      context([`Asked ${slackDate(r.createdAt)} · expires ${slackDate(r.expiresAt)} · request \`${fit(r.id, 80)}\``]),
    ],
  };
}

/** Follows up the requester's DM with the decision; an expiry says how to ask again. */
export function renderRequesterFollowUp(r: ApprovalRequest, votes: ApprovalVote[] = []): SlackMessage {
  const o = OUTCOME[r.status] ?? OUTCOME.pending!;
  const by = r.decidedBy ? ` by ${voterLabel(r.decidedBy, votes)}` : "";
  const reason = r.status === "expired" ? "No decision before the request expired." : r.decisionReason;
  const next =
    r.status === "approved" ? "\nRetry the same call to run it (it runs once)." : r.status === "expired" ? `\n${esc(askAgainHint(r))}` : "";
  return {
    text: topText(`Your call to ${esc(r.connection)} / ${esc(r.tool)} was ${o.word.toLowerCase()}${r.decidedBy ? ` by ${esc(r.decidedBy)}` : ""}`),
    blocks: [
      section(`${o.emoji} Your call to ${target(r)} was *${o.word.toLowerCase()}*${by}.${reason ? `\n>${fit(reason, 1500).replace(/\n/g, "\n>")}` : ""}${next}`),
      context([`Request \`${fit(r.id, 80)}\``]),
    ],
  };
}

export interface ReminderView {
  /** Escalation: the group asked now, its user groups to mention, its channel when separate. */
  escalation?: { group: string; mentions: string[]; channel?: string | undefined } | undefined;
  /** The approver group's Slack user groups: a reminder mentions them. */
  approverMentions?: string[] | undefined;
  now?: Date | undefined;
}

export function renderReminder(r: ApprovalRequest, escalationOrView?: ReminderView["escalation"] | ReminderView): SlackMessage {
  const v: ReminderView = escalationOrView && "group" in escalationOrView ? { escalation: escalationOrView } : ((escalationOrView as ReminderView | undefined) ?? {});
  const e = v.escalation;
  const mentions = (e ? e.mentions : (v.approverMentions ?? [])).map(subteamMention).filter(Boolean).join(" ");
  const waited = duration((v.now ?? new Date()).getTime() - r.createdAt.getTime());
  const lead = e
    ? `:rotating_light: Escalated to *${fit(e.group, 80)}*${e.channel && /^[CG][A-Z0-9]{2,20}$/.test(e.channel) ? ` in <#${e.channel}>` : ""}${mentions ? ` ${mentions}` : ""}: `
    : `:bell: Reminder${mentions ? ` ${mentions}` : ` for *${fit(r.approverGroup, 80)}*`}: `;
  return {
    text: topText(`${e ? "Escalated" : "Reminder"}: ${esc(r.connection)} / ${esc(r.tool)} still waiting for approval`),
    blocks: [
      section(`${lead}${target(r)} requested by ${who(r)} has waited ${waited} (${r.approveCount} of ${r.approvalsNeeded} approvals). Expires ${slackDate(r.expiresAt, "{time}")}.`),
    ],
  };
}

/** Shown only to the person who clicked. `text` is trusted mrkdwn built by the handlers (values escaped there). */
export function renderEphemeral(approvalId: string, text: string): SlackMessage {
  return {
    text: topText(text),
    blocks: [section(text), context([`Request \`${fit(approvalId, 80)}\` · every click is recorded`])],
  };
}

/** Kept for callers that show a pretty preview: the arguments summary as text. */
export function prettyArguments(args: unknown): { preview: string; folded: boolean } {
  const s = summarizeArguments(args, LIMITS.sectionText - 100);
  return { preview: s.text, folded: s.folded };
}
