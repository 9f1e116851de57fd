// The approvals notifier over Slack's Web API: posts the approval message to the approver group's
// channel, DMs the requester with its permalink, updates the message in place when decided, and
// follows up in the DM. A failure to post the channel message throws (the service retries with
// back-off); the DM and the permalink are extras whose failure is logged, not retried, so a retry
// never posts the channel message twice.
import type { WebClient } from "@slack/web-api";
import type { ApprovalNotifier, ApprovalRequest, ApprovalVote, SecurityAlert, SlackRefs } from "../gateway/approvals/types.js";
import { sessionContext, withClient } from "../gateway/store/session-context.js";
import type { ApprovalStore } from "../gateway/store/approvals.js";
import type { ApprovalsConfig } from "../gateway/config/load.js";
import type { Logger } from "../gateway/log.js";
import type { SlackDirectory } from "./directory.js";
import { renderSecurityAlert } from "./alerts.js";
import { renderReminder, renderRequesterDm, renderRequesterFollowUp, renderRequestMessage, type RequestView } from "./render.js";

export interface NotifierOptions {
  /** Whether the rule that held a call asks approvers to confirm Approve (approval.confirm). */
  confirmRule?: ((connection: string, ruleId: string | null) => boolean) | undefined;
  /** The web console's page of a recorded session, when the console is on. */
  sessionPage?: ((sessionId: string) => string) | undefined;
}

export class SlackNotifier implements ApprovalNotifier {
  constructor(
    private readonly client: WebClient,
    private readonly config: ApprovalsConfig,
    private readonly directory: SlackDirectory,
    private readonly store: ApprovalStore,
    private readonly log: Logger,
    private readonly options: NotifierOptions = {},
  ) {}

  channelOf(group: string): string {
    return this.config.groups[group]?.channel ?? this.config.slack!.channel;
  }

