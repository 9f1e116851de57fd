/**
 * Classifies SQL text (one statement or a script) as read-only, write, DDL, ... with flags such as
 * `delete_without_where` or `drop`, for policy rules on SQL-bearing tools.
 *
 * The parser is PostgreSQL's own (libpg-query: the server's grammar compiled to WebAssembly), so
 * what it accepts is what a PostgreSQL server would run. It costs about 0.3 s and 20 MB resident to
 * load, so it is loaded only when a policy has an sql condition (loadSqlParser: the gateway calls it
 * at start and before applying a reloaded file); classification stays synchronous afterwards.
 *
 * Fail closed: text the parser rejects (another dialect, a syntax error, more than
 * MAX_SQL_CHARS) is class `unknown`, never read-only, and its keywords still raise the flags they
 * suggest over the whole text (a `DROP` anywhere raises `drop`, a `DELETE` anywhere raises
 * `delete_without_where`: a WHERE that cannot be parsed cannot be credited). The classification is of the text only: a function
 * called by a SELECT may still write; pair rules with a read-only database role where it matters.
 */
import { loadModule, parseSync } from "libpg-query";
import type { SqlClass, SqlFlag } from "./sql-vocabulary.js";

let parserLoaded = false;
let loading: Promise<void> | undefined;

/** Loads PostgreSQL's parser once. Until it is loaded every text classifies as unparseable (fail closed). */
export function loadSqlParser(): Promise<void> {
  return (loading ??= loadModule().then(() => {
    parserLoaded = true;
  }));
}

export function sqlParserLoaded(): boolean {
  return parserLoaded;
}

/**
 * Longer text is not parsed and counts as unparseable: parsing a large statement takes
 * milliseconds (tens of them for ~80 KB of INSERT ... VALUES) on the event loop.
 */
export const MAX_SQL_CHARS = 32_768;

export interface SqlStatementClassification {
  /** The SQL command, e.g. `DELETE`, `CREATE TABLE`, `EXPLAIN`; `?` when unparseable. */
  command: string;
  class: SqlClass;
  flags: SqlFlag[];
  /** The statement's text, shortened to 120 characters. Raw caller input: mask it before recording. */
  text: string;
}

export interface SqlClassification {
  /** Distinct classes of the statements, most consequential first. */
  classes: SqlClass[];
  /** Distinct flags of all statements plus script-level ones (`multiple_statements`, `empty`). */
  flags: SqlFlag[];
  /** True when every statement is `read` or `transaction` (an empty script is read-only). */
  readOnly: boolean;
  statements: SqlStatementClassification[];
}

/** Most consequential first; a statement's class is the highest of what it does. */
const SEVERITY: Record<SqlClass, number> = { unknown: 5, ddl: 4, write: 3, other: 2, read: 1, transaction: 0 };

const READ = new Set(["SelectStmt", "VariableShowStmt", "FetchStmt"]);
const WRITE = new Set(["InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt", "LockStmt", "VacuumStmt", "ClusterStmt", "RefreshMatViewStmt", "ReindexStmt"]);
const TRANSACTION = new Set(["TransactionStmt"]);
const OTHER = new Set(["VariableSetStmt", "DiscardStmt", "ListenStmt", "UnlistenStmt", "NotifyStmt", "DeallocateStmt", "ClosePortalStmt", "CheckPointStmt", "ConstraintsSetStmt"]);
const PROCEDURAL = new Set(["DoStmt", "CallStmt", "ExecuteStmt", "LoadStmt"]);
const MODIFYING = new Set(["InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"]);

/** Functions that change state although called from a SELECT. */
const SIDE_EFFECT_FUNCTIONS = new Set([
  "nextval", "setval", "set_config", "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile",
  "pg_switch_wal", "pg_create_restore_point", "pg_promote", "pg_notify", "pg_logical_emit_message", "pg_file_write",
  "pg_file_unlink", "pg_file_rename", "query_to_xml", "query_to_xml_and_xmlschema", "query_to_xmlschema", "pg_import_system_collations",
]);
const SIDE_EFFECT_PREFIXES = ["lo_", "dblink", "pg_advisory", "pg_try_advisory", "pg_stat_reset", "pg_create_", "pg_drop_", "pg_replication_"];

const COMMAND_NAMES: Record<string, string> = {
  VariableShowStmt: "SHOW", VariableSetStmt: "SET", CreateStmt: "CREATE TABLE", IndexStmt: "CREATE INDEX", ViewStmt: "CREATE VIEW",
  TransactionStmt: "TRANSACTION", DoStmt: "DO", DropStmt: "DROP", RenameStmt: "ALTER ... RENAME", CreateFunctionStmt: "CREATE FUNCTION",
  DropRoleStmt: "DROP ROLE", DropdbStmt: "DROP DATABASE", CreatedbStmt: "CREATE DATABASE", CommentStmt: "COMMENT", ClosePortalStmt: "CLOSE",
  CopyStmt: "COPY", RefreshMatViewStmt: "REFRESH MATERIALIZED VIEW", CreateTableAsStmt: "CREATE TABLE AS", FetchStmt: "FETCH",
};

