// Security alerts as Block Kit: what changed, the diff, and the command to run once reviewed.
import type { KnownBlock } from "@slack/types";
import type { SecurityAlert } from "../gateway/approvals/types.js";
import { clip, context, escapeMrkdwn as esc, fit, header, LIMITS, section, slackDate } from "./blocks.js";
import type { SlackMessage } from "./render.js";

const HEAD: Record<SecurityAlert["kind"], string> = {
  tool_definition_changed: "Tool definition changed",
  chain_verification_failed: "Audit chain verification failed",
};

export function renderSecurityAlert(a: SecurityAlert): SlackMessage {
  const blocks: KnownBlock[] = [header(`🚨 ${HEAD[a.kind]}${a.connection ? `: ${a.connection}${a.tool ? ` / ${a.tool}` : ""}` : ""}`, "alert")];
  blocks.push(section(`*${fit(a.title, 300)}*\n${fit(a.summary, 2000)}`, "summary"));
  if (a.diff && a.diff.length > 0) {
    // As many diff lines as fit; the rest counted.
    const budget = LIMITS.sectionText - 80;
    const shown: string[] = [];
    let used = 0;
    for (const line of a.diff) {
      const l = fit(line, 400).replace(/```/g, "`\u200b``");
      if (used + l.length + 1 > budget) break;
      shown.push(l);
      used += l.length + 1;
    }
    const rest = a.diff.length - shown.length;
    blocks.push(section(`*Diff*${rest > 0 ? ` (${shown.length} of ${a.diff.length} changes shown)` : ""}\n\`\`\`${shown.join("\n")}\`\`\``, "diff"));
  }
  if (a.command) blocks.push(section(`*Once reviewed*\n\`${fit(a.command, 500)}\``, "command"));
  blocks.push(context([`Detected ${slackDate(a.at)} · recorded in the audit chain`], "when"));
  return { text: clip(`${HEAD[a.kind]}: ${esc(a.title)}`, LIMITS.messageText), blocks };
}
