/**
 * Encoded spans: base64, hex and percent-encoding hide a secret from a pattern but not from
 * whoever decodes them. Each candidate run is decoded; when the decoded text holds something
 * to mask, the whole encoded run is masked with that type.
 */
import type { Span } from "./types.js";

const HEX_ONLY = /^(?:[0-9A-Fa-f]{2}){12,}$/;
/** Longest run decoded; longer runs are blobs, handled as media or left as opaque data. */
const MAX_RUN = 4096;

/** Decoded bytes read as text when nearly all of them are printable ASCII or UTF-8 text. */
function asText(bytes: Buffer): string | undefined {
  if (bytes.length < 8) return undefined;
  let printable = 0;
  for (const b of bytes) if ((b >= 0x20 && b < 0x7f) || b === 0x0a || b === 0x0d || b === 0x09 || b >= 0x80) printable++;
  if (printable < bytes.length * 0.95) return undefined;
  const text = bytes.toString("utf8");
  return text.includes("\ufffd") ? undefined : text;
}

/**
 * Spans of `text` that are encodings of something `scan` finds. `scan` is the engine's detector
 * pass over the decoded text; the first decoded span names the type.
 */
export function findEncodedSpans(text: string, scan: (decoded: string) => readonly Span[], out: Span[]): void {
  const tryRun = (start: number, end: number, decoded: string | undefined): void => {
    if (decoded === undefined) return;
    const inner = scan(decoded);
    if (inner.length > 0) out.push({ start, end, type: inner[0]!.type, encoded: true });
  };
  // One pass over maximal runs of [A-Za-z0-9+/_-] (plus `=` padding): hex runs of 12+ bytes are
  // decoded as hex, runs of 16+ mixing cases as base64 (words and paths mix nothing and are skipped).
  // A run that counts has MIN_RUN characters before its padding, so the scan looks MIN_RUN - 1
  // ahead: when that character ends no run, no run of the characters before it can count.
  const n = text.length;
  for (let i = 0; i + MIN_RUN <= n; ) {
    const probe = i + MIN_RUN - 1;
    if (!(charClass(text.charCodeAt(probe)) & ENCODED)) {
      i = probe + 1;
      continue;
    }
    // Every run starting before i has been looked at, and none crosses i: the run holding the
    // probe starts at i or after.
    let start = probe;
    while (start > i && charClass(text.charCodeAt(start - 1)) & ENCODED) start--;
    let any = 0;
    let all = ENCODED | UPPER | LOWER_OR_DIGIT | HEX;
    let j = start;
    for (; j < n; j++) {
      const k = charClass(text.charCodeAt(j));
      if (!(k & ENCODED)) break;
      any |= k;
      all &= k;
    }
    i = j;
    let end = j;
    while (end < n && end - j < 2 && text.charCodeAt(end) === 61) end++;
    const length = end - start;
    const upper = (any & UPPER) !== 0;
    const lowerOrDigit = (any & LOWER_OR_DIGIT) !== 0;
    const allHex = (all & HEX) !== 0;
    if (length < 16 || length > MAX_RUN || !(allHex || (upper && lowerOrDigit))) continue;
    const run = text.slice(start, end);
    if (HEX_ONLY.test(run)) tryRun(start, end, asText(Buffer.from(run, "hex")));
    else if (upper && lowerOrDigit) tryRun(start, end, asText(Buffer.from(run, run.includes("-") || run.includes("_") ? "base64url" : "base64")));
  }
  // Percent-encoding: each token around a `%XX`, decoded whole.
  for (let p = text.indexOf("%"); p >= 0 && p < n; p = text.indexOf("%", p + 1)) {
    if (!isHex(text.charCodeAt(p + 1)) || !isHex(text.charCodeAt(p + 2))) continue;
    let start = p;
    while (start > 0 && p - start < MAX_RUN && !isTokenEnd(text.charCodeAt(start - 1))) start--;
    let end = p + 3;
    while (end < n && end - start < MAX_RUN && !isTokenEnd(text.charCodeAt(end))) end++;
    const token = text.slice(start, end);
    let decoded: string;
    try {
      decoded = decodeURIComponent(token.replace(/\+/g, " "));
    } catch {
      p = end;
      continue;
    }
    if (decoded !== token) tryRun(start, end, decoded);
    p = end;
  }
}

/** Characters of a run that counts before its `=` padding (16 with two `=`). */
const MIN_RUN = 14;
const ENCODED = 1;
const UPPER = 2;
const LOWER_OR_DIGIT = 4;
const HEX = 8;
/** What each ASCII character is to an encoded run: [A-Za-z0-9+/_-] are ENCODED, and so on. */
const CHAR_CLASS = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const upper = c >= 65 && c <= 90;
  const lowerOrDigit = (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 43 || c === 47;
  if (upper || lowerOrDigit || c === 95 || c === 45) CHAR_CLASS[c] = ENCODED | (upper ? UPPER : 0) | (lowerOrDigit ? LOWER_OR_DIGIT : 0) | (isHex(c) ? HEX : 0);
}
function charClass(c: number): number {
  return c < 128 ? CHAR_CLASS[c]! : 0;
}
function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}
/** Whitespace, quotes, angle brackets and URL delimiters (`?`, `&`, `=`, `#`, `;`, `,`) end a percent-encoded token. */
function isTokenEnd(c: number): boolean {
  return c <= 32 || c === 34 || c === 39 || c === 60 || c === 62 || c === 63 || c === 38 || c === 61 || c === 35 || c === 59 || c === 44;
}

/** Text with JSON string escapes (`\u0041`, `\/`, `\n`) decoded, or undefined when it has none. */
export function decodeJsonEscapes(text: string): string | undefined {
  if (!text.includes("\\")) return undefined;
  if (!/\\(?:u[0-9A-Fa-f]{4}|\/|x[0-9A-Fa-f]{2})/.test(text)) return undefined;
  return text.replace(/\\(?:u([0-9A-Fa-f]{4})|x([0-9A-Fa-f]{2})|([/"\\bfnrt]))/g, (_m, u: string | undefined, x: string | undefined, c: string | undefined) => {
    if (u !== undefined) return String.fromCharCode(parseInt(u, 16));
    if (x !== undefined) return String.fromCharCode(parseInt(x, 16));
    switch (c) {
      case "b": return "\b";
      case "f": return "\f";
      case "n": return "\n";
      case "r": return "\r";
      case "t": return "\t";
      default: return c!;
    }
  });
}
