// Policy rules: every selector, predicate and combinator, first-match order, the default action,
// shadow mode and approval parameters, through the public evaluate() on validated configs.
import { beforeAll, describe, expect, it } from "vitest";
import { loadSqlParser, evaluate, policySchema, type PolicyRequest, type RawPolicyConfig } from "../../gateway/policy/index.js";

// PostgreSQL's parser is loaded on demand (the gateway loads it when a policy has sql conditions).
beforeAll(() => loadSqlParser());

const policy = (raw: RawPolicyConfig) => policySchema.parse(raw);

const alice = { subject: "alice", email: "alice@example.com", groups: ["engineering"] };
const dba = { subject: "dave", email: "dave@example.com", groups: ["engineering", "dba"] };
const bot = { subject: "svc-reporting", groups: [] as string[], kind: "service" };

function call(tool: string, args: unknown, over: Partial<PolicyRequest> = {}): PolicyRequest {
  return { connection: "prod-db", method: "tools/call", params: { name: tool, arguments: args }, identity: alice, ...over };
}

/** One rule that blocks when `when` holds: the cheapest way to test a predicate. */
function blocksWhen(when: unknown) {
  const p = policy({ rules: [{ id: "r", description: "test rule", tools: ["*"], when: when as never, action: "block" }] });
  return (args: unknown) => evaluate(p, call("t", args)).effectiveAction === "block";
}

describe("selectors", () => {
  const p = policy({
    rules: [
      { id: "fs-read", description: "files", tools: ["read_*", "list_?ir"], action: "block" },
      { id: "secrets", description: "secret resources", resources: ["file:///etc/*", "vault://*"], action: "block" },
      { id: "prompt", description: "admin prompts", prompts: ["admin-*"], action: "block" },
      { id: "staging-only", description: "staging", connections: ["staging-*"], action: "block" },
      { id: "interns", description: "interns", groups: ["interns"], action: "block" },
      { id: "bots", description: "service accounts", subjects: ["svc-*"], action: "block" },
      { id: "by-mail", description: "one person by e-mail", subjects: ["mallory@*"], action: "block" },
    ],
  });
  const decide = (req: PolicyRequest) => evaluate(p, req).ruleId;

  it("matches tool names by glob, only for tools/call", () => {
    expect(decide(call("read_file", {}))).toBe("fs-read");
    expect(decide(call("list_dir", {}))).toBe("fs-read");
    expect(decide(call("list_dirs", {}))).toBe(null);
    expect(decide(call("write_file", {}))).toBe(null);
    expect(decide({ ...call("x", {}), method: "prompts/get", params: { name: "read_file" } })).toBe(null);
  });

  it("matches resource URIs and prompt names for their methods", () => {
    const read = (uri: string): PolicyRequest => ({ connection: "c", method: "resources/read", params: { uri }, identity: alice });
    expect(decide(read("file:///etc/shadow"))).toBe("secrets");
    expect(decide(read("vault://prod/db"))).toBe("secrets");
    expect(decide(read("file:///home/alice/notes"))).toBe(null);
    expect(decide({ connection: "c", method: "prompts/get", params: { name: "admin-reset" }, identity: alice })).toBe("prompt");
  });

  it("matches connections, groups and subjects (subject or e-mail)", () => {
    expect(decide(call("x", {}, { connection: "staging-db" }))).toBe("staging-only");
    expect(decide(call("x", {}, { identity: { subject: "ivy", groups: ["interns"] } }))).toBe("interns");
    expect(decide(call("x", {}, { identity: bot }))).toBe("bots");
    expect(decide(call("x", {}, { identity: { subject: "u-123", email: "mallory@example.com", groups: [] } }))).toBe("by-mail");
    expect(decide(call("x", {}))).toBe(null);
  });

  it("leaves methods outside policy alone, even with a blocking default", () => {
    const strict = policy({ defaultAction: "block" });
    for (const method of ["initialize", "tools/list", "notifications/initialized", "ping"]) {
      const d = evaluate(strict, { connection: "c", method, params: {}, identity: alice });
      expect(d.effectiveAction).toBe("allow");
      expect(d.ruleId).toBeNull();
    }
    expect(evaluate(strict, call("anything", {})).effectiveAction).toBe("block");
  });

  it("applies a rule without name selectors to all three methods, or to the methods listed", () => {
    const everywhere = policy({ rules: [{ id: "all", description: "all", action: "block" }] });
    const onlyPrompts = policy({ rules: [{ id: "p", description: "p", methods: ["prompts/get"], action: "block" }] });
    for (const method of ["tools/call", "resources/read", "prompts/get"]) {
      const req = { connection: "c", method, params: { name: "n", uri: "u" }, identity: alice };
      expect(evaluate(everywhere, req).effectiveAction).toBe("block");
      expect(evaluate(onlyPrompts, req).effectiveAction).toBe(method === "prompts/get" ? "block" : "allow");
    }
  });

  it("exceptGroups exempts callers in those groups", () => {
    const p2 = policy({ rules: [{ id: "no-writes", description: "writes", tools: ["write_*"], exceptGroups: ["dba"], action: "block" }] });
    expect(evaluate(p2, call("write_row", {})).effectiveAction).toBe("block");
    expect(evaluate(p2, call("write_row", {}, { identity: dba })).effectiveAction).toBe("allow");
  });
});

