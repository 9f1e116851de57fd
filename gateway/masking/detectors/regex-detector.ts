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

/**
 * The literals of every detector's `anyOf`, looked for in one pass over a text and shared by all
 * detectors of that text: sixty substring searches of a 1 MB result would cost more than the rest
 * of the scan. The last text's answer is remembered (one entry).
 */
const literals = new Set<string>();
let literalScan: { re: RegExp; prefixes: Map<string, readonly string[]> } | undefined;
let lastText: string | undefined;
let lastFound: ReadonlySet<string> = new Set();

function registerLiterals(anyOf: readonly string[]): void {
  for (const lit of anyOf) literals.add(lit);
  literalScan = undefined;
  lastText = undefined;
}

/** Which registered literals occur in `text`: exactly those `text.includes` would find. */
export function literalsIn(text: string): ReadonlySet<string> {
  if (text === lastText) return lastFound;
  if (literalScan === undefined) {
    const all = [...literals].sort((a, b) => b.length - a.length);
    // Longest first, so a match at a position is the longest literal there; the shorter ones
    // there are its prefixes, counted with it.
    const prefixes = new Map(all.map((lit) => [lit, all.filter((other) => lit.startsWith(other))]));
    literalScan = { re: new RegExp(all.map((l) => l.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|"), "g"), prefixes };
  }
  const { re, prefixes } = literalScan;
  const found = new Set<string>();
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    for (const lit of prefixes.get(m[0])!) found.add(lit);
    re.lastIndex = m.index + 1; // a literal can start inside another one
  }
  lastText = text;
  lastFound = found;
  return found;
}

/** Builds a detector from one linear-time regex. */
export function regexDetector(spec: RegexDetectorSpec): Detector {
  if (!spec.re.global) throw new Error(`detector ${spec.id}: regex must be global`);
  const group = spec.group ?? 0;
  const anyOf = spec.anyOf;
  if (anyOf) registerLiterals(anyOf);
  return {
    id: spec.id,
    category: spec.category,
    patterns: [spec.re],
    ...(spec.needs ? { needs: spec.needs } : {}),
    find(text: string, ctx: ScanContext, out: Span[]): void {
      if (anyOf) {
        const found = literalsIn(text);
        if (!anyOf.some((lit) => found.has(lit))) return;
      }
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
