// What an approver reads of a held call's arguments, within a Slack section: one line per key
// (as many as fit, then "31 of 500 keys shown"), long strings as head and tail so the end of a
// statement (its WHERE) stays visible, and for SQL, what the statement does and to which tables,
// in words. Every piece is escaped before it is measured (bot/blocks.ts).
import { classifySql, MAX_SQL_CHARS, sqlParserLoaded } from "../gateway/policy/sql.js";
import { escapeMrkdwn, fit, thousands } from "./blocks.js";

/** Keys whose string value is SQL, and text that starts like a statement. */
const SQL_KEY = /^(sql|query|statement|stmt|command)$/i;
const SQL_START = /^\s*(select|insert|update|delete|merge|with|create|alter|drop|truncate|grant|revoke|copy|begin|call|do|vacuum|explain)\b/i;

const CLASS_WORDS: Record<string, string> = {
  read: "reads data",
  write: "changes data",
  ddl: "changes the schema or permissions",
  transaction: "controls a transaction",
  other: "changes session settings",
  unknown: "may change anything (what runs cannot be known from the text): treat it as a write",
};

const FLAG_WORDS: Record<string, string> = {
  delete_without_where: "DELETE without WHERE (every row)",
  update_without_where: "UPDATE without WHERE (every row)",
  drop: "drops something",
  truncate: "empties a table",
  grant: "grants or revokes privileges",
  multiple_statements: "several statements",
  data_modifying_cte: "a WITH clause that writes",
  row_lock: "locks rows",
  select_into: "creates a table",
  explain_analyze: "EXPLAIN ANALYZE runs the statement",
  copy_program: "runs a shell command on the server",
  copy_to_file: "writes a file on the server",
  side_effect_function: "calls a function with side effects",
  procedural: "runs procedural code",
};

export function looksLikeSql(key: string, value: unknown): value is string {
  return typeof value === "string" && (SQL_KEY.test(key) ? value.trim().length > 0 : SQL_START.test(value));
}

/** Table names after FROM / JOIN / INTO / UPDATE / TABLE, by keyword (also for text too long to parse). */
export function tablesTouched(sql: string): string[] {
  const found = new Set<string>();
  const re = /\b(?:from|join|into|update|table(?:\s+if\s+(?:not\s+)?exists)?|truncate(?:\s+table)?)\s+(?:only\s+)?((?:"[^"]{1,63}"|[a-z_][\w$]{0,62})(?:\.(?:"[^"]{1,63}"|[a-z_][\w$]{0,62}))?)/gi;
  // Long statements: the start and the end say which tables (the middle is usually VALUES).
  const text = sql.length > 40_000 ? `${sql.slice(0, 20_000)}\n${sql.slice(-20_000)}` : sql;
  for (const m of text.matchAll(re)) {
    const name = m[1]!;
    if (/^(select|set|values|where|lateral|unnest)$/i.test(name)) continue;
    found.add(name);
    if (found.size > 50) break;
  }
  return [...found];
}

/** What a statement's first keyword says it does, when the parser cannot tell (not loaded, or too long). */
const KEYWORD_CLASS: Record<string, string> = {
  SELECT: "read", WITH: "unknown", EXPLAIN: "read", INSERT: "write", UPDATE: "write", DELETE: "write", MERGE: "write", COPY: "write", VACUUM: "write",
  CREATE: "ddl", ALTER: "ddl", DROP: "ddl", TRUNCATE: "ddl", GRANT: "ddl", REVOKE: "ddl", BEGIN: "transaction", CALL: "unknown", DO: "unknown",
};

/**
 * "*UPDATE*: changes data · tables: `orders` · 204,900 characters", escaped mrkdwn. The class and
 * flags come from the policy's classifier (gateway/policy/sql.ts) when its parser is loaded and
 * accepts the text; otherwise from the first keyword, and the line says so.
 */
