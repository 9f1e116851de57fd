// Policy in the data path, against a real "dangerous" server: @modelcontextprotocol/server-postgres
// (SQL against a database). Assertions are on the decision and on what the upstream actually
// received (a tap on its stdin), never on the upstream's side effects: server-postgres runs every
// query read-only, so "the DELETE did not happen" would hold with no gateway at all.
import { mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfigText, ConfigError } from "../gateway/config/load.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { adminQuery, createTestDatabase, type TestDatabase } from "./helpers/postgres.js";

const TAP = new URL("./fixtures/tap-stdio.mjs", import.meta.url).pathname;
const SERVER_POSTGRES = new URL("../node_modules/@modelcontextprotocol/server-postgres/dist/index.js", import.meta.url).pathname;

let db: TestDatabase;
let target: TestDatabase;
let gw: TestGateway;
let scratch: string;
let tapLog: string;

const received = () => (existsSync(tapLog) ? readFileSync(tapLog, "utf8") : "");

beforeAll(async () => {
  db = await createTestDatabase();
  target = await createTestDatabase();
  await adminQuery(`SELECT 1`);
  scratch = mkdtempSync(join(tmpdir(), "countersign-policy-"));
  tapLog = join(scratch, "received.log");
  gw = await startTestGateway(db.url, {
    // holdFor 0s: a held call is answered "approval pending" at once.
    approvals: { groups: { dba: { emails: ["dba@example.com"] } }, holdFor: "0s" },
    connections: [
      {
        name: "prod-db",
        upstream: { type: "stdio", command: process.execPath, args: [TAP, process.execPath, SERVER_POSTGRES, target.url], env: { TAP_LOG: tapLog } },
        policy: {
          rules: [
            {
              id: "no-destructive-sql",
              description: "DROP, TRUNCATE and DELETE without WHERE are refused",
              tools: ["query"],
              when: { sql: { path: "$.arguments.sql", has: ["drop", "truncate", "delete_without_where"] } },
              action: "block",
              message: "Destructive statements are not allowed on prod-db; ask #dba.",
            },
            {
              id: "catalog-shadow",
              description: "Reading the system catalog would need approval (being rolled out)",
              tools: ["query"],
              when: { path: "$.arguments.sql", matches: "pg_catalog" },
              action: "require_approval",
              approval: { group: "dba" },
              shadow: true,
            },
            {
              id: "writes-need-approval",
              description: "Other writes wait for a DBA",
              tools: ["query"],
              when: { sql: { path: "$.arguments.sql", is: ["write", "ddl"] } },
              action: "require_approval",
              approval: { group: "dba" },
            },
            { id: "no-schema-resources", description: "Schemas stay private", resources: ["postgres://*"], action: "block", message: "Schemas are not shared." },
          ],
        },
      },
    ],
  });
});
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
  await target?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

async function client() {
  const c = new Client({ name: "policy-test", version: "1" });
  await c.connect(new StreamableHTTPClientTransport(gw.mcpUrl("prod-db")));
  return c;
}

const decisions = () => gw.db.event.findMany({ where: { type: "policy_decision" }, orderBy: { id: "asc" } });

describe("policy in the data path", () => {
  it("lets a read through to the real server and records the allow", async () => {
    const c = await client();
    const result = await c.callTool({ name: "query", arguments: { sql: "SELECT 40 + 2 AS answer" } });
    await c.close();
    expect(result.isError).toBeFalsy();
    expect(JSON.stringify(result.content)).toContain("42");
    expect(received()).toContain("SELECT 40 + 2 AS answer");
    const last = (await decisions()).at(-1)!;
    expect(last.reason).toBe("allow");
    expect(last.detail).toMatchObject({ ruleId: null, effectiveAction: "allow", target: "query" });
  });

  it("blocks a destructive statement with a tool error naming the rule, and the upstream never sees it", async () => {
    const c = await client();
    const result = await c.callTool({ name: "query", arguments: { sql: "delete from accounts" } });
    await c.close();
    expect(result.isError).toBe(true);
    const text = (result.content as Array<{ text: string }>)[0]!.text;
    expect(text).toContain("no-destructive-sql");
    expect(text).toContain("ask #dba");
    expect(received()).not.toContain("delete from accounts");
    const last = (await decisions()).at(-1)!;
    expect(last.reason).toBe("block");
    expect(last.detail).toMatchObject({ ruleId: "no-destructive-sql", action: "block", effectiveAction: "block" });
    // The refusal the caller saw is in the record too.
    const out = await gw.db.message.findFirst({ where: { origin: "gateway", method: "tools/call" }, orderBy: { id: "desc" } });
    expect(JSON.stringify(out?.payload)).toContain("no-destructive-sql");
  });

  it("holds a call that needs approval: not forwarded, the rule named, the hold recorded", async () => {
    const c = await client();
    const result = await c.callTool({ name: "query", arguments: { sql: "UPDATE accounts SET balance = 0 WHERE id = 7" } });
    await c.close();
    expect(JSON.stringify(result)).toContain("writes-need-approval");
    expect(received()).not.toContain("UPDATE accounts");
    expect((await decisions()).at(-1)!.reason).toBe("require_approval");
  });

  it("shadow mode records 'would have required approval' and lets the call proceed", async () => {
    const c = await client();
    const result = await c.callTool({ name: "query", arguments: { sql: "SELECT count(*) > 0 AS ok FROM pg_catalog.pg_class" } });
    await c.close();
    expect(result.isError).toBeFalsy();
    expect(received()).toContain("FROM pg_catalog.pg_class");
    const last = (await decisions()).at(-1)!;
    expect(last.reason).toBe("shadow_require_approval");
    expect(last.detail).toMatchObject({ ruleId: "catalog-shadow", action: "require_approval", effectiveAction: "allow", shadow: true });
  });

  it("blocks resources/read with a JSON-RPC error carrying CS_ERR_POLICY_BLOCKED", async () => {
    const c = await client();
    await expect(c.readResource({ uri: "postgres://localhost/accounts/schema" })).rejects.toMatchObject({
      code: -32030,
      message: expect.stringContaining("Schemas are not shared."),
    });
    await c.close();
    expect(received()).not.toContain("resources/read");
  });

  it("refuses a configuration whose rule regex RE2 cannot run in linear time, naming the key", () => {
    const text = `version: 1
connections:
  - name: a
    access: { anonymous: true }
    upstream: { type: stdio, command: node }
    policy:
      rules:
        - id: bad
          description: a backreference (exponential under a backtracking engine; RE2 has none)
          tools: ["*"]
          when: { path: $.arguments.q, matches: "^(a+)\\\\1$" }
          action: block
`;
    let problems: string[] = [];
    try {
      parseConfigText(text, "t.yaml", {});
    } catch (err) {
      problems = (err as ConfigError).problems;
    }
    expect(problems.join("\n")).toMatch(/connections\[0\]\.policy\.rules\[0\]\.when\.matches/);
  });
});
