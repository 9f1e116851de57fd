// Typed Block Kit builders that cannot break Slack's documented limits. Every length is measured on
// the text as sent, i.e. AFTER escaping (`&` `<` `>` become entities, up to 5 characters each), and
// a text too long is shortened before escaping, by whole characters, so an entity is never cut.
// Slack refuses a message that breaks any limit (`invalid_blocks`): nobody would be asked.
import type { ActionsBlock, Button, ContextBlock, ConfirmationDialog, HeaderBlock, KnownBlock, MrkdwnElement, PlainTextElement, SectionBlock } from "@slack/types";

/** Slack's limits (docs.slack.dev, Block Kit reference: blocks, block elements, composition objects, surfaces). */
export const LIMITS = {
  messageBlocks: 50,
  modalBlocks: 100,
  /** chat.postMessage `text`: longer is refused (`msg_too_long`); 4,000 is Slack's advice for notifications. */
  messageText: 4000,
  blockId: 255,
  actionId: 255,
  headerText: 150,
  sectionText: 3000,
  fieldText: 2000,
  fields: 10,
  contextElements: 10,
  contextText: 3000,
  actionsElements: 25,
  buttonText: 75,
  buttonValue: 2000,
  url: 3000,
  confirmTitle: 100,
  confirmText: 300,
  confirmButton: 30,
  modalTitle: 24,
  modalButton: 24,
  privateMetadata: 3000,
  callbackId: 255,
  inputLabel: 2000,
  placeholder: 150,
  textInputMaxLength: 3000,
} as const;

/** Slack mrkdwn's three control characters. Text escaped this way cannot mention, link or format. */
export function escapeMrkdwn(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** 204846 → "204,846". */
export const thousands = (n: number): string => n.toLocaleString("en-US");

/** Cuts at a code-point boundary (never half a surrogate pair). */
function cutHead(s: string, n: number): string {
  if (n <= 0) return "";
  const code = s.charCodeAt(n - 1);
  return s.slice(0, code >= 0xd800 && code <= 0xdbff ? n - 1 : n);
}
function cutTail(s: string, n: number): string {
  if (n <= 0) return "";
  const start = s.length - n;
  const code = s.charCodeAt(start);
  return s.slice(code >= 0xdc00 && code <= 0xdfff ? start + 1 : start);
}

export interface FitOptions {
  /** Escape for mrkdwn (default) or keep as is (plain_text). */
  escape?: boolean;
  /** Keep the end too: "UPDATE … [+204,846 chars] … WHERE id = 1". Share of the budget for the tail (default 1/3); 0 keeps the head only. */
  tail?: number;
}

/**
 * `raw` escaped and shortened to at most `limit` characters as sent. A shortened text keeps its
 * head (and tail), and says how many characters were left out.
 */
export function fit(raw: string, limit: number, opts: FitOptions = {}): string {
  const esc = opts.escape === false ? (s: string) => s : escapeMrkdwn;
  const whole = esc(raw);
  if (whole.length <= limit) return whole;
  const tailShare = opts.tail ?? 1 / 3;
  // The largest number of raw characters kept whose escaped form fits, found by bisection.
  const build = (keep: number): string => {
    const tailN = Math.floor(keep * tailShare);
    const head = cutHead(raw, keep - tailN);
    const tail = tailN > 0 ? cutTail(raw, tailN) : "";
    const left = raw.length - head.length - tail.length;
    return `${esc(head)} … [+${thousands(left)} chars]${tail ? ` … ${esc(tail)}` : ""}`;
  };
  let lo = 0;
  let hi = Math.min(raw.length - 1, limit);
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (build(mid).length <= limit) lo = mid;
    else hi = mid - 1;
  }
  const out = build(lo);
  // Below the marker's own length nothing fits: an ellipsis says that something was there.
  return out.length <= limit ? out : "…".slice(0, limit);
}

/** A list of short items (groups, keys) within a budget: "`dev` `oncall` … +290 more". */
export function fitList(items: readonly string[], limit: number, render: (item: string) => string, sep = " ", maxItems = Infinity): string {
  let out = "";
  for (let i = 0; i < items.length; i++) {
    if (i >= maxItems) return `${out} … +${thousands(items.length - i)} more`;
    const next = (out ? sep : "") + render(items[i]!);
    const rest = items.length - i - 1;
    const moreAfter = rest > 0 ? ` … +${thousands(rest)} more` : "";
    // Room for this item and, if items remain, for the "+N more" that would follow it.
    if (out.length + next.length + (rest > 0 ? moreAfter.length : 0) > limit) {
      const more = ` … +${thousands(items.length - i)} more`;
      return (out + more).length <= limit ? out + more : out;
    }
    out += next;
  }
  return out;
}

// ── builders ───────────────────────────────────────────────────────────────────────────────

export const mrkdwn = (text: string): MrkdwnElement => ({ type: "mrkdwn", text: text || " " });
export const plain = (raw: string, limit: number): PlainTextElement => ({ type: "plain_text", text: fit(raw, limit, { escape: false, tail: 0 }) || " ", emoji: true });