describe("argument predicates", () => {
  it("equals and in compare JSON values exactly", () => {
    const eq = blocksWhen({ path: "$.arguments.env", equals: "prod" });
    expect(eq({ env: "prod" })).toBe(true);
    expect(eq({ env: "PROD" })).toBe(false);
    expect(eq({})).toBe(false);
    const eqObj = blocksWhen({ path: "$.arguments.target", equals: { db: "main", schema: "public" } });
    expect(eqObj({ target: { schema: "public", db: "main" } })).toBe(true);
    expect(eqObj({ target: { db: "main" } })).toBe(false);
    const within = blocksWhen({ path: "$.arguments.region", in: ["eu-west-1", "eu-central-1", 7] });
    expect(within({ region: "eu-central-1" })).toBe(true);
    expect(within({ region: 7 })).toBe(true);
    expect(within({ region: "7" })).toBe(false);
    expect(within({ region: "us-east-1" })).toBe(false);
  });

  it("matches searches strings (and the text of numbers) with a regex and its flags", () => {
    const m = blocksWhen({ path: "$.arguments.path", matches: "^/etc/|\\.ssh/" });
    expect(m({ path: "/etc/passwd" })).toBe(true);
    expect(m({ path: "/home/a/.ssh/id_rsa" })).toBe(true);
    expect(m({ path: "/home/a/etc/x" })).toBe(false);
    expect(m({ path: ["/etc/passwd"] })).toBe(false);
    const ci = blocksWhen({ path: "$.arguments.q", matches: "drop\\s+table", flags: "i" });
    expect(ci({ q: "please DROP   Table x" })).toBe(true);
    const num = blocksWhen({ path: "$.arguments.port", matches: "^22$" });
    expect(num({ port: 22 })).toBe(true);
  });

  it("contains finds substrings and array elements", () => {
    const c = blocksWhen({ path: "$.arguments.command", contains: "rm -rf" });
    expect(c({ command: "cd / && rm -rf *" })).toBe(true);
    expect(c({ command: "ls" })).toBe(false);
    const arr = blocksWhen({ path: "$.arguments.flags", contains: "--force" });
    expect(arr({ flags: ["-v", "--force"] })).toBe(true);
    expect(arr({ flags: ["--forced"] })).toBe(false);
  });

  it("numeric comparisons accept numbers and numeric strings only", () => {
    const big = blocksWhen({ path: "$.arguments.limit", gt: 1000 });
    expect(big({ limit: 1001 })).toBe(true);
    expect(big({ limit: 1000 })).toBe(false);
    expect(big({ limit: "5000" })).toBe(true);
    expect(big({ limit: "lots" })).toBe(false);
    expect(big({ limit: [5000] })).toBe(false);
    const range = blocksWhen({ path: "$.arguments.amount", gte: 100, lt: 200 });
    expect([99, 100, 199.5, 200].map((amount) => range({ amount }))).toEqual([false, true, true, false]);
    const small = blocksWhen({ path: "$.arguments.n", lte: -1 });
    expect(small({ n: -1 })).toBe(true);
    expect(small({ n: 0 })).toBe(false);
  });

  it("exists tests whether the path selects anything (null counts)", () => {
    const has = blocksWhen({ path: "$.arguments.override", exists: true });
    expect(has({ override: null })).toBe(true);
    expect(has({ override: false })).toBe(true);
    expect(has({})).toBe(false);
    const lacks = blocksWhen({ path: "$.arguments.ticket", exists: false });
    expect(lacks({})).toBe(true);
    expect(lacks({ ticket: "OPS-1" })).toBe(false);
  });

  it("follows nested paths, indexes, wildcards and descendants", () => {
    const nested = blocksWhen({ path: "$.arguments.options.mode", equals: "unsafe" });
    expect(nested({ options: { mode: "unsafe" } })).toBe(true);
    const wildcard = blocksWhen({ path: "$.arguments.files[*].path", matches: "^/etc" });
    expect(wildcard({ files: [{ path: "/tmp/a" }, { path: "/etc/hosts" }] })).toBe(true);
    expect(wildcard({ files: [{ path: "/tmp/a" }] })).toBe(false);
    const last = blocksWhen({ path: "$.arguments.steps[-1]", equals: "deploy" });
    expect(last({ steps: ["build", "deploy"] })).toBe(true);
    expect(last({ steps: ["deploy", "build"] })).toBe(false);
    const anywhere = blocksWhen({ path: "$.arguments..password", exists: true });
    expect(anywhere({ a: [{ b: { password: "x" } }] })).toBe(true);
    const quoted = blocksWhen({ path: "$.arguments['odd key']", equals: 1 });
    expect(quoted({ "odd key": 1 })).toBe(true);
    const anyString = blocksWhen({ path: "$.arguments..*", matches: "/etc/shadow" });
    expect(anyString({ deep: { list: ["ok", { x: "cat /etc/shadow" }] } })).toBe(true);
  });

  it("a path condition with several operators needs one value that satisfies all of them", () => {
    const p = blocksWhen({ path: "$.arguments.ids[*]", gt: 10, lt: 20 });
    expect(p({ ids: [5, 25] })).toBe(false);
    expect(p({ ids: [5, 15] })).toBe(true);
  });

  it("the SQL predicate classifies the text at path", () => {
    const writes = blocksWhen({ sql: { path: "$.arguments.sql", is: ["write", "ddl"] } });
    expect(writes({ sql: "SELECT * FROM users" })).toBe(false);
    expect(writes({ sql: "insert into t values (1)" })).toBe(true);
    expect(writes({ sql: "SELECT 1; DROP TABLE t" })).toBe(true);
    expect(writes({ sql: "SELECT * FROM `t`" })).toBe(true); // unparseable: fail closed
    expect(writes({ sql: ["DROP TABLE t"] })).toBe(true); // not a string: fail closed
    expect(writes({})).toBe(false);
    const destructive = blocksWhen({ sql: { path: "$.arguments.sql", has: ["delete_without_where", "drop"] } });
    expect(destructive({ sql: "DELETE FROM users WHERE id = 1" })).toBe(false);
    expect(destructive({ sql: "DELETE FROM users" })).toBe(true);
    expect(destructive({ sql: "WITH x AS (DELETE FROM users RETURNING *) SELECT * FROM x" })).toBe(true);
    const notReadOnly = blocksWhen({ sql: { path: "$.arguments.sql", readOnly: false } });
    expect(notReadOnly({ sql: "SELECT 1" })).toBe(false);
    expect(notReadOnly({ sql: "SELECT * FROM t FOR UPDATE" })).toBe(true);
    const both = blocksWhen({ sql: { path: "$.arguments.sql", is: ["write"], has: ["multiple_statements"] } });
    expect(both({ sql: "DELETE FROM t WHERE id = 1" })).toBe(false);
    expect(both({ sql: "SELECT 1; DELETE FROM t WHERE id = 1" })).toBe(true);
  });
});

