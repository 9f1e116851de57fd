// Cost of a policy decision per call: `npx tsx test/policy/evaluate.bench.ts`.
// Prints medians of several rounds; no thresholds (speed is reported, not asserted).
const loadStart = process.hrtime.bigint();
const { evaluate, policySchema, compilePolicy, loadSqlParser } = await import("../../gateway/policy/index.js");
await loadSqlParser();
const loadMs = Number(process.hrtime.bigint() - loadStart) / 1e6;

const policy = compilePolicy(
  policySchema.parse({
    defaultAction: "allow",
    rules: [
      { id: "dba", description: "DBAs run anything", tools: ["query"], groups: ["dba"], action: "allow" },
      { id: "no-destructive", description: "destructive SQL", tools: ["query"], when: { sql: { path: "$.arguments.sql", has: ["drop", "truncate", "delete_without_where", "update_without_where"] } }, action: "block" },
      { id: "writes", description: "writes need approval", tools: ["query"], when: { sql: { path: "$.arguments.sql", is: ["write", "ddl"] } }, action: "require_approval", approval: { group: "dba" } },
      { id: "etc", description: "system files", tools: ["read_file", "write_file"], when: { path: "$.arguments.path", matches: "^/(etc|root)/|\\.ssh/" }, action: "block" },
      { id: "big", description: "large exports", tools: ["export_*"], when: { any: [{ path: "$.arguments.rows", gt: 100000 }, { path: "$.arguments.format", in: ["parquet", "sqlite"] }] }, action: "require_approval", approval: { group: "data" } },
      { id: "secrets", description: "secrets anywhere in arguments", when: { path: "$.arguments..*", matches: "AKIA[0-9A-Z]{16}" }, action: "block" },
      { id: "prompts", description: "admin prompts", prompts: ["admin-*"], exceptGroups: ["admins"], action: "block" },
      { id: "trial", description: "trial rule", tools: ["*"], subjects: ["svc-*"], action: "block", shadow: true },
    ],
  }),
);

const identity = { subject: "alice", email: "alice@example.com", groups: ["engineering"] };
const req = (name: string, args: unknown) => ({ connection: "prod", method: "tools/call", params: { name, arguments: args }, identity });

function measure(label: string, makeRequest: (i: number) => ReturnType<typeof req>, iterations: number): void {
  for (let i = 0; i < Math.min(iterations, 2000); i++) evaluate(policy, makeRequest(i)); // warm up
  const rounds: number[] = [];
  for (let round = 0; round < 5; round++) {
    const requests = Array.from({ length: iterations }, (_, i) => makeRequest(round * iterations + i));
    const start = process.hrtime.bigint();
    for (const r of requests) evaluate(policy, r);
    rounds.push(Number(process.hrtime.bigint() - start) / iterations / 1000);
  }
  rounds.sort((a, b) => a - b);
  console.log(`${label.padEnd(58)} ${rounds[2]!.toFixed(2).padStart(8)} µs/call`);
}

console.log(`import of the policy engine (incl. PostgreSQL parser WebAssembly): ${loadMs.toFixed(0)} ms`);
measure("non-SQL tool, no rule matches (default allow)", () => req("get_weather", { city: "Berlin" }), 50_000);
measure("read_file with a path regex rule (no match)", () => req("read_file", { path: "/home/alice/notes.txt" }), 50_000);
measure("read_file blocked by the regex rule (reason built)", () => req("read_file", { path: "/etc/shadow" }), 20_000);
measure("query, same SELECT every time (classification cached)", () => req("query", { sql: "SELECT id, name FROM users WHERE id = 42" }), 50_000);
measure("query, distinct SELECT each call (parsed every time)", (i) => req("query", { sql: `SELECT id, name FROM users WHERE id = ${i}` }), 10_000);
measure("query, distinct DELETE without WHERE each call (blocked)", (i) => req("query", { sql: `DELETE FROM t${i}` }), 10_000);
measure("query, distinct 2 KB SELECT each call", (i) => req("query", { sql: `SELECT ${Array.from({ length: 150 }, (_, c) => `col${c}`).join(", ")} FROM t WHERE id = ${i} AND ${Array.from({ length: 60 }, (_, c) => `c${c} = ${c}`).join(" AND ")}` }), 2_000);
