/**
 * Compiles regexes that come from configuration (custom masking patterns) so that no input
 * can make them run in more than linear time.
 *
 * - With the optional `re2` package installed (the default), patterns compile with RE2,
 *   whose automaton runs in time linear in the input; RE2 refuses backreferences and
 *   lookaround, so such patterns fail at config load with a message.
 * - Without it, patterns compile with V8 only after passing safe-regex2's star-height check
 *   and a check for nested or alternated quantified groups; anything that could backtrack
 *   catastrophically (`(a+)+`, `(a|aa)*`, `(.*a){20}`) is rejected at config load.
 */
import { createRequire } from "node:module";
import safeRegex from "safe-regex2";

export type RegexEngine = "re2" | "checked";

/** The subset of RegExp the masking engine uses; both RE2 and RegExp provide it. */
export interface LinearRegex {
  lastIndex: number;
  exec(text: string): RegExpExecArray | null;
  readonly source: string;
}

export class UnsafePatternError extends Error {
  constructor(
    readonly pattern: string,
    reason: string,
  ) {
    super(`masking pattern ${JSON.stringify(pattern)} rejected: ${reason}`);
    this.name = "UnsafePatternError";
  }
}

type Re2Constructor = new (source: string, flags?: string) => LinearRegex;
let re2Constructor: Re2Constructor | null | undefined;

/** The RE2 constructor, or null when the native module is not installed or failed to build. */
export function loadRe2(): Re2Constructor | null {
  if (re2Constructor === undefined) {
    try {
      re2Constructor = createRequire(import.meta.url)("re2") as Re2Constructor;
    } catch {
      re2Constructor = null;
    }
  }
  return re2Constructor;
}

/** A quantified group that itself contains a quantifier or an alternation: the classic ReDoS shapes. */
const NESTED_QUANTIFIER = /\((?:[^()\\]|\\.)*(?:[*+}]|\|)(?:[^()\\]|\\.)*\)(?:[*+]|\{\d+,?\d*\})/;

/** Throws UnsafePatternError when the pattern could backtrack catastrophically under V8. */
export function assertBacktrackSafe(source: string): void {
  if (!safeRegex(source, { limit: 25 })) throw new UnsafePatternError(source, "nested quantifiers (star height > 1) can backtrack catastrophically");
  if (NESTED_QUANTIFIER.test(source)) throw new UnsafePatternError(source, "a repeated group contains a quantifier or alternation");
  if (/\\[1-9]|\\k</.test(source)) throw new UnsafePatternError(source, "backreferences are not allowed");
}

/**
 * Compiles a configured pattern into a global, linear-time regex.
 * @param engine "re2" (default when available) or "checked" (V8 after the backtracking checks).
 */
export function compileLinearRegex(source: string, flags = "", engine: RegexEngine = loadRe2() ? "re2" : "checked"): LinearRegex {
  const allFlags = [...new Set((flags + "g").split(""))].filter((f) => "gimsu".includes(f)).join("");
  if (source.length > 1000) throw new UnsafePatternError(source.slice(0, 40) + "…", "longer than 1000 characters");
  if (engine === "re2") {
    const RE2 = loadRe2();
    if (!RE2) throw new UnsafePatternError(source, "the re2 module is not installed");
    try {
      return new RE2(source, allFlags);
    } catch (err) {
      throw new UnsafePatternError(source, `RE2 cannot compile it (${(err as Error).message}); lookaround and backreferences are not supported`);
    }
  }
  assertBacktrackSafe(source);
  try {
    return new RegExp(source, allFlags);
  } catch (err) {
    throw new UnsafePatternError(source, (err as Error).message);
  }
}
