// Posting the weekly evidence digest to the managers' channel: a Block Kit summary (headline
// numbers and exceptions, from templates/digest/slack.mustache), then the full Markdown report
// uploaded into the message's thread with Slack's upload flow (files.getUploadURLExternal, the
// bytes to the returned URL, files.completeUploadExternal), through the Web API client's
// filesUploadV2. It uses the approvals bot's token and API URL.
import Mustache from "mustache";
import { webApi } from "@slack/bolt";
import type { KnownBlock } from "@slack/types";
import type { WebClientOptions } from "@slack/web-api";
import type { SlackConfig } from "../gateway/config/load.js";
import type { DigestContent } from "../gateway/evidence/digest.js";
import type { DigestPoster } from "../gateway/evidence/generate.js";
import { cellText, digestTemplate } from "../gateway/evidence/render.js";
import type { DigestSeal } from "../gateway/evidence/sign.js";

/** Safe inside a JSON string literal (no surrounding quotes). */
const jsonText = (s: string): string => JSON.stringify(s).slice(1, -1);

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

const mrkdwnJson = (v: unknown): string => jsonText(String(v).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;"));

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

export function renderDigestMessage(content: DigestContent, seal: DigestSeal, filename: string): DigestMessage {
  const all = content.sections.flatMap((s) => s.exceptions.map((e) => `${s.criteria}: ${e}`));
  const cut = (s: string) => (s.length > MAX_EXCEPTION_CHARS ? `${s.slice(0, MAX_EXCEPTION_CHARS)}…` : s);
  const last = <T>(xs: T[]) => xs.map((x, i) => ({ ...x, last: i === xs.length - 1 }));
  const view = {
    week: content.week,
    timeZone: content.timeZone,
    firstDay: content.period.firstDay,
    lastDay: content.period.lastDay,
    exceptionCount: all.length,
    hasExceptions: all.length > 0,
    exceptions: all.slice(0, MAX_EXCEPTIONS).map(cut),
    moreExceptions: all.length > MAX_EXCEPTIONS ? all.length - MAX_EXCEPTIONS : 0,
    verification: text(count(content, "integrity", "verification")).split(":")[0],
    sections: last(content.sections.map((s) => ({ criteria: s.criteria, title: s.title, emoji: STATUS[s.status]!.emoji, statusLabel: STATUS[s.status]!.label }))),
    headline: last(headline(content)),
    filename,
    sha256: seal.sha256,
    keyId: seal.keyId,
  };
  const rendered = Mustache.render(digestTemplate("slack.mustache"), view, undefined, { escape: mrkdwnJson });
  try {
    return JSON.parse(rendered) as DigestMessage;
  } catch (err) {
    throw new Error(`templates/digest/slack.mustache did not render to JSON: ${(err as Error).message}`);
  }
}

/** A poster for the managers' channel with the approvals bot's token and API URL. */
export function createSlackDigestPoster(slack: SlackConfig, channel: string, clientOptions: WebClientOptions = {}): DigestPoster {
  const client = new webApi.WebClient(slack.botToken.reveal(), { slackApiUrl: slack.apiUrl, ...clientOptions });
  return {
    channel,
    async post({ content, seal, markdown, filename }) {
      const msg = renderDigestMessage(content, seal, filename);
      const posted = await client.chat.postMessage({ channel, text: msg.text, blocks: msg.blocks, unfurl_links: false, unfurl_media: false });
      const ts = posted.ts!;
      const uploaded = await client.filesUploadV2({
        channel_id: posted.channel ?? channel,
        thread_ts: ts,
        filename,
        title: `Weekly evidence digest ${content.week}`,
        content: markdown,
      });
      const files = (uploaded as { files?: Array<{ files?: Array<{ id?: string }> }> }).files;
      return { ts, fileId: files?.[0]?.files?.[0]?.id ?? null };
    },
  };
}
