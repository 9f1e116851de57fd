/**
 * Compiles a rule's `when` conditions into a predicate over the request's params.
 *
 * A path condition selects values with its JSON path and holds when some selected value satisfies
 * every operator it lists (`exists` tests the selection itself). Comparisons:
 * - `equals` / `in`: JSON equality (strings exact and case-sensitive; "5" is not 5).
 * - `matches`: a regex search over a string (numbers and booleans are tested as their text).
 * - `contains`: a substring of a string, or an element (JSON-equal) of an array.
 * - `gt`/`gte`/`lt`/`lte`: numbers, and strings that spell a number ("5000"), because servers
 *   often coerce them; anything else never compares.
 * - `sql`: classifies the text at path (sql.ts); a non-string value is classified as its JSON
 *   text, which the parser rejects, so it fails closed.
 */
import { compileJsonPath, selectPath } from "./json-path.js";
import { compileLinearRegex, type RegexEngine } from "../linear-regex.js";
import type { ConditionConfig, SqlPredicateConfig } from "./schema.js";
import { classifySql, type SqlClassification } from "./sql.js";
import type { SqlClass } from "./sql-vocabulary.js";

/**
 * Tests params; when `notes` is given (only once a rule has matched), conditions that hold
 * describe why, for the decision's reason.
 */
export type Predicate = (params: unknown, notes?: string[]) => boolean;

export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

const NUMERIC_TEXT = /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/;
function asNumber(v: unknown): number | undefined {
  if (typeof v === "number") return Number.isFinite(v) ? v : undefined;
  if (typeof v === "string" && v.length < 400 && NUMERIC_TEXT.test(v)) return Number(v);
  return undefined;
}

const preview = (v: unknown): string => {
  const text = typeof v === "string" ? JSON.stringify(v) : (JSON.stringify(v) ?? String(v));
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
};

type ValueTest = (v: unknown) => boolean;

function compilePathCondition(c: ConditionConfig & { path: string }, engine: RegexEngine | undefined): Predicate {
  const path = compileJsonPath(c.path);
  const tests: Array<{ test: ValueTest; describe: string }> = [];
  if (c.equals !== undefined) tests.push({ test: (v) => jsonEqual(v, c.equals), describe: `equals ${preview(c.equals)}` });
  if (c.in !== undefined) {
    const options = c.in;
    tests.push({ test: (v) => options.some((o) => jsonEqual(v, o)), describe: `is in ${preview(options)}` });
  }
  if (c.matches !== undefined) {
    const re = compileLinearRegex(c.matches, c.flags ?? "", engine);
    const test: ValueTest = (v) => (typeof v === "string" ? re.test(v) : typeof v === "number" || typeof v === "boolean" ? re.test(String(v)) : false);
    tests.push({ test, describe: `matches /${c.matches}/${c.flags ?? ""}` });
  }
  if (c.contains !== undefined) {
    const needle = c.contains;
    const test: ValueTest = (v) =>
      typeof v === "string" ? needle !== null && v.includes(String(needle)) : Array.isArray(v) ? v.some((item) => jsonEqual(item, needle)) : false;
    tests.push({ test, describe: `contains ${preview(needle)}` });
  }
  const numeric = [
    ["gt", c.gt, (x: number, y: number) => x > y],
    ["gte", c.gte, (x: number, y: number) => x >= y],
    ["lt", c.lt, (x: number, y: number) => x < y],
    ["lte", c.lte, (x: number, y: number) => x <= y],
  ] as const;
  for (const [name, bound, compare] of numeric) {
    if (bound === undefined) continue;
    tests.push({
      test: (v) => {
        const n = asNumber(v);
        return n !== undefined && compare(n, bound);
      },
      describe: `${name} ${bound}`,
    });
  }

  const exists = c.exists;
  return (params, notes) => {
    const values = selectPath(path, params);
    if (exists === false) {
      if (values.length === 0) notes?.push(`${c.path} is absent`);
      return values.length === 0;
    }
    if (values.length === 0) return false;
    if (tests.length === 0) {
      notes?.push(`${c.path} exists`);
      return true;
    }
    if (!values.some((v) => tests.every((t) => t.test(v)))) return false;
    // The value itself stays out: reasons are recorded, and arguments are recorded only masked.
    notes?.push(`${c.path} ${tests.map((t) => t.describe).join(", ")}`);
    return true;
  };
}