export function describeSql(sql: string): string {
  const c = classifySql(sql);
  const parsed = sqlParserLoaded() && !c.flags.includes("unparseable");
  const keyword = SQL_START.exec(sql)?.[1]?.toUpperCase();
  const commands = parsed ? [...new Set(c.statements.map((s) => s.command).filter((x) => x && x !== "?"))] : [];
  const kind = commands.length > 0 ? commands.join(", ") : (keyword ?? "statement");
  const classes = parsed ? c.classes : [KEYWORD_CLASS[keyword ?? ""] ?? "unknown"];
  const what = classes.map((k) => CLASS_WORDS[k] ?? k).join("; ");
  const tables = tablesTouched(sql);
  const flags = (parsed ? c.flags : []).map((f) => FLAG_WORDS[f]).filter(Boolean);
  const shownTables = tables.slice(0, 8).map((t) => `\`${escapeMrkdwn(t)}\``).join(", ");
  const why = !sqlParserLoaded() ? "no SQL rule is configured, so the parser is not loaded" : sql.length > MAX_SQL_CHARS ? `longer than the ${thousands(MAX_SQL_CHARS)} characters the parser reads` : "the PostgreSQL parser did not accept this text";
  return [
    `*${escapeMrkdwn(kind)}*: ${escapeMrkdwn(what || "nothing")}`,
    tables.length > 0 ? `tables: ${shownTables}${tables.length > 8 ? ` … +${tables.length - 8} more` : ""}` : "tables: none named",
    flags.length > 0 ? `watch: ${escapeMrkdwn(flags.join(", "))}` : undefined,
    parsed ? undefined : `_judged by its first keyword: ${escapeMrkdwn(why)}_`,
    `${thousands(sql.length)} characters`,
  ]
    .filter(Boolean)
    .join(" · ");
}

export interface ArgumentsSummary {
  /** Escaped mrkdwn lines, one per key shown (inside a code block). */
  text: string;
  shownKeys: number;
  totalKeys: number;
  /** Something was shortened: Details shows more. */
  folded: boolean;
  /** SQL descriptions (escaped mrkdwn), one per SQL-bearing key. */
  sql: Array<{ key: string; description: string }>;
}

/** Longest value shown per key in the message (head and tail around the middle left out). */
const VALUE_CHARS = 300;

/**
 * The arguments as key: value lines within `budget` characters (as sent). A non-object shows as
 * one value.
 */
export function summarizeArguments(args: unknown, budget: number): ArgumentsSummary {
  const entries: Array<[string, unknown]> = args && typeof args === "object" && !Array.isArray(args) ? Object.entries(args as Record<string, unknown>) : [["(arguments)", args]];
  const lines: string[] = [];
  let used = 0;
  let folded = false;
  const sql: ArgumentsSummary["sql"] = [];
  // Room for the "N of M keys shown" line.
  const reserve = 40;
  for (const [key, value] of entries) {
    if (looksLikeSql(key, value) && sql.length < 3) sql.push({ key, description: describeSql(value) });
    const raw = typeof value === "string" ? value : (JSON.stringify(value) ?? "null");
    const k = fit(key, 60, { tail: 0 });
    // A ``` inside a value would end the code block early.
    const v = fit(raw, VALUE_CHARS).replace(/```/g, "`\u200b``");
    if (v.length < escapeMrkdwn(raw).length || k.length < escapeMrkdwn(key).length) folded = true;
    const line = `${k}: ${v}`;
    if (used + line.length + 1 > budget - reserve) {
      // A long line that does not fit whole: shortened to what is left, if that is worth it.
      const room = budget - reserve - used - k.length - 3;
      if (room >= 60 && lines.length === 0) {
        lines.push(`${k}: ${fit(raw, room).replace(/```/g, "`\u200b``")}`);
        used += lines[lines.length - 1]!.length + 1;
        folded = true;
      }
      break;
    }
    lines.push(line);
    used += line.length + 1;
  }
  if (lines.length < entries.length) folded = true;
  return { text: lines.join("\n"), shownKeys: lines.length, totalKeys: entries.length, folded, sql };
}