describe("combinators", () => {
  const big = { path: "$.arguments.limit", gt: 100 };
  const prod = { path: "$.arguments.env", equals: "prod" };

  it("all needs every condition", () => {
    const p = blocksWhen({ all: [big, prod] });
    expect(p({ limit: 500, env: "prod" })).toBe(true);
    expect(p({ limit: 500, env: "dev" })).toBe(false);
    expect(p({ limit: 5, env: "prod" })).toBe(false);
  });

  it("any needs one condition", () => {
    const p = blocksWhen({ any: [big, prod] });
    expect(p({ limit: 500, env: "dev" })).toBe(true);
    expect(p({ limit: 5, env: "prod" })).toBe(true);
    expect(p({ limit: 5, env: "dev" })).toBe(false);
  });

  it("not inverts, and nests", () => {
    const p = blocksWhen({ not: prod });
    expect(p({ env: "dev" })).toBe(true);
    expect(p({ env: "prod" })).toBe(false);
    const nested = blocksWhen({ all: [prod, { not: { any: [{ path: "$.arguments.ticket", exists: true }, { path: "$.arguments.dryRun", equals: true }] } }] });
    expect(nested({ env: "prod" })).toBe(true);
    expect(nested({ env: "prod", ticket: "OPS-9" })).toBe(false);
    expect(nested({ env: "prod", dryRun: true })).toBe(false);
    expect(nested({ env: "dev" })).toBe(false);
  });
});

