import type { Detector, ScanContext, Span } from "../types.js";
import { IBAN_LENGTHS, ibanValid } from "../iban.js";

const CANDIDATE = /(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![A-Za-z0-9])/g;

/** IBANs, compact or in groups of four, with the country's length and the mod-97 check. */
export const ibanDetector: Detector = {
  id: "iban",
  category: "personal",
  patterns: [CANDIDATE],
  needs: (f) => f.digits >= 4 && f.longestTokenRun >= 4,
  find(text: string, _ctx: ScanContext, out: Span[]): void {
    CANDIDATE.lastIndex = 0;
    for (let m = CANDIDATE.exec(text); m !== null; m = CANDIDATE.exec(text)) {
      const raw = m[0];
      const expected = IBAN_LENGTHS[raw.slice(0, 2)];
      if (expected === undefined) continue;
      // Take exactly the country's length of characters (groups may be followed by other words).
      let count = 0;
      let end = 0;
      while (end < raw.length && count < expected) {
        if (raw[end] !== " ") count++;
        end++;
      }
      if (count !== expected) continue;
      const compact = raw.slice(0, end).replace(/ /g, "");
      if (!ibanValid(compact)) continue;
      out.push({ start: m.index, end: m.index + end, type: "iban" });
    }
  },
};