type Node = Record<string, unknown>;
const isNode = (v: unknown): v is Node => typeof v === "object" && v !== null && !Array.isArray(v);

function commandName(type: string, body: Node): string {
  if (type === "GrantStmt") return body.is_grant ? "GRANT" : "REVOKE";
  if (type === "GrantRoleStmt") return body.is_grant ? "GRANT ROLE" : "REVOKE ROLE";
  return COMMAND_NAMES[type] ?? type.replace(/Stmt$/, "").replace(/([a-z])([A-Z])/g, "$1 $2").toUpperCase();
}

interface Effect {
  cls: SqlClass;
  flags: Set<SqlFlag>;
}

const raise = (e: Effect, cls: SqlClass) => {
  if (SEVERITY[cls] > SEVERITY[e.cls]) e.cls = cls;
};

/**
 * Whether a WHERE clause filters by a column: one of its AND-ed conjuncts compares a column with
 * a constant (a literal, a parameter, or an expression of them such as `now() - interval '1 day'`),
 * tests a column (`WHERE banned`, `NOT banned`, `x IS NULL`), or is an OR whose every branch
 * does. `WHERE true`, `WHERE 2 > 1`, `WHERE id = id`, `WHERE true OR false` and
 * `WHERE 1=1 OR x=1` filter nothing for sure or by construction: they count as no WHERE at all.
 * The walk of a conjunct's sides is bounded by MAX_WHERE_NODES: past it the clause is not
 * credited (fail closed).
 */
function isQualified(where: unknown): boolean {
  if (!isNode(where)) return false;
  const bool = where.BoolExpr;
  if (isNode(bool)) {
    const args = Array.isArray(bool.args) ? bool.args : [];
    if (bool.boolop === "AND_EXPR") return args.some(isQualified);
    if (bool.boolop === "OR_EXPR") return args.length > 0 && args.every(isQualified);
    // NOT of a column test (`NOT banned`) still tests the column.
    return bool.boolop === "NOT_EXPR" && args.length === 1 && isColumn(args[0]);
  }
  if (isColumn(where)) return true; // a boolean column: compared with true
  const test = where.NullTest ?? where.BooleanTest;
  if (isNode(test)) return isColumn(test.arg);
  const expr = where.A_Expr;
  if (!isNode(expr)) return false;
  // One side names a column, the other is built from constants only: `id = $1`, `id IN (1, 2)`,
  // `a BETWEEN 1 AND 2`, `name LIKE 'x%'`, `d < now() - interval '1 day'`.
  const left = sideOf(expr.lexpr);
  const right = sideOf(expr.rexpr);
  return (left === "column" && right === "constant") || (left === "constant" && right === "column");
}

const MAX_WHERE_NODES = 1000;

/** A column reference, possibly cast or passed through a function (`lower(email)`). */
function isColumn(node: unknown): boolean {
  if (!isNode(node)) return false;
  if (isNode(node.ColumnRef)) return true;
  if (isNode(node.TypeCast)) return isColumn(node.TypeCast.arg);
  return false;
}

/** "column" when the expression references columns, "constant" when it is built from constants alone, "other" otherwise (subqueries, too large). */
function sideOf(node: unknown): "column" | "constant" | "other" {
  let columns = 0;
  let budget = MAX_WHERE_NODES;
  const stack: unknown[] = [node];
  while (stack.length > 0) {
    const n = stack.pop();
    if (--budget < 0) return "other";
    if (Array.isArray(n)) {
      stack.push(...n);
      continue;
    }
    if (!isNode(n)) continue;
    if (isNode(n.ColumnRef)) {
      columns++;
      continue;
    }
    if (n.SubLink !== undefined || n.SelectStmt !== undefined) return "other";
    for (const [key, value] of Object.entries(n)) if (key !== "location" && typeof value === "object" && value !== null) stack.push(value);
  }
  return columns > 0 ? "column" : node === undefined ? "other" : "constant";
}

function functionName(call: Node): string {
  const parts = Array.isArray(call.funcname) ? call.funcname : [];
  const last = parts[parts.length - 1];
  return isNode(last) && isNode(last.String) && typeof last.String.sval === "string" ? last.String.sval.toLowerCase() : "";
}