  /** What the approval message shows beyond the request: session, confirm, votes. */
  async #view(req: ApprovalRequest, votes: ApprovalVote[] = []): Promise<RequestView> {
    const session = withClient(
      await sessionContext(this.store.pool, req.sessionId).catch((err) => {
        this.log.warn({ approvalId: req.id, err }, "approvals: no session context for the approval message");
        return undefined;
      }),
      req,
    );
    const replayUrl = req.sessionId && this.options.sessionPage ? this.options.sessionPage(req.sessionId) : undefined;
    return { votes, session, confirm: this.options.confirmRule?.(req.connection, req.ruleId) ?? false, replayUrl };
  }

  async requested(req: ApprovalRequest): Promise<SlackRefs> {
    const channel = this.channelOf(req.approverGroup);
    const msg = renderRequestMessage(req, await this.#view(req));
    const posted = await this.client.chat.postMessage({ channel, text: msg.text, blocks: msg.blocks, unfurl_links: false, unfurl_media: false });
    const ts = posted.ts!;
    const refs: SlackRefs = { channel: posted.channel ?? channel, ts };
    try {
      refs.permalink = (await this.client.chat.getPermalink({ channel: refs.channel, message_ts: ts })).permalink;
    } catch (err) {
      this.log.warn({ approvalId: req.id, err }, "approvals: no permalink for the approval message");
    }
    if (req.requester.email && req.requester.kind !== "service") {
      try {
        const user = await this.directory.userIdOf(req.requester.email);
        if (user) {
          const dm = await this.client.conversations.open({ users: user });
          const dmChannel = dm.channel?.id;
          if (dmChannel) {
            const m = renderRequesterDm(req, { permalink: refs.permalink, channel: refs.channel });
            const sent = await this.client.chat.postMessage({ channel: dmChannel, text: m.text, blocks: m.blocks, unfurl_links: false });
            refs.requesterDmChannel = dmChannel;
            refs.requesterDmTs = sent.ts;
          }
        }
      } catch (err) {
        this.log.warn({ approvalId: req.id, err }, "approvals: could not DM the requester");
      }
    }
    return refs;
  }

  async decided(req: ApprovalRequest): Promise<void> {
    if (!req.slack.channel || !req.slack.ts) return;
    const votes = await this.store.votes(req.id);
    const msg = renderRequestMessage(req, await this.#view(req, votes));
    await this.client.chat.update({ channel: req.slack.channel, ts: req.slack.ts, text: msg.text, blocks: msg.blocks });
    await this.#updateEscalationCopy(req, msg);
    if (req.slack.requesterDmChannel) {
      const f = renderRequesterFollowUp(req, votes);
      await this.client.chat
        .postMessage({ channel: req.slack.requesterDmChannel, text: f.text, blocks: f.blocks, unfurl_links: false })
        .catch((err) => this.log.warn({ approvalId: req.id, err }, "approvals: could not follow up with the requester"));
    }
  }

  /** Shows votes so far on a request that needs more than one approval. */
  async progress(req: ApprovalRequest): Promise<void> {
    if (!req.slack.channel || !req.slack.ts || req.status !== "pending") return;
    const votes = await this.store.votes(req.id);
    const view = await this.#view(req, votes);
    const msg = renderRequestMessage(req, view);
    await this.client.chat.update({ channel: req.slack.channel, ts: req.slack.ts, text: msg.text, blocks: msg.blocks });
    await this.#updateEscalationCopy(req, renderRequestMessage(req, { ...view, escalation: { mentions: [], originalPermalink: req.slack.permalink ?? undefined } }));
  }

  async reminder(req: ApprovalRequest): Promise<void> {
    if (!req.slack.channel || !req.slack.ts) return;
    const m = renderReminder(req, { approverMentions: this.config.groups[req.approverGroup]?.slackUserGroups ?? [] });
    await this.client.chat.postMessage({ channel: req.slack.channel, thread_ts: req.slack.ts, text: m.text, blocks: m.blocks });
  }

  /**
   * Asks the escalation group. When it has a channel of its own, the full request (context and
   * working buttons, since its members may now decide) is posted there and its reference returned
   * (the service records it, so the decision updates that copy too); the original message notes
   * the escalation in its thread and in place. Otherwise the escalation is broadcast from the
   * original message's thread.
   */
  async escalated(req: ApprovalRequest): Promise<SlackRefs | undefined> {
    if (!req.escalationGroup) return undefined;
    const mentions = this.config.groups[req.escalationGroup]?.slackUserGroups ?? [];
    const own = this.channelOf(req.escalationGroup);
    const separate = own !== (req.slack.channel ?? this.channelOf(req.approverGroup));
    let copy: SlackRefs | undefined;
    const votes = await this.store.votes(req.id);
    const view = await this.#view(req, votes);
    if (separate) {
      const m = renderRequestMessage(req, { ...view, escalation: { mentions, originalPermalink: req.slack.permalink ?? undefined } });
      const posted = await this.client.chat.postMessage({ channel: own, text: `Escalated to ${req.escalationGroup}: ${m.text}`, blocks: m.blocks, unfurl_links: false, unfurl_media: false });
      copy = { channel: posted.channel ?? own, ts: posted.ts! };
    }
    if (!req.slack.channel || !req.slack.ts) return copy;
    const note = renderReminder(req, { group: req.escalationGroup, mentions: separate ? [] : mentions, channel: separate ? own : undefined });
    await this.client.chat.postMessage({ channel: req.slack.channel, thread_ts: req.slack.ts, reply_broadcast: !separate, text: note.text, blocks: note.blocks });
    // The message itself names the escalation group from now on.
    const msg = renderRequestMessage(req, view);
    await this.client.chat.update({ channel: req.slack.channel, ts: req.slack.ts, text: msg.text, blocks: msg.blocks });
    return copy;
  }

  /** Posted at once to approvals.slack.securityChannel (default: the approvals channel). Throws on failure. */
  async securityAlert(alert: SecurityAlert): Promise<void> {
    const slack = this.config.slack!;
    const m = renderSecurityAlert(alert);
    await this.client.chat.postMessage({ channel: slack.securityChannel ?? slack.channel, text: m.text, blocks: m.blocks, unfurl_links: false, unfurl_media: false });
  }

  /** The copy in the escalation group's channel, if one was posted, shows the same state. */
  async #updateEscalationCopy(req: ApprovalRequest, msg: { text: string; blocks: unknown[] }): Promise<void> {
    const copy = await this.store.escalationMessage(req.id, req.sessionId);
    if (!copy) return;
    await this.client.chat.update({ channel: copy.channel, ts: copy.ts, text: msg.text, blocks: msg.blocks as never });
  }

}
