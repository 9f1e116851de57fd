// What happens when someone clicks: Approve, Deny (a modal asks the reason), Details (a modal
// with the full masked arguments). Each handler acknowledges Slack first (Slack wants an answer
// within 3 s), then lets the approvals service apply the rules of decision. Clicks that do not
// count get an ephemeral explanation; processed actions replayed or retried change nothing.
import type { App, BlockButtonAction, ViewSubmitAction } from "@slack/bolt";
import type { WebClient } from "@slack/web-api";
import type { ApprovalService } from "../gateway/approvals/service.js";
import type { Approver, VoteOutcome } from "../gateway/approvals/types.js";
import type { Logger } from "../gateway/log.js";
import type { SlackDirectory } from "./directory.js";
import type { SlackNotifier } from "./notifier.js";
import { escapeMrkdwn as esc } from "./blocks.js";
import { ACTION_APPROVE, ACTION_DENY, ACTION_DETAILS, VIEW_DENY, renderDenyModal, renderDetailsModal, renderEphemeral } from "./render.js";

export { ACTION_APPROVE, ACTION_DENY, ACTION_DETAILS, VIEW_DENY };

interface HandlerDeps {
  service: ApprovalService;
  directory: SlackDirectory;
  notifier: SlackNotifier;
  log: Logger;
}

/**
 * Slack's answers that no retry will change: the click cannot count until someone fixes the
 * bot's scopes or the mapping, so the clicker is told what to fix, not to try again.
 */
const PERMANENT: Record<string, (userId: string) => string> = {
  missing_scope: () => "Countersign cannot read Slack profiles: the bot needs the users:read and users:read.email scopes (ask a Slack admin to add them and reinstall the app), or an admin maps your Slack user id to your e-mail in approvals.slack.users",
  user_not_found: (u) => `Slack does not know your user id ${u} in this workspace (a guest or another workspace?): an admin can map it to your e-mail in approvals.slack.users`,
  user_not_visible: (u) => `Slack does not let the bot see your profile (${u}): an admin can map your user id to your e-mail in approvals.slack.users`,
  account_inactive: () => "the bot's Slack token is no longer valid: an admin must reinstall the app and update approvals.slack.botToken",
  invalid_auth: () => "the bot's Slack token is no longer valid: an admin must reinstall the app and update approvals.slack.botToken",
  not_allowed_token_type: () => "approvals.slack.botToken is not a bot token (xoxb-…): an admin must fix it",
};

/** The approver behind a Slack user; a user without a known e-mail can never count. */
async function approverOf(directory: SlackDirectory, userId: string): Promise<{ approver: Approver; problem?: string | undefined }> {
  let id;
  try {
    id = await directory.identify(userId);
  } catch (err) {
    const code = (err as { data?: { error?: string } }).data?.error;
    const fix = code ? PERMANENT[code] : undefined;
    if (!fix) throw err; // transient (rate limit, Slack or network down): "try again" is right
    return { approver: { email: `slack:${userId}` }, problem: fix(userId) };
  }
  if (!id.email) return { approver: { email: `slack:${userId}`, name: id.name }, problem: id.problem };
  return { approver: { email: id.email, name: id.name, slackUserId: userId } };
}

function explain(o: VoteOutcome, problem?: string): string | undefined {
  switch (o.kind) {
    case "not_found":
      return "This approval request no longer exists.";
    case "self_approval_refused":
      return "You asked for this call, so you cannot decide on it: someone else in the approver group must (four-eyes rule, admins included). Your click was recorded.";
    case "approver_unproven":
      return o.message;
    case "unauthorized":
      return problem
        ? `Your click was not counted: ${esc(problem)}. It was recorded.`
        : `Your click was not counted: you are not in the approver group${o.groups.length > 1 ? "s" : ""} *${o.groups.map(esc).join("*, *")}* for this request. If you should be, an admin adds your e-mail (or a Slack user group you are in) to approvals.groups. It was recorded.`;
    case "already_voted":
      return "You have already voted on this request; each approver counts once.";
    case "already_decided":
      return `This request is already ${o.request.status}${o.request.decidedBy ? ` (by ${esc(o.request.decidedBy)})` : ""}: nothing changed.`;
    case "recorded":
      return `Your approval is recorded: ${o.request.approveCount} of ${o.request.approvalsNeeded}. More approvers are needed.`;
    case "decided":
    case "duplicate_action":
      return undefined;
  }
}

