// Hostile caller evading an "unqualified DELETE/UPDATE" rule: generated tautological WHERE
// clauses (literal comparisons, a column against itself, ORs with a true branch, negations, casts,
// parentheses) and huge scripts that mention "where" somewhere. Each must be flagged, and the
// policy built on the flag must block it; real filters must not be flagged.
import fc from "fast-check";
import { beforeAll, expect, it } from "vitest";
import { classifySql, evaluate, loadSqlParser, MAX_SQL_CHARS, policySchema } from "../../gateway/policy/index.js";

beforeAll(() => loadSqlParser());

const policy = policySchema.parse({
  rules: [{ id: "no-unqualified", description: "whole-table writes", tools: ["query"], when: { sql: { path: "$.arguments.sql", has: ["delete_without_where", "update_without_where"] } }, action: "block" }],
});
const blocked = (sql: string) => evaluate(policy, { connection: "db", method: "tools/call", params: { name: "query", arguments: { sql } }, identity: { subject: "m", groups: [] } }).effectiveAction === "block";

const literal = fc.oneof(
  fc.integer({ min: -99, max: 99 }).map(String),
  fc.constantFrom("'a'", "'b'", "true", "false", "null", "now()", "current_date", "'1'::int", "(2)", "1.5e3", "E'x'"),
);
const column = fc.constantFrom("id", "users.id", '"id"', "t.owner");
const op = fc.constantFrom("=", "<>", "!=", "<", ">", "<=", ">=");
const tautology: fc.Arbitrary<string> = fc.letrec((tie) => ({
  atom: fc.oneof(
    fc.tuple(literal, op, literal).map(([a, o, b]) => `${a} ${o} ${b}`),
    fc.tuple(column, op).map(([c, o]) => `${c} ${o} ${c}`),
    fc.constantFrom("true", "NOT false", "1 IS NOT NULL", "'a' LIKE '%'", "EXISTS (SELECT 1)", "1 IN (1, 2)", "2 BETWEEN 1 AND 3"),
  ),
  clause: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    tie("atom") as fc.Arbitrary<string>,
    fc.tuple(tie("clause") as fc.Arbitrary<string>, tie("clause") as fc.Arbitrary<string>).map(([a, b]) => `(${a}) AND (${b})`),
    // An OR with one filtering branch still filters nothing for sure.
    fc.tuple(tie("clause") as fc.Arbitrary<string>, fc.tuple(column, literal).map(([c, l]) => `${c} = ${l}`)).map(([a, b]) => `(${a}) OR ${b}`),
  ),
})).clause;
const statement = fc.tuple(fc.constantFrom("DELETE FROM users WHERE", "UPDATE users SET admin = true WHERE", "delete from t where", "WITH x AS (DELETE FROM users WHERE"), tautology).map(([head, where]) =>
  head.startsWith("WITH") ? `${head} ${where} RETURNING *) SELECT 1` : `${head} ${where}`,
);

it("flags and blocks every generated tautological WHERE", () => {
  fc.assert(
    fc.property(statement, (sql) => {
      const r = classifySql(sql);
      expect(r.flags.some((f) => f === "delete_without_where" || f === "update_without_where"), `${sql} → ${r.flags.join(",")}`).toBe(true);
      expect(blocked(sql), sql).toBe(true);
    }),
    { numRuns: 300, seed: 13 },
  );
});

it("does not flag real filters", () => {
  fc.assert(
    fc.property(column, op, fc.oneof(fc.integer().map(String), fc.constantFrom("$1", "'x'", "now() - interval '1 day'")), (c, o, v) => {
      expect(blocked(`DELETE FROM users WHERE ${c} ${o} ${v}`)).toBe(false);
      expect(blocked(`UPDATE users SET a = 1 WHERE 1 = 1 AND ${c} ${o} ${v}`)).toBe(false);
    }),
    { numRuns: 100, seed: 13 },
  );
});

it("judges huge scripts whole: a 'where' anywhere never qualifies a DELETE it does not belong to", () => {
  const filler = fc.constantFrom("SELECT * FROM t WHERE id = 1;\n", "-- where clause below\n", "/* where */ SELECT 1;\n", "INSERT INTO log VALUES ('where');\n");
  fc.assert(
    fc.property(filler, fc.integer({ min: 1, max: 4 }), fc.constantFrom("DELETE FROM users", "UPDATE users SET admin = true", "delete from users where 1=1"), fc.boolean(), (pad, times, evil, first) => {
      const padding = pad.repeat(Math.ceil((MAX_SQL_CHARS * times) / pad.length));
      const sql = first ? `${evil};\n${padding}` : `${padding}${evil}`;
      const r = classifySql(sql);
      expect(r.readOnly).toBe(false);
      expect(blocked(sql)).toBe(true);
    }),
    { numRuns: 20, seed: 13 },
  );
});
