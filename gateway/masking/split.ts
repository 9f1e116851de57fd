/**
 * Secrets split across content items: a result whose text items, read one after the other, spell
 * a credential none of them holds whole (`"key AKIAZQ3T"` + `"7Y2K5M4N8P6R"`). A client or a
 * model joins them, so the secret leaks though each item alone looks clean.
 *
 * Each boundary between two text items is scanned in a window of the items joined without a
 * separator; a credential that crosses it is cut out of every item it touches (each part becomes
 * a placeholder), before the items are masked one by one. Only credentials (and custom patterns)
 * count: personal data that merely abuts across items (`"…ann"` + `"a@x.com"`) is left to the
 * per-item scan, so joined prose is not rewritten.
 */
import type { Span } from "./types.js";

/** Characters on each side of a boundary that are scanned; longer than any credential the detectors match inline. */
export const SPLIT_WINDOW = 512;
/** Text items looked at in one array; beyond it the rest are masked one by one only. */
export const SPLIT_MAX_ITEMS = 10_000;

/** Where a cut goes: item `index`, characters [start, end) of its text, the credential's type; `span` numbers the credential. */
export interface SplitCut {
  span: number;
  index: number;
  /** The whole credential (for a keyed placeholder's tag, the same as it would get unsplit). */
  value: string;
  start: number;
  end: number;
  type: string;
}

function isSpace(c: number): boolean {
  return c === 32 || c === 10 || c === 13 || c === 9;
}

/** The text of a content item (`{type: "text", text}` or a resource's `{uri, text}`), if it has one. */
function textOf(item: unknown): string | undefined {
  if (item === null || typeof item !== "object" || Array.isArray(item)) return undefined;
  const text = (item as { text?: unknown }).text;
  return typeof text === "string" ? text : undefined;
}

/**
 * The cuts for credentials that cross a boundary between consecutive text items of `items`.
 * `find` returns the credential spans of a window (encoded runs decoded, as in one item).
 */
export function findSplitCuts(items: readonly unknown[], find: (window: string) => readonly Span[]): SplitCut[] {
  const texts: Array<{ index: number; text: string; at: number }> = [];
  let length = 0;
  for (let i = 0; i < items.length && texts.length < SPLIT_MAX_ITEMS; i++) {
    const text = textOf(items[i]);
    if (text === undefined || text.length === 0) continue;
    texts.push({ index: i, text, at: length });
    length += text.length;
  }
  if (texts.length < 2) return [];
  /** Characters [from, to) of the texts joined (built from the texts they span: joining them all would copy the whole result). */
  const joinedSlice = (t: number, from: number, to: number): string => {
    let k = t;
    while (k > 0 && texts[k]!.at > from) k--;
    let out = "";
    for (; k < texts.length && texts[k]!.at < to; k++) {
      const { text, at } = texts[k]!;
      out += text.slice(Math.max(0, from - at), Math.min(text.length, to - at));
    }
    return out;
  };
  const crossing = new Map<string, { start: number; end: number; type: string; value: string }>();
  for (let t = 1; t < texts.length; t++) {
    const boundary = texts[t]!.at;
    const from = Math.max(0, boundary - SPLIT_WINDOW);
    const window = joinedSlice(t, from, Math.min(length, boundary + SPLIT_WINDOW));
    const before = texts[t - 1]!.text;
    // A token cannot cross whitespace: only a multi-line block (a PEM key) can cross a boundary there.
    if ((isSpace(before.charCodeAt(before.length - 1)) || isSpace(texts[t]!.text.charCodeAt(0))) && !window.includes("-----BEGIN")) continue;
    for (const span of find(window)) {
      const start = from + span.start;
      const end = from + span.end;
      if (start < boundary && end > boundary) crossing.set(`${start}:${end}`, { start, end, type: span.type, value: window.slice(span.start, span.end) });
    }
  }
  const cuts: SplitCut[] = [];
  let n = 0;
  for (const span of crossing.values()) {
    for (const t of texts) {
      const start = Math.max(span.start, t.at);
      const end = Math.min(span.end, t.at + t.text.length);
      if (start < end) cuts.push({ span: n, index: t.index, start: start - t.at, end: end - t.at, type: span.type, value: span.value });
    }
    n++;
  }
  return cuts;
}

/** A copy of `items` with each cut replaced by `marker(type)`; the items themselves are not modified. */
export function applySplitCuts(items: readonly unknown[], cuts: readonly SplitCut[], marker: (cut: SplitCut) => string): unknown[] {
  const byItem = new Map<number, SplitCut[]>();
  for (const c of cuts) {
    const list = byItem.get(c.index);
    if (list) list.push(c);
    else byItem.set(c.index, [c]);
  }
  const out = items.slice();
  for (const [index, list] of byItem) {
    const text = textOf(items[index])!;
    list.sort((a, b) => a.start - b.start);
    let masked = "";
    let pos = 0;
    for (const c of list) {
      if (c.start < pos) continue;
      masked += text.slice(pos, c.start) + marker(c);
      pos = c.end;
    }
    out[index] = { ...(items[index] as Record<string, unknown>), text: masked + text.slice(pos) };
  }
  return out;
}
