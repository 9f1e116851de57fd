import type { Detector, ScanContext, Span } from "../types.js";

const DASHED = /(?<![\d-])(\d{3})-(\d{2})-(\d{4})(?![\d-])/g;
const UNDASHED = /(?<![\d-])(\d{3})[ ]?(\d{2})[ ]?(\d{4})(?![\d-])/g;
const SSN_CONTEXT = /ssn|social security|social_security|sozialversicherung|tax ?id|\btin\b/;

/**
 * US Social Security numbers. Area 000, 666 and 900–999, group 00 and serial 0000 are never
 * issued (SSA), which removes most dates and order numbers that share the 3-2-4 shape.
 * Without dashes the number needs context: a field named like ssn, or "SSN" before it.
 */
export function ssnParts(area: string, group: string, serial: string): boolean {
  const a = Number(area);
  return a !== 0 && a !== 666 && a < 900 && group !== "00" && serial !== "0000";
}

export const ssn: Detector = {
  id: "ssn",
  category: "personal",
  patterns: [DASHED, UNDASHED, SSN_CONTEXT],
  needs: (f) => f.digits >= 9,
  find(text: string, ctx: ScanContext, out: Span[]): void {
    DASHED.lastIndex = 0;
    for (let m = DASHED.exec(text); m !== null; m = DASHED.exec(text)) {
      if (ssnParts(m[1] ?? "", m[2] ?? "", m[3] ?? "")) out.push({ start: m.index, end: m.index + m[0].length, type: "ssn" });
    }
    const keyed = ctx.key !== undefined && SSN_CONTEXT.test(ctx.key);
    if (!keyed && !/ssn|social/i.test(text)) return;
    UNDASHED.lastIndex = 0;
    for (let m = UNDASHED.exec(text); m !== null; m = UNDASHED.exec(text)) {
      if (m[0].includes("-")) continue;
      const near = text.slice(Math.max(0, m.index - 30), m.index).toLowerCase();
      if (!keyed && !SSN_CONTEXT.test(near)) continue;
      if (ssnParts(m[1] ?? "", m[2] ?? "", m[3] ?? "")) out.push({ start: m.index, end: m.index + m[0].length, type: "ssn" });
    }
  },
};
