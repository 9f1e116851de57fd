import type { Detector, ScanContext, Span } from "../types.js";

/** International form: `+` country code, then groups separated by one space, dot or dash. */
const INTERNATIONAL = /(?<![\w+])\+[1-9]\d{0,14}(?:[ .-]?\(\d{1,4}\)[ .-]?\d{1,10})?(?:[ .-]\d{1,10}){0,6}/g;
/**
 * North American national form: `(415) 555-0132`, `415-555-0132`, `415.555.0132` (one separator
 * style), not glued to a word character, `+`, `.`, `-` or `/` before it (looked behind after the
 * first character, which lets V8 skip to candidates; see card.ts).
 */
const NANP = /(?:\((?<![\w+.\-/]\()([2-9]\d{2})\) ?|([2-9](?<![\w+.\-/][2-9])\d{2})([-.]))[2-9]\d{2}[-.]\d{4}(?![\w-]|[.]\d)/g;
/** Other national forms with a trunk 0 (`020 7946 0958`, `030/1234567`), only next to a phone word. */
const NATIONAL = /(?<![\w+.\-/])0\d{1,4}(?:[ /-]\d{2,8}){0,4}(?![\w-]|[.]\d)/g;
const PHONE_WORDS = /phone|tel\b|tel[:.]|telefon|mobile|mobil\b|cell|fax|whatsapp|sms|call (?:me|us)|contact/;

function digitCount(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) n++;
  }
  return n;
}

/**
 * Phone numbers. To keep dates, versions, order numbers, amounts and ids out, a number is
 * accepted only in three shapes: E.164 with a leading `+` (8–15 digits); the strict North
 * American layout with valid area and exchange codes; or a national number with trunk `0`
 * when a phone word ("phone", "tel", "mobile", …) precedes it or the JSON field is named so.
 */
export const phone: Detector = {
  id: "phone",
  category: "personal",
  patterns: [INTERNATIONAL, NANP, NATIONAL, PHONE_WORDS],
  needs: (f) => f.digits >= 7,
  find(text: string, ctx: ScanContext, out: Span[]): void {
    if (text.includes("+")) {
      INTERNATIONAL.lastIndex = 0;
      for (let m = INTERNATIONAL.exec(text); m !== null; m = INTERNATIONAL.exec(text)) {
        const digits = digitCount(m[0]);
        const next = text[m.index + m[0].length] ?? "";
        if (digits < 8 || digits > 15 || /[\w]/.test(next)) continue;
        out.push({ start: m.index, end: m.index + m[0].length, type: "phone" });
      }
    }
    NANP.lastIndex = 0;
    for (let m = NANP.exec(text); m !== null; m = NANP.exec(text)) {
      const sep = m[3];
      if (sep !== undefined && m[0].charAt(7) !== sep) continue;
      out.push({ start: m.index, end: m.index + m[0].length, type: "phone" });
    }
    const keyed = ctx.key !== undefined && PHONE_WORDS.test(ctx.key);
    if (!keyed && !/phone|tel|mobil|cell|fax|whatsapp|sms|call|contact/i.test(text)) return;
    NATIONAL.lastIndex = 0;
    for (let m = NATIONAL.exec(text); m !== null; m = NATIONAL.exec(text)) {
      const digits = digitCount(m[0]);
      if (digits < 7 || digits > 13) continue;
      if (!keyed && !PHONE_WORDS.test(text.slice(Math.max(0, m.index - 25), m.index).toLowerCase())) continue;
      out.push({ start: m.index, end: m.index + m[0].length, type: "phone" });
    }
  },
};