/** Effects hidden inside a statement that runs now: data-modifying CTEs, row locks, side-effect calls. */
function walkExecuted(node: unknown, e: Effect): void {
  if (Array.isArray(node)) {
    for (const item of node) walkExecuted(item, e);
    return;
  }
  if (!isNode(node)) return;
  for (const [key, value] of Object.entries(node)) {
    if (MODIFYING.has(key) && isNode(value)) {
      raise(e, "write");
      e.flags.add("data_modifying_cte");
      addWhereFlags(key, value, e);
    } else if (key === "lockingClause" && Array.isArray(value) && value.length > 0) {
      raise(e, "write");
      e.flags.add("row_lock");
    } else if (key === "intoClause" && isNode(value)) {
      raise(e, "ddl");
      e.flags.add("select_into");
    } else if (key === "FuncCall" && isNode(value)) {
      const name = functionName(value);
      if (SIDE_EFFECT_FUNCTIONS.has(name) || SIDE_EFFECT_PREFIXES.some((p) => name.startsWith(p))) {
        raise(e, "write");
        e.flags.add("side_effect_function");
      }
    }
    if (typeof value === "object" && value !== null) walkExecuted(value, e);
  }
}

function addWhereFlags(type: string, body: Node, e: Effect): void {
  // A positioned DELETE/UPDATE (WHERE CURRENT OF) touches one row.
  const unfiltered = !isQualified(body.whereClause) && !isNode((body.whereClause as Node | undefined)?.CurrentOfExpr);
  if (type === "DeleteStmt" && unfiltered) e.flags.add("delete_without_where");
  if (type === "UpdateStmt" && unfiltered) e.flags.add("update_without_where");
}

function explainAnalyzes(body: Node): boolean {
  const options = Array.isArray(body.options) ? body.options : [];
  return options.some((o) => {
    const def = isNode(o) ? o.DefElem : undefined;
    if (!isNode(def) || def.defname !== "analyze") return false;
    if (def.arg === undefined) return true;
    const arg = def.arg as Node;
    const text = isNode(arg.String) ? String(arg.String.sval) : isNode(arg.Boolean) ? String(arg.Boolean.boolval ?? false) : isNode(arg.Integer) ? String(arg.Integer.ival ?? 0) : "true";
    return !["false", "off", "0", "no"].includes(text.toLowerCase());
  });
}

/** Classifies one parsed statement node (`{ DeleteStmt: {...} }`), including what it runs inside. */
function classifyNode(stmt: unknown, e: Effect): string {
  if (!isNode(stmt)) {
    raise(e, "unknown");
    return "?";
  }
  const type = Object.keys(stmt)[0] ?? "?";
  const body = isNode(stmt[type]) ? (stmt[type] as Node) : {};
  if (type === "ExplainStmt") {
    raise(e, "read");
    if (explainAnalyzes(body)) {
      e.flags.add("explain_analyze");
      classifyNode(body.query, e);
    }
    return "EXPLAIN";
  }
  if (type === "CopyStmt") {
    if (body.is_program) e.flags.add("copy_program");
    else if (!body.is_from && typeof body.filename === "string") e.flags.add("copy_to_file");
    raise(e, body.is_from || body.is_program || typeof body.filename === "string" ? "write" : "read");
    if (body.query !== undefined) classifyNode(body.query, e);
    return "COPY";
  }
  if (type === "PrepareStmt" || type === "DeclareCursorStmt" || type === "CreateTableAsStmt") {
    // What is prepared or declared runs later, under this session: judge it now.
    raise(e, type === "CreateTableAsStmt" ? "ddl" : "read");
    classifyNode(body.query, e);
    return commandName(type, body);
  }
  if (READ.has(type)) raise(e, "read");
  else if (WRITE.has(type)) raise(e, "write");
  else if (TRANSACTION.has(type)) raise(e, "transaction");
  else if (OTHER.has(type)) raise(e, "other");
  else if (PROCEDURAL.has(type)) {
    raise(e, "unknown");
    e.flags.add("procedural");
  } else raise(e, "ddl");
  if (type === "DoStmt") {
    // The block's body is PL/pgSQL text: its words say what it may do (DROP, TRUNCATE, ...).
    for (const arg of Array.isArray(body.args) ? body.args : []) {
      const def = isNode(arg) ? arg.DefElem : undefined;
      if (isNode(def) && def.defname === "as" && isNode(def.arg) && isNode(def.arg.String)) keywordFlags(String(def.arg.String.sval), e.flags);
    }
    e.flags.delete("multiple_statements");
  }

  if (READ.has(type) || WRITE.has(type)) {
    addWhereFlags(type, body, e);
    walkExecuted(body, e);
  }
  if (type.startsWith("Drop")) e.flags.add("drop");
  if (type === "TruncateStmt") e.flags.add("truncate");
  if (type === "GrantStmt" || type === "GrantRoleStmt") e.flags.add("grant");
  if (type === "AlterTableStmt" && Array.isArray(body.cmds)) {
    const drops = body.cmds.some((c) => isNode(c) && isNode(c.AlterTableCmd) && /^AT_Drop(Column|Constraint)$/.test(String(c.AlterTableCmd.subtype)));
    if (drops) e.flags.add("drop");
  }
  return commandName(type, body);
}

