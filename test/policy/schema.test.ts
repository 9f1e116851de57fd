// The policy schema: what a person writes in YAML, and the errors they get, each naming the key path
// (rendered with the config loader's formatIssue, as `countersign start` would print them).
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { z } from "zod";
import { formatIssue } from "../../gateway/config/load.js";
import { loadSqlParser, evaluate, policySchema } from "../../gateway/policy/index.js";

// PostgreSQL's parser is loaded on demand (the gateway loads it when a policy has sql conditions).
beforeAll(() => loadSqlParser());

// How the configuration mounts it: under each connection's `policy` key.
const configLike = z.strictObject({ connections: z.array(z.strictObject({ name: z.string(), policy: policySchema.prefault({}) })) });

function problems(yamlText: string): string[] {
  const result = configLike.safeParse(parse(yamlText));
  return result.success ? [] : result.error.issues.map(formatIssue);
}

const EXAMPLE = `
connections:
  - name: prod-db
    policy:
      defaultAction: allow
      rules:
        - id: dba-unrestricted
          description: DBAs run anything (still recorded)
          tools: [query]
          groups: [dba]
          action: allow
        - id: no-destructive-sql
          description: DROP, TRUNCATE and unqualified DELETE/UPDATE are refused
          tools: [query]
          when:
            sql: { path: $.arguments.sql, has: [drop, truncate, delete_without_where, update_without_where] }
          action: block
          message: Destructive statements are not allowed on prod-db; ask #dba.
        - id: writes-need-approval
          description: Any other write or DDL waits for a DBA
          tools: [query]
          when:
            sql: { path: $.arguments.sql, is: [write, ddl] }
          action: require_approval
          approval: { group: dba, approvals: 1, timeout: 30m, justificationRequired: true }
        - id: trial-big-limits
          description: Trial - large result sets
          tools: [query]
          when:
            any:
              - { path: $.arguments.limit, gt: 10000 }
              - { not: { sql: { path: $.arguments.sql, readOnly: true } } }
          action: block
          shadow: true
`;

describe("policy schema", () => {
  it("accepts a realistic policy and fills in the defaults", () => {
    expect(problems(EXAMPLE)).toEqual([]);
    const parsed = configLike.parse(parse(EXAMPLE));
    const p = parsed.connections[0]!.policy;
    expect(p.shadow).toBe(false);
    expect(p.rules[0]!.shadow).toBe(false);
    expect(p.rules[2]!.approval).toEqual({ group: "dba", approvals: 1, timeout: "30m", justificationRequired: true, confirm: false });
    const d = evaluate(p, { connection: "prod-db", method: "tools/call", params: { name: "query", arguments: { sql: "TRUNCATE orders" } }, identity: { subject: "a", groups: [] } });
    expect(d.ruleId).toBe("no-destructive-sql");
  });

  it("a connection without a policy gets an empty one that allows everything", () => {
    const parsed = configLike.parse({ connections: [{ name: "c" }] });
    expect(parsed.connections[0]!.policy).toEqual({ defaultAction: "allow", shadow: false, rules: [] });
  });

  it("names the key path of every problem", () => {
    const text = `
connections:
  - name: c
    policy:
      defaultAction: deny
      rules:
        - id: a
          description: bad paths and regexes
          action: block
          when:
            all:
              - { path: arguments.sql, equals: 1 }
              - { path: $.arguments.q, matches: "([a-z]+" }
              - { path: $.arguments.q, flags: i, equals: x }
              - { sql: { path: $.arguments.sql, is: [destructive] } }
              - { path: $.arguments.n, exists: false, gt: 3 }
              - { path: $.arguments.n }
              - { equals: 3 }
              - { all: [], any: [{ path: $.x, exists: true }] }
        - id: a
          description: approval problems
          tools: [query]
          methods: [prompts/get]
          action: require_approval
          message: not for approvals
        - id: "bad id!"
          action: allow
          timeout: 5m
        - id: c
          description: too short a timeout
          action: require_approval
          approval: { group: dba, approvals: 0, timeout: 1s, extra: true }
`;
    expect(problems(text)).toEqual([
      "connections[0].policy.defaultAction: Invalid option: expected one of \"allow\"|\"block\"|\"require_approval\"",
      'connections[0].policy.rules[0].when.all[0].path: JSON path "arguments.sql": must start with "$" (the request\'s params), e.g. $.arguments.sql',
      expect.stringMatching(/^connections\[0\]\.policy\.rules\[0\]\.when\.all\[1\]\.matches: regex "\(\[a-z\]\+" rejected: /),
      "connections[0].policy.rules[0].when.all[2].flags: flags only apply to matches",
      'connections[0].policy.rules[0].when.all[3].sql.is[0]: Invalid option: expected one of "read"|"write"|"ddl"|"transaction"|"other"|"unknown"',
      "connections[0].policy.rules[0].when.all[4].exists: exists: false cannot be combined with other operators (nothing is selected to test)",
      "connections[0].policy.rules[0].when.all[5]: a path condition needs an operator: equals, in, matches, contains, gt, gte, lt, lte, exists",
      "connections[0].policy.rules[0].when.all[6]: a condition needs one of path, sql, all, any, not",
      "connections[0].policy.rules[0].when.all[7].all: Too small: expected array to have >=1 items",
      "connections[0].policy.rules[0].when.all[7]: a condition has exactly one of path, sql, all, any, not (found all, any): nest them with all/any",
      "connections[0].policy.rules[1].approval: require_approval needs approval: { group: <approver group> }",
      "connections[0].policy.rules[1].message: message only applies to action block (this rule's action is require_approval)",
      "connections[0].policy.rules[1].tools: tools only applies to tools/call, which methods leaves out",
      "connections[0].policy.rules[2].id: letters, digits, _ . : - (up to 100), starting with a letter or digit",
      "connections[0].policy.rules[2].description: required (string)",
      "connections[0].policy.rules[2]: unknown key 'timeout': remove it or check the spelling",
      "connections[0].policy.rules[3].approval.approvals: Too small: expected number to be >=1",
      "connections[0].policy.rules[3].approval.timeout: between 10s and 7d",
      "connections[0].policy.rules[3].approval: unknown key 'extra': remove it or check the spelling",
    ]);
  });

  it("reports duplicate rule ids and a require_approval default without approvers", () => {
    expect(
      problems(`
connections:
  - name: c
    policy:
      defaultAction: require_approval
      rules:
        - { id: same, description: one, action: allow }
        - { id: same, description: two, action: block }
`),
    ).toEqual([
      "connections[0].policy.rules[1].id: duplicate rule id (also rules[0].id)",
      "connections[0].policy.defaultApproval: defaultAction require_approval needs defaultApproval: { group: <approver group> }",
    ]);
  });

  it("exports as JSON Schema for editors, recursion included", () => {
    const schema = z.toJSONSchema(policySchema, { io: "input", target: "draft-2020-12" }) as { properties: Record<string, unknown>; $defs?: Record<string, unknown> };
    expect(Object.keys(schema.properties)).toEqual(["defaultAction", "defaultMessage", "defaultApproval", "shadow", "rules"]);
    expect(JSON.stringify(schema)).toContain('"$ref"');
  });
});
