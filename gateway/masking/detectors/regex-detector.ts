import type { Detector, ScanContext, Span } from "../types.js";

export interface RegexDetectorSpec {
  id: string;
  category: Detector["category"];
  /**
   * A global regex written without backtracking hazards: every quantifier is bounded or runs
   * over a class that cannot also match what follows it (checked by safe-regex2 in the tests).
   */
  re: RegExp;
  /** Capture group holding the part to mask; 0 (default) masks the whole match. */
  group?: number;
  /** Cheap literal pre-check: skip the regex when none of these substrings occur. */
  anyOf?: readonly string[];
  needs?: Detector["needs"];
  /** Extra validation of the masked part (checksums, context). */
  validate?: (value: string, text: string, start: number, ctx: ScanContext) => boolean;
}

/** Builds a detector from one linear-time regex. */
export function regexDetector(spec: RegexDetectorSpec): Detector {
  if (!spec.re.global) throw new Error(`detector ${spec.id}: regex must be global`);
  const group = spec.group ?? 0;
  return {
    id: spec.id,
    category: spec.category,
    patterns: [spec.re],
    ...(spec.needs ? { needs: spec.needs } : {}),
    find(text: string, ctx: ScanContext, out: Span[]): void {
      if (spec.anyOf && !spec.anyOf.some((lit) => text.includes(lit))) return;
      const re = spec.re;
      re.lastIndex = 0;
      for (let m = re.exec(text); m !== null; m = re.exec(text)) {
        if (m[0].length === 0) re.lastIndex++;
        const value = m[group];
        if (value === undefined || value.length === 0) continue;
        const start = group === 0 ? m.index : m.index + m[0].lastIndexOf(value);
        if (spec.validate && !spec.validate(value, text, start, ctx)) continue;
        out.push({ start, end: start + value.length, type: spec.id });
      }
    },
  };
}
