// Who may decide: approver groups from the configuration. E-mail lists are checked here; Slack
// user groups need Slack and are checked by the bot's directory (bot/directory.ts), which falls
// back to this one for e-mails.
import type { ApproverGroupConfig } from "../config/load.js";
import type { Approver, ApproverDirectory } from "./types.js";

export class EmailDirectory implements ApproverDirectory {
  constructor(private readonly groups: Record<string, ApproverGroupConfig>) {}

  group(name: string): ApproverGroupConfig | undefined {
    return this.groups[name];
  }

  async isMember(group: string, approver: Approver): Promise<boolean> {
    const g = this.groups[group];
    return g !== undefined && g.emails.includes(approver.email.toLowerCase());
  }
}