const id = (s: string, limit: number) => s.slice(0, limit);

/** Assembles trusted markup (already escaped pieces) and clips the whole as a last resort. */
export function clip(text: string, limit: number): string {
  if (text.length <= limit) return text;
  // Never cut inside an entity or a <…> token: drop back to before the last '&' or '<' if one is open.
  let cut = text.slice(0, limit - 1);
  const amp = cut.lastIndexOf("&");
  if (amp >= 0 && !cut.slice(amp).includes(";")) cut = cut.slice(0, amp);
  const lt = cut.lastIndexOf("<");
  if (lt >= 0 && !cut.slice(lt).includes(">")) cut = cut.slice(0, lt);
  const fences = (cut.match(/```/g) ?? []).length;
  if (fences % 2 === 1) cut = cut.length + 4 <= limit - 1 ? `${cut}\`\`\`` : cut.slice(0, limit - 5) + "```";
  return `${cut}…`;
}

export function header(raw: string, blockId?: string): HeaderBlock {
  return { type: "header", ...(blockId ? { block_id: id(blockId, LIMITS.blockId) } : {}), text: plain(raw, LIMITS.headerText) };
}

/** A section of trusted mrkdwn (built from escaped pieces), clipped to Slack's 3,000. */
export function section(text: string, blockId?: string): SectionBlock {
  return { type: "section", ...(blockId ? { block_id: id(blockId, LIMITS.blockId) } : {}), text: mrkdwn(clip(text, LIMITS.sectionText)) };
}

export function fields(list: readonly string[], blockId?: string): SectionBlock {
  return {
    type: "section",
    ...(blockId ? { block_id: id(blockId, LIMITS.blockId) } : {}),
    fields: list.slice(0, LIMITS.fields).map((t) => mrkdwn(clip(t, LIMITS.fieldText))),
  };
}

export function context(texts: readonly string[], blockId?: string): ContextBlock {
  return {
    type: "context",
    ...(blockId ? { block_id: id(blockId, LIMITS.blockId) } : {}),
    elements: texts.slice(0, LIMITS.contextElements).map((t) => mrkdwn(clip(t, LIMITS.contextText))),
  };
}

export function confirmDialog(title: string, text: string, confirm: string, deny: string, style?: "primary" | "danger"): ConfirmationDialog {
  return {
    title: plain(title, LIMITS.confirmTitle),
    text: mrkdwn(clip(text, LIMITS.confirmText)),
    confirm: plain(confirm, LIMITS.confirmButton),
    deny: plain(deny, LIMITS.confirmButton),
    ...(style ? { style } : {}),
  };
}

export function button(o: { actionId: string; text: string; value: string; style?: "primary" | "danger"; confirm?: ConfirmationDialog | undefined }): Button {
  return {
    type: "button",
    action_id: id(o.actionId, LIMITS.actionId),
    text: plain(o.text, LIMITS.buttonText),
    value: o.value.slice(0, LIMITS.buttonValue),
    ...(o.style ? { style: o.style } : {}),
    ...(o.confirm ? { confirm: o.confirm } : {}),
  };
}

export function actions(elements: readonly Button[], blockId?: string): ActionsBlock {
  return { type: "actions", ...(blockId ? { block_id: id(blockId, LIMITS.blockId) } : {}), elements: elements.slice(0, LIMITS.actionsElements) };
}

/** At most `max` blocks: the last kept one says how many were left out. */
export function capBlocks(blocks: KnownBlock[], max: number): KnownBlock[] {
  if (blocks.length <= max) return blocks;
  const kept = blocks.slice(0, max - 1);
  kept.push(context([`${thousands(blocks.length - kept.length)} more block(s) not shown (Slack shows at most ${max}).`]));
  return kept;
}

/** A `<!date^…>` token: a time every reader sees in their own time zone. */
export function slackDate(d: Date, format = "{date_short_pretty} at {time}"): string {
  return `<!date^${Math.floor(d.getTime() / 1000)}^${format}|${d.toISOString()}>`;
}

/** A Slack user mention, only for a well-formed user id (anything else is shown escaped). */
export const userMention = (userId: string | null | undefined, fallback: string): string =>
  userId && /^[UW][A-Z0-9]{2,20}$/.test(userId) ? `<@${userId}>` : escapeMrkdwn(fallback);

/** A user group mention, only for a well-formed subteam id. */
export const subteamMention = (id: string): string | undefined => (/^S[A-Z0-9]{2,20}$/.test(id) ? `<!subteam^${id}>` : undefined);

/** A link with escaped label; the URL must be http(s) and free of the characters that end a link. */
export function link(url: string | null | undefined, label: string): string | undefined {
  if (!url || url.length > LIMITS.url || !/^https?:\/\/[^\s<>|]+$/.test(url)) return undefined;
  return `<${url.replace(/&/g, "&amp;")}|${escapeMrkdwn(label)}>`;
}
