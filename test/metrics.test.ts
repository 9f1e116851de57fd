// /metrics: after a scripted session the exposition holds the expected series with the expected
// counts, and a configured token protects it.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "./helpers/postgres.js";
import { loggingServerStdio } from "./helpers/process.js";

let db: TestDatabase;
let gw: TestGateway;
let scratch: string;

beforeAll(async () => {
  db = await createTestDatabase();
  scratch = mkdtempSync(join(tmpdir(), "countersign-metrics-"));
  gw = await startTestGateway(
    db.url,
    {
      metrics: { token: { env: "METRICS_TOKEN" } },
      approvals: { groups: { oncall: { emails: ["bob@example.com"] } }, holdFor: "30s", sweepIntervalMs: 200, pollIntervalMs: 200 },
      connections: [
        {
          name: "tools",
          upstream: loggingServerStdio(join(scratch, "received.log")),
          policy: {
            rules: [
              { id: "no-slow", description: "slow is not for agents", tools: ["slow"], action: "block", message: "use echo" },
              { id: "deploys-held", description: "deploys wait for on-call", tools: ["echo"], when: { path: "$.arguments.message", matches: "^deploy" }, action: "require_approval", approval: { group: "oncall" } },
            ],
          },
        },
      ],
    },
    { METRICS_TOKEN: "scrape-me" },
  );
});
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** The value of one sample, e.g. value(text, 'countersign_requests_total{connection="tools",method="tools/call",outcome="ok"}'). */
function value(exposition: string, series: string): number | undefined {
  const line = exposition.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

it("counts requests, outcomes, decisions, masking hits and audit batches", async () => {
  const client = new Client({ name: "metrics-test", version: "1" });
  await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl("tools")));
  for (const message of ["one", "two", `mail me at ${["jo", "example-corp.com"].join("@")}`]) {
    await client.callTool({ name: "echo", arguments: { message } });
  }
  const blocked = await client.callTool({ name: "slow", arguments: { ms: 1 } });
  expect(blocked.isError).toBe(true);
  const res = await fetch(`${gw.address}/metrics`, { headers: { authorization: "Bearer scrape-me" } });
  expect(res.status).toBe(200);
  const text = await res.text();
  await client.close();

  const q = (s: string) => value(text, s);
  expect(q('countersign_requests_total{connection="tools",method="tools/call",outcome="ok"}')).toBe(3);
  expect(q('countersign_requests_total{connection="tools",method="tools/call",outcome="refused"}')).toBe(1);
  expect(q('countersign_messages_total{connection="tools",direction="in",origin="client",method="tools/call"}')).toBe(4);
  expect(q('countersign_messages_total{connection="tools",direction="out",origin="upstream",method="tools/call"}')).toBe(3);
  expect(q('countersign_messages_total{connection="tools",direction="out",origin="gateway",method="tools/call"}')).toBe(1);
  expect(q('countersign_policy_decisions_total{connection="tools",rule="no-slow",action="block",shadow="false"}')).toBe(1);
  expect(q('countersign_policy_decisions_total{connection="tools",rule="(default)",action="allow",shadow="false"}')).toBe(3);
  // The e-mail is masked twice: in the recorded call and in the echoed result.
  expect(q('countersign_masking_hits_total{connection="tools",type="email"}')).toBe(2);
  expect(q('countersign_request_duration_seconds_count{connection="tools",method="tools/call"}')).toBe(4);
  expect(q('countersign_upstream_duration_seconds_count{connection="tools",method="tools/call"}')).toBe(3);
  expect(q("countersign_audit_store_up")).toBe(1);
  expect(q('countersign_sessions{connection="tools"}')).toBe(1);
  expect(q("countersign_audit_batch_rows_count")).toBeGreaterThan(0);
  expect(q("countersign_audit_commit_failures_total")).toBe(0);
});

it("shows held approvals, the time to decision and the audit store's pool", async () => {
  const scrape = async () => (await fetch(`${gw.address}/metrics`, { headers: { authorization: "Bearer scrape-me" } })).text();
  const client = new Client({ name: "metrics-held", version: "1" });
  await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl("tools")));
  const call = client.callTool({ name: "echo", arguments: { message: "deploy v2" } }, undefined, { timeout: 60_000 });
  let pending: Array<{ id: string }> = [];
  for (let i = 0; i < 200 && pending.length === 0; i++) {
    pending = await gw.db.approvalRequest.findMany({ where: { status: "pending" }, select: { id: true } });
    if (pending.length === 0) await new Promise((r) => setTimeout(r, 50));
  }
  for (let i = 0; i < 200 && value(await scrape(), "countersign_approvals_held") !== 1; i++) await new Promise((r) => setTimeout(r, 50));
  expect(value(await scrape(), "countersign_approvals_held")).toBe(1);

  expect((await gw.approvals!.service.vote({ requestId: pending[0]!.id, approver: { email: "bob@example.com" }, decision: "approve", via: "cli" })).kind).toBe("decided");
  expect((await call).isError).toBeFalsy();
  await client.close();
  let text = await scrape();
  for (let i = 0; i < 100 && value(text, 'countersign_approval_decision_seconds_count{connection="tools",outcome="approved"}') !== 1; i++) {
    await new Promise((r) => setTimeout(r, 50));
    text = await scrape();
  }
  expect(value(text, "countersign_approvals_held")).toBe(0);
  expect(value(text, 'countersign_approval_decision_seconds_count{connection="tools",outcome="approved"}')).toBe(1);
  expect(value(text, 'countersign_database_pool_connections{state="total"}')).toBeGreaterThanOrEqual(1);
  expect(value(text, 'countersign_database_pool_connections{state="waiting"}')).toBe(0);
});

it("refuses a scrape without the configured token", async () => {
  const res = await fetch(`${gw.address}/metrics`);
  expect(res.status).toBe(401);
  expect(await res.text()).toContain("metrics.token");
});
