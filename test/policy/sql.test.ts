// The SQL classifier against a labelled corpus (test/policy/sql-corpus.yaml): every entry's exact
// classes and flags. Read-only must never be said of text that could change anything.
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { loadSqlParser, classifySql, MAX_SQL_CHARS, SQL_CLASSES, SQL_FLAGS } from "../../gateway/policy/index.js";

// PostgreSQL's parser is loaded on demand (the gateway loads it when a policy has sql conditions).
beforeAll(() => loadSqlParser());

interface CorpusEntry {
  sql: string;
  note?: string;
  classes: string[];
  flags: string[];
  readOnly?: boolean;
}

const corpus = parse(readFileSync(new URL("./sql-corpus.yaml", import.meta.url), "utf8")) as CorpusEntry[];

describe("SQL corpus", () => {
  it("is large enough and uses only known classes and flags", () => {
    expect(corpus.length).toBeGreaterThanOrEqual(60);
    for (const e of corpus) {
      for (const c of e.classes) expect(SQL_CLASSES).toContain(c);
      for (const f of e.flags) expect(SQL_FLAGS).toContain(f);
    }
  });

  it.each(corpus.map((e) => [e.sql.replace(/\s+/g, " ").trim().slice(0, 90), e] as const))("%s", (_label, entry) => {
    const result = classifySql(entry.sql);
    expect([...result.classes].sort(), entry.note).toEqual([...entry.classes].sort());
    expect([...result.flags].sort(), entry.note).toEqual([...entry.flags].sort());
    expect(result.readOnly).toBe(result.classes.every((c) => c === "read" || c === "transaction") && !result.flags.includes("unparseable"));
    if (entry.readOnly !== undefined) expect(result.readOnly).toBe(entry.readOnly);
  });
});

describe("SQL classifier", () => {
  it("never calls unparseable text read-only", () => {
    for (const text of ["SELECT * FROM `t`", "SELEC 1", "{}", "SELECT 'x"]) {
      const r = classifySql(text);
      expect(r.readOnly).toBe(false);
      expect(r.classes).toEqual(["unknown"]);
      expect(r.flags).toContain("unparseable");
    }
  });

  it("treats text over the size limit as unparseable, keeping keyword flags", () => {
    const huge = `SELECT 1; ${"-- padding\n".repeat(MAX_SQL_CHARS / 10)} DROP TABLE users`;
    const r = classifySql(huge);
    expect(r.classes).toEqual(["unknown"]);
    expect(r.flags).toEqual(expect.arrayContaining(["unparseable", "drop"]));
  });

  it("judges a script over the size limit as the riskiest kind, a WHERE elsewhere in it notwithstanding", () => {
    const padding = `SELECT * FROM t WHERE id = 1;\n`.repeat(Math.ceil(MAX_SQL_CHARS / 30));
    for (const script of [`${padding}DELETE FROM users`, `DELETE FROM users; ${padding}`, `${padding}UPDATE users SET admin = true`]) {
      const r = classifySql(script);
      expect(r.readOnly).toBe(false);
      expect(r.classes).toEqual(["unknown"]);
      expect(r.flags).toContain(script.includes("DELETE") ? "delete_without_where" : "update_without_where");
    }
  });

  it("names each statement with its command and text", () => {
    const r = classifySql("SELECT 1; DELETE FROM users WHERE id = 3;\nDROP TABLE t");
    expect(r.statements.map((s) => [s.command, s.class, s.text])).toEqual([
      ["SELECT", "read", "SELECT 1"],
      ["DELETE", "write", "DELETE FROM users WHERE id = 3"],
      ["DROP", "ddl", "DROP TABLE t"],
    ]);
  });

  it("gives the same answer from the cache as on first parse", () => {
    const first = classifySql("delete from cached_table");
    expect(classifySql("delete from cached_table")).toEqual(first);
    expect(first.flags).toEqual(["delete_without_where"]);
  });
});