export function registerHandlers(app: App, deps: HandlerDeps): void {
  const { service, directory, notifier, log } = deps;

  const tell = async (client: WebClient, channel: string | undefined, user: string, approvalId: string, text: string) => {
    if (!channel) return;
    const m = renderEphemeral(approvalId, text);
    await client.chat.postEphemeral({ channel, user, text: m.text, blocks: m.blocks }).catch((err) => log.warn({ err }, "approvals: ephemeral message failed"));
  };

  const after = async (client: WebClient, outcome: VoteOutcome, channel: string | undefined, user: string, approvalId: string, problem?: string) => {
    const text = explain(outcome, problem);
    if (text) await tell(client, channel, user, approvalId, text);
    if (outcome.kind === "recorded") await notifier.progress(outcome.request).catch((err) => log.warn({ err }, "approvals: could not show votes"));
  };

  // A failure to check (Slack or the database unavailable) is explained to the clicker; nothing was decided.
  const guarded = async (client: WebClient, channel: string | undefined, user: string, approvalId: string, work: () => Promise<void>) => {
    try {
      await work();
    } catch (err) {
      log.warn({ approvalId, err }, "approvals: click could not be processed");
      await tell(client, channel, user, approvalId, "Your click could not be processed (Countersign could not check it right now). Nothing was decided: try again in a moment.");
    }
  };

  app.action<BlockButtonAction>(ACTION_APPROVE, async ({ ack, body, action, client }) => {
    await ack();
    const approvalId = action.value ?? "";
    const channel = body.channel?.id ?? body.container?.channel_id;
    await guarded(client, channel, body.user.id, approvalId, async () => {
      const { approver, problem } = await approverOf(directory, body.user.id);
      const outcome = await service.vote({ requestId: approvalId, approver, decision: "approve", actionKey: `${body.user.id}:${action.action_ts}`, via: "slack" });
      await after(client, outcome, channel, body.user.id, approvalId, problem);
    });
  });

  app.action<BlockButtonAction>(ACTION_DENY, async ({ ack, body, action, client }) => {
    await ack();
    const approvalId = action.value ?? "";
    const channel = body.channel?.id ?? body.container?.channel_id;
    await guarded(client, channel, body.user.id, approvalId, async () => {
      const { approver, problem } = await approverOf(directory, body.user.id);
      // Refuse before asking for a reason: a person who cannot decide gets the explanation instead.
      const refused = await service.admit(approvalId, approver, "deny", "slack");
      if (refused) return after(client, refused, channel, body.user.id, approvalId, problem);
      const req = await service.store.get(approvalId);
      if (req) await client.views.open({ trigger_id: body.trigger_id, view: renderDenyModal(req) });
    });
  });

  app.action<BlockButtonAction>(ACTION_DETAILS, async ({ ack, body, action, client }) => {
    await ack();
    const req = await service.store.get(action.value ?? "");
    if (req) await client.views.open({ trigger_id: body.trigger_id, view: renderDetailsModal(req) });
  });

  app.view<ViewSubmitAction>(VIEW_DENY, async ({ ack, body, view, client }) => {
    const reason = view.state.values.reason?.reason?.value?.trim();
    if (!reason) return void (await ack({ response_action: "errors", errors: { reason: "Say why the call is denied: the requester sees it." } }));
    await ack();
    const approvalId = view.private_metadata;
    const channel = (await service.store.get(approvalId).catch(() => undefined))?.slack.channel ?? undefined;
    await guarded(client, channel, body.user.id, approvalId, async () => {
      const { approver, problem } = await approverOf(directory, body.user.id);
      // The view id names this submission: a retried or replayed submission finds it taken.
      const outcome = await service.vote({ requestId: approvalId, approver, decision: "deny", reason, actionKey: `view:${view.id}`, via: "slack" });
      await after(client, outcome, channel, body.user.id, approvalId, problem);
    });
  });
}