const shorten = (text: string) => {
  const t = text.slice(0, 1000).replace(/\s+/g, " ").trim();
  return t.length > 120 ? `${t.slice(0, 117)}...` : t;
};

/**
 * The words of text that cannot be analysed statement by statement. Plain words, not tokens: a
 * keyword inside a string literal or comment also counts, which errs on the side of flagging
 * (and PL/pgSQL hides dynamic SQL in string literals: EXECUTE 'DROP ...'). Also far cheaper than
 * the parser's own scanner on long text.
 */
function keywordsOf(sql: string): { words: Set<string>; multiple: boolean } {
  return { words: new Set((sql.match(/[A-Za-z_]+/g) ?? []).map((w) => w.toLowerCase())), multiple: /;\s*\S/.test(sql) };
}

/** Flags that keywords suggest, for text that cannot be analysed statement by statement. */
function keywordFlags(sql: string, flags: Set<SqlFlag>): void {
  const { words: has, multiple } = keywordsOf(sql);
  if (has.has("drop")) flags.add("drop");
  if (has.has("truncate")) flags.add("truncate");
  if (has.has("grant") || has.has("revoke")) flags.add("grant");
  // Without a parse no WHERE can be judged (a "where" may sit in a comment, a string, another
  // statement, or be a tautology): the riskiest reading holds, whatever the text's size.
  if (has.has("delete")) flags.add("delete_without_where");
  if (has.has("update")) flags.add("update_without_where");
  if (has.has("do") || has.has("call") || has.has("execute")) flags.add("procedural");
  if (multiple) flags.add("multiple_statements");
}

function unparseable(sql: string): SqlClassification {
  const flags = new Set<SqlFlag>(["unparseable"]);
  keywordFlags(sql, flags);
  const statement: SqlStatementClassification = { command: "?", class: "unknown", flags: [...flags], text: shorten(sql) };
  return { classes: ["unknown"], flags: [...flags], readOnly: false, statements: [statement] };
}

function classifyUncached(sql: string): SqlClassification {
  if (sql.length > MAX_SQL_CHARS) return unparseable(sql);
  let stmts: Array<{ stmt?: unknown; stmt_location?: number; stmt_len?: number }>;
  try {
    stmts = sql.trim() === "" ? [] : (parseSync(sql).stmts ?? []);
  } catch {
    return unparseable(sql);
  }
  const statements = stmts.map((s): SqlStatementClassification => {
    const e: Effect = { cls: "transaction", flags: new Set() };
    const command = classifyNode(s.stmt, e);
    const start = s.stmt_location ?? 0;
    const text = s.stmt_len ? sql.slice(start, start + s.stmt_len) : sql.slice(start);
    return { command, class: e.cls, flags: [...e.flags], text: shorten(text) };
  });
  const flags = new Set(statements.flatMap((s) => s.flags));
  if (statements.length > 1) flags.add("multiple_statements");
  if (statements.length === 0) flags.add("empty");
  const classes = [...new Set(statements.map((s) => s.class))].sort((a, b) => SEVERITY[b] - SEVERITY[a]);
  return { classes, flags: [...flags], readOnly: statements.every((s) => s.class === "read" || s.class === "transaction"), statements };
}

// Tools are called with the same statements again and again; parsing is the costly part.
const CACHE_MAX_ENTRIES = 512;
const CACHE_MAX_CHARS = 8192;
const cache = new Map<string, SqlClassification>();

function frozen(c: SqlClassification): SqlClassification {
  for (const s of c.statements) Object.freeze(Object.freeze(s).flags);
  Object.freeze(c.statements);
  Object.freeze(c.classes);
  Object.freeze(c.flags);
  return Object.freeze(c);
}

/** Classifies SQL text. Pure; results are frozen because short texts' results are memoised and shared. */
export function classifySql(sql: string): SqlClassification {
  if (!parserLoaded) return frozen(unparseable(sql)); // not remembered: the parser may come later
  if (sql.length > CACHE_MAX_CHARS) return frozen(classifyUncached(sql));
  let result = cache.get(sql);
  if (!result) {
    result = frozen(classifyUncached(sql));
    if (cache.size >= CACHE_MAX_ENTRIES) cache.delete(cache.keys().next().value!);
    cache.set(sql, result);
  }
  return result;
}
