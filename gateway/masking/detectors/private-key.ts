import type { Detector, ScanContext, Span } from "../types.js";

const HEADER = /-----BEGIN ([A-Z0-9 ]{0,40})PRIVATE KEY( BLOCK)?-----/y;
const BODY_CHAR = /[A-Za-z0-9+/=\s:,-]/;

/**
 * PEM private key blocks, BEGIN through END. Scanned with indexOf rather than a lazy regex so
 * a text with many BEGIN lines and no END stays linear. A block cut off before its END line
 * (a truncated tool result) is masked up to the end of its base64 body.
 */
export const privateKey: Detector = {
  id: "private_key",
  category: "credential",
  patterns: [HEADER, BODY_CHAR],
  needs: (f) => f.dash,
  find(text: string, _ctx: ScanContext, out: Span[]): void {
    let from = 0;
    for (;;) {
      const begin = text.indexOf("-----BEGIN ", from);
      if (begin < 0) return;
      HEADER.lastIndex = begin;
      if (!HEADER.test(text)) {
        from = begin + 11;
        continue;
      }
      const afterHeader = HEADER.lastIndex;
      const endMarker = text.indexOf("-----END ", afterHeader);
      let end: number;
      if (endMarker >= 0 && /^[\sA-Za-z0-9+/=:,\\-]*$/.test(text.slice(afterHeader, endMarker).replace(/\\n/g, ""))) {
        const close = text.indexOf("-----", endMarker + 9);
        end = close >= 0 && close - endMarker < 80 ? close + 5 : endMarker + 9;
      } else {
        end = afterHeader;
        while (end < text.length && BODY_CHAR.test(text[end] ?? "")) end++;
        while (end > afterHeader && /\s/.test(text[end - 1] ?? "")) end--;
      }
      out.push({ start: begin, end, type: "private_key" });
      from = end;
    }
  },
};