describe("order and default action", () => {
  const p = policy({
    defaultAction: "require_approval",
    defaultApproval: { group: "oncall" },
    rules: [
      { id: "dba-anything", description: "DBAs may run anything", tools: ["query"], groups: ["dba"], action: "allow" },
      { id: "no-drop", description: "No DROP", tools: ["query"], when: { sql: { path: "$.arguments.sql", has: ["drop"] } }, action: "block", message: "Ask a DBA." },
      { id: "writes", description: "Writes need a DBA", tools: ["query"], when: { sql: { path: "$.arguments.sql", is: ["write", "ddl"] } }, action: "require_approval", approval: { group: "dba" } },
      { id: "reads", description: "Reads are fine", tools: ["query"], action: "allow" },
    ],
  });

  it("the first matching rule decides, in file order", () => {
    expect(evaluate(p, call("query", { sql: "DROP TABLE t" }, { identity: dba })).ruleId).toBe("dba-anything");
    const drop = evaluate(p, call("query", { sql: "DROP TABLE t" }));
    expect(drop).toMatchObject({ action: "block", effectiveAction: "block", ruleId: "no-drop", shadow: false });
    expect(drop.message).toBe('Blocked by policy rule "no-drop": Ask a DBA.');
    expect(drop.reason).toContain('rule "no-drop" (No DROP) matched tools/call "query"');
    expect(drop.reason).toBe('rule "no-drop" (No DROP) matched tools/call "query": SQL at $.arguments.sql has drop (DROP)');
    expect(evaluate(p, call("query", { sql: "DELETE FROM t WHERE id=1" })).ruleId).toBe("writes");
    expect(evaluate(p, call("query", { sql: "SELECT 1" })).ruleId).toBe("reads");
  });

  it("the default action applies when no rule matches", () => {
    const d = evaluate(p, call("other_tool", {}));
    expect(d).toMatchObject({ action: "require_approval", effectiveAction: "require_approval", ruleId: null, shadow: false });
    expect(d.approval).toMatchObject({ ruleId: null, group: "oncall", approvals: 1, timeoutMs: 15 * 60_000 });
    expect(d.reason).toContain('default action of connection "prod-db" is require_approval');
  });

  it("allows by default, and a blocking default names itself to the caller", () => {
    expect(evaluate(policy({}), call("x", {})).effectiveAction).toBe("allow");
    expect(evaluate(undefined, call("x", {})).effectiveAction).toBe("allow");
    const closed = evaluate(policy({ defaultAction: "block", defaultMessage: "Only listed tools." }), call("x", {}));
    expect(closed.effectiveAction).toBe("block");
    expect(closed.message).toBe('Blocked by policy: the default action of connection "prod-db" is block: Only listed tools.');
  });

  it("a block without a message tells the caller the rule's description", () => {
    const d = evaluate(policy({ rules: [{ id: "no-rm", description: "Deleting files is not allowed", tools: ["rm"], action: "block" }] }), call("rm", {}));
    expect(d.message).toBe('Blocked by policy rule "no-rm": Deleting files is not allowed');
  });
});

