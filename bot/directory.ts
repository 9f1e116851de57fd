// Slack users as approvers: a Slack user is identified by the explicit mapping in the config
// (approvals.slack.users) or else by the e-mail on their Slack profile (users.info). Approver
// groups are e-mail lists and/or Slack user groups, the latter looked up live
// (usergroups.users.list, cached for a few seconds so a burst of clicks makes one call).
import type { WebClient } from "@slack/web-api";
import type { ApproverGroupConfig } from "../gateway/config/load.js";
import type { Approver, ApproverDirectory } from "../gateway/approvals/types.js";

export interface SlackUserIdentity {
  email?: string | undefined;
  name?: string | undefined;
  /** Why no identity could be established (no e-mail on the profile, a deactivated account…). */
  problem?: string | undefined;
}

const USER_TTL_MS = 60_000;
const GROUP_TTL_MS = 5_000;

export class SlackDirectory implements ApproverDirectory {
  readonly #users = new Map<string, { at: number; value: Promise<SlackUserIdentity> }>();
  readonly #groups = new Map<string, { at: number; value: Promise<string[]> }>();

  constructor(
    private readonly client: WebClient,
    private readonly groups: Record<string, ApproverGroupConfig>,
    private readonly mapping: Record<string, string>,
  ) {}

  /** The approver behind a Slack user id. */
  async identify(userId: string): Promise<SlackUserIdentity> {
    const mapped = this.mapping[userId];
    if (mapped) return { email: mapped };
    const hit = this.#users.get(userId);
    if (hit && Date.now() - hit.at < USER_TTL_MS) return hit.value;
    const value = this.client.users.info({ user: userId }).then((r) => {
      const u = r.user;
      if (!u) return { problem: "Slack returned no user" };
      if (u.deleted) return { problem: "the Slack account is deactivated" };
      const email = u.profile?.email?.toLowerCase();
      const name = u.real_name ?? u.profile?.real_name ?? u.name;
      return email ? { email, name } : { name, problem: "your Slack profile shows no e-mail address (the bot needs the users:read.email scope), and approvals.slack.users has no mapping for you" };
    });
    this.#users.set(userId, { at: Date.now(), value });
    value.catch(() => this.#users.delete(userId));
    return value;
  }

  /** The Slack user id of an e-mail (for the requester's DM): the mapping, else users.lookupByEmail. */
  async userIdOf(email: string): Promise<string | undefined> {
    const lower = email.toLowerCase();
    const mapped = Object.entries(this.mapping).find(([, e]) => e === lower)?.[0];
    if (mapped) return mapped;
    try {
      const r = await this.client.users.lookupByEmail({ email: lower });
      return r.user?.id;
    } catch (err) {
      if ((err as { data?: { error?: string } }).data?.error === "users_not_found") return undefined;
      throw err;
    }
  }

  async isMember(group: string, approver: Approver): Promise<boolean> {
    const g = this.groups[group];
    if (!g) return false;
    if (g.emails.includes(approver.email.toLowerCase())) return true;
    if (!approver.slackUserId) return false;
    for (const ug of g.slackUserGroups) if ((await this.#usergroup(ug)).includes(approver.slackUserId)) return true;
    return false;
  }

  #usergroup(id: string): Promise<string[]> {
    const hit = this.#groups.get(id);
    if (hit && Date.now() - hit.at < GROUP_TTL_MS) return hit.value;
    const value = this.client.usergroups.users.list({ usergroup: id }).then((r) => r.users ?? []);
    this.#groups.set(id, { at: Date.now(), value });
    value.catch(() => this.#groups.delete(id));
    return value;
  }
}
