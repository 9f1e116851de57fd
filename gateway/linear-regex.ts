/**
 * Regexes that come from configuration (policy `matches`, custom masking patterns) run against
 * caller- or upstream-controlled text, so they must run in time linear in the input whatever the
 * pattern and the input.
 *
 * - By default patterns compile with RE2 semantics through `re2js`, a pure-JavaScript port of RE2
 *   (no native build): its automaton never backtracks, so `(a+)+$` is harmless. RE2 has no
 *   backreferences or lookaround: such patterns are rejected at config load with the reason.
 * - The `checked` engine (V8's own, for callers that ask for it) accepts a pattern only if it
 *   passes safe-regex2's star-height check and a check for repeated groups that contain a
 *   quantifier or an alternation; the classic ReDoS shapes (`(a+)+`, `(a|aa)*`, `(.*a){20}`) are
 *   rejected. Backreferences and lookaround are refused too, so both engines accept the same kind
 *   of pattern.
 */
import { RE2JS } from "re2js";
import safeRegex from "safe-regex2";

export type RegexEngine = "re2" | "checked";

/** The subset of RegExp the gateway uses: both engines provide it. */
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

/** The engine patterns compile with by default: RE2's, always available. */
export function defaultRegexEngine(): RegexEngine {
  return "re2";
}

/**
 * An RE2 pattern behind RegExp's exec/test/lastIndex contract, so the masker and the policy use
 * either engine the same way. With the g flag, matching starts at lastIndex and moves it past the
 * match; without it, every call searches from the start.
 */
class Re2Regex implements LinearRegex {
  lastIndex = 0;
  readonly #pattern: RE2JS;
  readonly #global: boolean;
  readonly #names: Array<[string, number]>;

  constructor(
    readonly source: string,
    flags: string,
  ) {
    let f = 0;
    if (flags.includes("i")) f |= RE2JS.CASE_INSENSITIVE;
    if (flags.includes("m")) f |= RE2JS.MULTILINE;
    if (flags.includes("s")) f |= RE2JS.DOTALL;
    this.#pattern = RE2JS.compile(source, f);
    this.#global = flags.includes("g");
    this.#names = Object.entries(this.#pattern.namedGroups() as Record<string, number>);
  }

  exec(text: string): RegExpExecArray | null {
    const start = this.#global ? this.lastIndex : 0;
    if (start > text.length) {
      this.lastIndex = 0;
      return null;
    }
    const m = this.#pattern.matcher(text);
    if (!m.find(start)) {
      if (this.#global) this.lastIndex = 0;
      return null;
    }
    const groups: string[] = [];
    for (let g = 0; g <= m.groupCount(); g++) groups.push(m.group(g) ?? (undefined as unknown as string));
    const result = Object.assign(groups, {
      index: m.start(),
      input: text,
      groups: this.#names.length ? Object.fromEntries(this.#names.map(([name, i]) => [name, groups[i]])) : undefined,
    }) as unknown as RegExpExecArray;
    if (this.#global) this.lastIndex = m.end();
    return result;
  }

  test(text: string): boolean {
    return this.exec(text) !== null;
  }
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
    try {
      return new Re2Regex(source, uniqueFlags);
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