/** `unknown` (unparseable, DO blocks, ...) might be anything but a read. */
function classMatches(classes: readonly SqlClass[], wanted: ReadonlySet<SqlClass>): SqlClass | undefined {
  for (const cls of classes) {
    if (wanted.has(cls)) return cls;
    if (cls === "unknown" && (wanted.has("write") || wanted.has("ddl"))) return "unknown";
  }
  return undefined;
}

function compileSqlCondition(p: SqlPredicateConfig): Predicate {
  const path = compileJsonPath(p.path);
  const wantedClasses = p.is ? new Set(p.is) : undefined;
  const wantedFlags = p.has;
  const holds = (c: SqlClassification): string | undefined => {
    const why: string[] = [];
    if (wantedClasses) {
      const cls = classMatches(c.classes, wantedClasses);
      if (!cls) return undefined;
      why.push(`is ${cls}`);
    }
    if (wantedFlags) {
      const flags = wantedFlags.filter((f) => c.flags.includes(f));
      if (flags.length === 0) return undefined;
      why.push(`has ${flags.join(", ")}`);
    }
    if (p.readOnly !== undefined) {
      if (c.readOnly !== p.readOnly) return undefined;
      why.push(p.readOnly ? "is read-only" : "is not read-only");
    }
    return why.join(", ");
  };
  return (params, notes) => {
    for (const v of selectPath(path, params)) {
      const c = classifySql(typeof v === "string" ? v : (JSON.stringify(v) ?? ""));
      const why = holds(c);
      if (why === undefined) continue;
      if (notes) {
        // Commands only, not the statement text: reasons are recorded, arguments only masked.
        const consequential = c.statements.filter((s) => s.class !== "read" && s.class !== "transaction");
        const commands = [...new Set((consequential.length > 0 ? consequential : c.statements).map((s) => s.command))];
        notes.push(`SQL at ${p.path} ${why}${commands.length > 0 ? ` (${commands.join(", ")})` : ""}`);
      }
      return true;
    }
    return false;
  };
}

export function compileCondition(c: ConditionConfig, engine?: RegexEngine): Predicate {
  if (c.all) {
    const parts = c.all.map((x) => compileCondition(x, engine));
    return (params, notes) => parts.every((p) => p(params, notes));
  }
  if (c.any) {
    const parts = c.any.map((x) => compileCondition(x, engine));
    return (params, notes) => {
      if (!notes) return parts.some((p) => p(params));
      // Only the branch that holds explains the match, not a partly true one before it.
      for (const p of parts) {
        const branch: string[] = [];
        if (p(params, branch)) {
          notes.push(...branch);
          return true;
        }
      }
      return false;
    };
  }
  if (c.not) {
    const inner = compileCondition(c.not, engine);
    const shown = JSON.stringify(c.not);
    return (params, notes) => {
      if (inner(params)) return false;
      notes?.push(`not ${shown.length > 80 ? `${shown.slice(0, 77)}...` : shown}`);
      return true;
    };
  }
  if (c.sql) return compileSqlCondition(c.sql);
  if (c.path !== undefined) return compilePathCondition(c as ConditionConfig & { path: string }, engine);
  // The schema guarantees one of the kinds above; an empty condition must not match everything.
  throw new Error("a condition needs one of path, sql, all, any, not");
}

/** Whether the condition (or one nested in it) classifies SQL, so the SQL parser must be loaded. */
export function conditionUsesSql(c: ConditionConfig): boolean {
  if (c.sql) return true;
  return (c.all ?? []).some(conditionUsesSql) || (c.any ?? []).some(conditionUsesSql) || (c.not !== undefined && conditionUsesSql(c.not));
}
