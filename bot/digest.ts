// Posting the weekly evidence digest to the managers' channel: a Block Kit summary (headline
// numbers and exceptions, built by the typed builders of blocks.ts), then the full Markdown report
// uploaded into the message's thread with Slack's upload flow (files.getUploadURLExternal, the
// bytes to the returned URL, files.completeUploadExternal), through the Web API client's
// filesUploadV2. It uses the approvals bot's token and API URL.
import { webApi } from "@slack/bolt";
import type { KnownBlock } from "@slack/types";
import type { WebClientOptions } from "@slack/web-api";
import type { SlackConfig } from "../gateway/config/load.js";
import type { DigestContent } from "../gateway/evidence/digest.js";
import type { DigestPoster } from "../gateway/evidence/generate.js";
import { cellText } from "../gateway/evidence/render.js";
import type { DigestSeal } from "../gateway/evidence/sign.js";
import { describeSlackError } from "../gateway/approvals/service.js";
import { context, escapeMrkdwn as esc, fields, fit, header, section, thousands } from "./blocks.js";

export interface DigestMessage {
  text: string;
  blocks: KnownBlock[];
}

const STATUS: Record<string, { emoji: string; label: string }> = {
  ok: { emoji: ":white_check_mark:", label: "OK" },
  exceptions: { emoji: ":warning:", label: "Exceptions" },
  no_data: { emoji: ":white_circle:", label: "No data" },
};
/** Slack allows 3000 characters in a section's text: list this many exceptions, count the rest. */
const MAX_EXCEPTIONS = 10;
const MAX_EXCEPTION_CHARS = 220;


function count(content: DigestContent, section: string, key: string): number | string | null {
  return content.sections.find((s) => s.id === section)?.counts.find((c) => c.key === key)?.value ?? null;
}

const text = (v: number | string | null) => cellText(v);

/** The headline figures shown in the message (at most 10: Slack's limit of fields per section). */
export function headline(content: DigestContent): Array<{ label: string; value: string }> {
  const c = (s: string, k: string) => text(count(content, s, k));
  return [
    { label: "Identities active", value: c("cc6_1", "identities") },
    { label: "Authentication failures", value: c("cc6_1", "authFailures") },
    { label: "Approval requests", value: `${c("cc6_2", "requests")} (${c("cc6_2", "approved")} approved, ${c("cc6_2", "denied")} denied, ${c("cc6_2", "expired")} expired)` },
    { label: "Time to decision", value: `median ${c("cc6_2", "medianSecondsToDecision")} s, p95 ${c("cc6_2", "p95SecondsToDecision")} s` },
    { label: "Self-approvals granted", value: c("cc6_2", "selfApprovalGranted") },
    { label: "Calls blocked", value: c("cc7_2", "blocked") },
    { label: "Values masked", value: c("cc7_2", "valuesMasked") },
    { label: "Unmasked deliveries", value: c("privacy", "deliveries") },
    { label: "Configuration changes", value: c("cc8_1", "applied") },
    { label: "Audit entries sealed", value: `${c("integrity", "entries")} (gaps: ${c("integrity", "gaps")})` },
  ];
}

/** Where the full report is: being uploaded, in the thread, or missing (and how to get it). */
export type ReportState = { kind: "uploading" } | { kind: "uploaded"; filename: string } | { kind: "failed"; error: string };

export function renderDigestMessage(content: DigestContent, seal: DigestSeal, filename: string, report: ReportState = { kind: "uploaded", filename }): DigestMessage {
  const all = content.sections.flatMap((s) => s.exceptions.map((e) => `${s.criteria}: ${e}`));
  const verification = text(count(content, "integrity", "verification")).split(":")[0]!;
  const partial = content.partial === true;
  const blocks: KnownBlock[] = [
    header(`Weekly evidence digest ${content.week}${partial ? " (partial week)" : ""}`),
    section(
      `*${esc(content.period.firstDay)} to ${esc(content.period.lastDay)}* (${esc(content.timeZone)}) · ${all.length > 0 ? `:warning: *${thousands(all.length)} exception(s)*` : ":white_check_mark: *no exceptions*"} · chain verification: *${esc(verification)}*${partial ? "\n:construction: *Partial week*: the week is not over; these figures will change and are not signed." : ""}`,
    ),
    fields(content.sections.map((s) => `${STATUS[s.status]!.emoji} *${esc(s.criteria)}* ${esc(s.title)}\n${STATUS[s.status]!.label}`)),
    fields(headline(content).map((h) => `*${esc(h.label)}*\n${esc(h.value)}`)),
  ];
  if (all.length > 0) {
    const shown = all.slice(0, MAX_EXCEPTIONS).map((e) => `• ${fit(e, MAX_EXCEPTION_CHARS)}`);
    blocks.push(section(`*Exceptions*\n${shown.join("\n")}${all.length > MAX_EXCEPTIONS ? `\n…and ${thousands(all.length - MAX_EXCEPTIONS)} more in the report` : ""}`));
  }
  const where =
    report.kind === "uploaded"
      ? `Full report in the thread (${esc(report.filename)}).`
      : report.kind === "uploading"
        ? "The full report is being uploaded to this thread."
        : `:x: The full report could not be uploaded (${fit(report.error, 200)}): \`countersign digest --week ${esc(content.week)} --format html\` prints it.`;
  blocks.push(context([`${where} SHA-256 \`${esc(seal.sha256)}\`${seal.keyId ? ` · signed with \`${fit(seal.keyId, 100)}\`` : partial ? " · not signed (partial week)" : " · not signed (no checkpoint key)"}`]));
  return { text: `Weekly evidence digest ${esc(content.week)}${partial ? " (partial week)" : ""}: ${all.length} exception(s)`, blocks };
}

/** A poster for the managers' channel with the approvals bot's token and API URL. */
export function createSlackDigestPoster(slack: SlackConfig, channel: string, clientOptions: WebClientOptions = {}): DigestPoster {
  const client = new webApi.WebClient(slack.botToken.reveal(), { slackApiUrl: slack.apiUrl, ...clientOptions });
  return {
    channel,
    async post({ content, seal, markdown, filename }) {
      // The summary promises no thread until the report is in it.
      const msg = renderDigestMessage(content, seal, filename, { kind: "uploading" });
      const posted = await client.chat.postMessage({ channel, text: msg.text, blocks: msg.blocks, unfurl_links: false, unfurl_media: false });
      const ts = posted.ts!;
      const where = posted.channel ?? channel;
      let fileId: string | null = null;
      let uploadError: string | undefined;
      try {
        const uploaded = await client.filesUploadV2({ channel_id: where, thread_ts: ts, filename, title: `Weekly evidence digest ${content.week}`, content: markdown });
        const files = (uploaded as { files?: Array<{ files?: Array<{ id?: string }> }> }).files;
        fileId = files?.[0]?.files?.[0]?.id ?? null;
      } catch (err) {
        uploadError = describeSlackError(err);
      }
      const final = renderDigestMessage(content, seal, filename, uploadError ? { kind: "failed", error: uploadError } : { kind: "uploaded", filename });
      await client.chat.update({ channel: where, ts, text: final.text, blocks: final.blocks }).catch((err) => {
        uploadError ??= `the summary could not be updated: ${describeSlackError(err)}`;
      });
      return { ts, fileId, uploadError };
    },
  };
}