describe("approval parameters", () => {
  const p = policy({
    rules: [
      { id: "simple", description: "defaults", tools: ["a"], action: "require_approval", approval: { group: "dba" } },
      {
        id: "strict",
        description: "two approvers, a reason, one hour",
        tools: ["b"],
        action: "require_approval",
        approval: { group: "security", approvals: 2, timeout: "1h", justificationRequired: true },
      },
    ],
  });

  it("fills in the defaults: one approval, 15 minutes, no justification required", () => {
    expect(evaluate(p, call("a", {})).approval).toEqual({
      ruleId: "simple",
      why: "defaults", // the rule's description: no conditions to add
      group: "dba",
      approvals: 1,
      timeoutMs: 900_000,
      justificationRequired: false,
      justification: undefined,
      justificationMissing: false,
    });
  });

  it("tells approvers the rule's description and the conditions that held, without repeating the rule id", () => {
    const q = policy({
      rules: [{ id: "prod-deploys", description: "Deploys to production need on-call", tools: ["deploy"], when: { path: "$.arguments.env", equals: "prod" }, action: "require_approval", approval: { group: "oncall" } }],
    });
    const why = evaluate(q, call("deploy", { env: "prod" })).approval!.why;
    expect(why).toMatch(/^Deploys to production need on-call \(.*\$\.arguments\.env.*\)$/);
    expect(why).not.toContain("prod-deploys");
  });

  it("carries the configured parameters and whether the required justification is missing", () => {
    expect(evaluate(p, call("b", {})).approval).toMatchObject({ group: "security", approvals: 2, timeoutMs: 3_600_000, justificationRequired: true, justificationMissing: true });
    expect(evaluate(p, call("b", {}, { justification: "   " })).approval?.justificationMissing).toBe(true);
    expect(evaluate(p, call("b", {}, { justification: " INC-42: restore the orders table " })).approval).toMatchObject({
      justification: "INC-42: restore the orders table",
      justificationMissing: false,
    });
  });
});

describe("shadow mode", () => {
  it("a shadow rule reports what it would do; the enforced rules after it decide", () => {
    const p = policy({
      rules: [
        { id: "new-block", description: "trial: block exports", tools: ["export_*"], action: "block", shadow: true },
        { id: "new-approval", description: "trial: approve big exports", tools: ["export_*"], when: { path: "$.arguments.rows", gt: 10_000 }, action: "require_approval", approval: { group: "data" }, shadow: true },
        { id: "old-approval", description: "big exports need approval", tools: ["export_*"], when: { path: "$.arguments.rows", gt: 1_000_000 }, action: "require_approval", approval: { group: "dpo" } },
      ],
    });
    const small = evaluate(p, call("export_csv", { rows: 5 }));
    expect(small).toMatchObject({ action: "block", effectiveAction: "allow", ruleId: "new-block", shadow: true });
    expect(small.reason).toMatch(/^shadow: would have blocked: rule "new-block"/);
    expect(small.effective).toEqual({ ruleId: null, reason: 'no rule matched tools/call; the default action of connection "prod-db" is allow' });
    expect(small.message).toBeUndefined();

    // The shadow rule before it must not weaken the enforced rule.
    const huge = evaluate(p, call("export_csv", { rows: 5_000_000 }));
    expect(huge).toMatchObject({ action: "block", effectiveAction: "require_approval", ruleId: "new-block", shadow: true });
    expect(huge.effective?.ruleId).toBe("old-approval");
    expect(huge.approval).toMatchObject({ ruleId: "old-approval", group: "dpo" });
  });

  it("a shadow require_approval reports 'would have required approval'", () => {
    const p = policy({ rules: [{ id: "trial", description: "trial", tools: ["t"], action: "require_approval", approval: { group: "g" }, shadow: true }] });
    const d = evaluate(p, call("t", {}));
    expect(d).toMatchObject({ action: "require_approval", effectiveAction: "allow", shadow: true });
    expect(d.reason).toMatch(/^shadow: would have required approval: /);
    expect(d.approval).toBeUndefined();
  });

  it("a policy in shadow mode lets every call proceed, reporting the first match or the default", () => {
    const p = policy({
      shadow: true,
      defaultAction: "block",
      rules: [
        { id: "ok", description: "reads", tools: ["read"], action: "allow" },
        { id: "no", description: "writes", tools: ["write"], action: "block" },
      ],
    });
    expect(evaluate(p, call("read", {}))).toMatchObject({ action: "allow", effectiveAction: "allow", ruleId: "ok", shadow: false });
    expect(evaluate(p, call("write", {}))).toMatchObject({ action: "block", effectiveAction: "allow", ruleId: "no", shadow: true });
    const other = evaluate(p, call("other", {}));
    expect(other).toMatchObject({ action: "block", effectiveAction: "allow", ruleId: null, shadow: true });
    expect(other.effective?.reason).toContain("shadow mode");
  });

  it("an enforced rule is unaffected by shadow rules that do not match", () => {
    const p = policy({
      rules: [
        { id: "trial", description: "trial", tools: ["x"], action: "block", shadow: true },
        { id: "real", description: "real", tools: ["y"], action: "block" },
      ],
    });
    expect(evaluate(p, call("y", {}))).toMatchObject({ action: "block", effectiveAction: "block", ruleId: "real", shadow: false });
  });
});

