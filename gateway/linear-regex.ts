/**
 * Regexes that come from configuration (policy `matches`, custom masking patterns) run against
 * caller- or upstream-controlled text, so they must run in time linear in the input whatever the
 * pattern and the input.
 *
 * - With the `re2` package (an optional dependency, installed by default) patterns compile with
 *   RE2, whose automaton never backtracks. RE2 has no backreferences or lookaround: such
 *   patterns are rejected at config load with the reason.
 * - Without it, patterns compile with V8 only if they pass safe-regex2's star-height check and
 *   a check for repeated groups that contain a quantifier or an alternation; the classic ReDoS
 *   shapes (`(a+)+`, `(a|aa)*`, `(.*a){20}`) are rejected at config load. Backreferences and
 *   lookaround are refused too, so a config valid here is valid where RE2 is installed.
 */
import { createRequire } from "node:module";
import safeRegex from "safe-regex2";

export type RegexEngine = "re2" | "checked";

/** The subset of RegExp the gateway uses; RE2 provides it too. */
export interface LinearRegex {
  lastIndex: number;
  test(text: string): boolean;
  exec(text: string): RegExpExecArray | null;
  readonly source: string;
}

export class UnsafeRegexError extends Error {
  constructor(
    readonly pattern: string,
    readonly reason: string,
  ) {
    super(reason);
    this.name = "UnsafeRegexError";
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

/** The engine patterns compile with by default on this installation. */
export function defaultRegexEngine(): RegexEngine {
  return loadRe2() ? "re2" : "checked";
}

export const MAX_PATTERN_LENGTH = 1000;
export const REGEX_FLAGS = /^[imsu]*$/;

/** A quantified group that itself holds a quantifier or an alternation: the classic ReDoS shapes. */
const NESTED_QUANTIFIER = /\((?:[^()\\]|\\.)*(?:[*+}]|\|)(?:[^()\\]|\\.)*\)(?:[*+]|\{\d+,?\d*\})/;

/** Throws UnsafeRegexError when the pattern could take more than linear time under V8. */
export function assertBacktrackSafe(source: string): void {
  if (/\\[1-9]|\\k</.test(source)) throw new UnsafeRegexError(source, "backreferences are not allowed: they can take exponential time");
  if (/\(\?<?[=!]/.test(source)) throw new UnsafeRegexError(source, "lookaround is not allowed (RE2 does not support it either)");
  if (!safeRegex(source, { limit: 25 }) || NESTED_QUANTIFIER.test(source)) {
    throw new UnsafeRegexError(source, "a repeated group contains a quantifier or an alternation (like (a+)+ or (a|aa)*): it can backtrack catastrophically");
  }
}

/**
 * Compiles a configured pattern; throws UnsafeRegexError with a reason a person can act on.
 * Matching is a search (unanchored): use `^` and `$` to match a whole value. `global` adds the
 * g flag for callers that iterate over matches with exec and lastIndex.
 */
export function compileLinearRegex(source: string, flags = "", engine: RegexEngine = defaultRegexEngine(), options: { global?: boolean } = {}): LinearRegex {
  if (!REGEX_FLAGS.test(flags)) throw new UnsafeRegexError(source, `unsupported regex flags ${JSON.stringify(flags)}: use any of i, m, s, u`);
  if (source.length > MAX_PATTERN_LENGTH) throw new UnsafeRegexError(source, `pattern longer than ${MAX_PATTERN_LENGTH} characters`);
  const uniqueFlags = [...new Set(flags + (options.global ? "g" : ""))].join("");
  if (engine === "re2") {
    const RE2 = loadRe2();
    if (!RE2) throw new UnsafeRegexError(source, "the re2 module is not installed");
    try {
      return new RE2(source, uniqueFlags);
    } catch (err) {
      throw new UnsafeRegexError(source, `not a valid RE2 pattern (${(err as Error).message}); backreferences and lookaround are not supported`);
    }
  }
  let compiled: RegExp;
  try {
    compiled = new RegExp(source, uniqueFlags);
  } catch (err) {
    throw new UnsafeRegexError(source, `not a valid pattern (${(err as Error).message})`);
  }
  assertBacktrackSafe(source);
  return compiled;
}