describe("evaluate", () => {
  it("explains a match by rule, path and operator, without echoing argument values", () => {
    const p = policy({
      rules: [
        {
          id: "secrets",
          description: "No key files",
          tools: ["read_file"],
          when: { all: [{ path: "$.arguments.path", matches: "\\.pem$" }, { not: { path: "$.arguments.ticket", exists: true } }] },
          action: "block",
        },
        { id: "sql", description: "No DDL", resources: ["*"], when: { sql: { path: "$.query", is: ["ddl"] } }, action: "block" },
      ],
    });
    const d = evaluate(p, call("read_file", { path: "/srv/keys/SECRET-prod-42.pem" }));
    expect(d.reason).toBe('rule "secrets" (No key files) matched tools/call "read_file": $.arguments.path matches /\\.pem$/; not {"path":"$.arguments.ticket","exists":true}');
    expect(d.reason).not.toContain("SECRET");
    const r = evaluate(p, { connection: "c", method: "resources/read", params: { uri: "pg://admin:hunter2@db/x", query: "ALTER ROLE admin PASSWORD 'hunter2'" }, identity: alice });
    expect(r.reason).toBe('rule "sql" (No DDL) matched resources/read: SQL at $.query is ddl (ALTER ROLE)');
  });

  it("is pure: the same request gives the same decision, and the config is not changed", () => {
    const raw = { rules: [{ id: "r", description: "d", tools: ["q"], when: { sql: { path: "$.arguments.sql", is: ["ddl" as const] } }, action: "block" as const }] };
    const p = policy(raw);
    const before = JSON.stringify(p);
    const req = call("q", { sql: "DROP TABLE t" });
    const first = evaluate(p, req);
    expect(evaluate(p, structuredClone(req))).toEqual(first);
    expect(JSON.stringify(p)).toBe(before);
  });

  it("does not throw on odd params", () => {
    const p = policy({ rules: [{ id: "r", description: "d", tools: ["*"], when: { path: "$.arguments.a.b[0]", equals: 1 }, action: "block" }] });
    for (const params of [undefined, null, 42, "text", [], { name: 7 }, { name: "t", arguments: "nope" }]) {
      expect(() => evaluate(p, { connection: "c", method: "tools/call", params, identity: alice })).not.toThrow();
    }
    // A tools/call without a name still meets rules that match any tool (`*` matches "").
    expect(evaluate(p, { connection: "c", method: "tools/call", params: { arguments: { a: { b: [1] } } }, identity: alice }).effectiveAction).toBe("block");
  });
});
