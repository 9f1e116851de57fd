// /metrics: after a scripted session the exposition holds the expected series with the expected
// counts, and a configured token protects it.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, expect, it } from "vitest";
import { parseConfigText } from "../gateway/config/load.js";
import { Metrics } from "../gateway/metrics.js";
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

  expect((await gw.approvals!.service.vote({ requestId: pending[0]!.id, approver: { email: "bob@example.com" }, decision: "approve", via: "break_glass" })).kind).toBe("decided");
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

it("keeps the series bounded whatever method names clients send", async () => {
  const url = gw.mcpUrl("tools");
  const headers = { "content-type": "application/json", accept: "application/json, text/event-stream" };
  const init = await fetch(url, {
    method: "POST",
    headers,
    body: JSON.stringify({ jsonrpc: "2.0", id: 0, method: "initialize", params: { protocolVersion: "2025-03-26", capabilities: {}, clientInfo: { name: "names", version: "1" } } }),
  });
  const sid = init.headers.get("mcp-session-id")!;
  await init.text();
  await (await fetch(url, { method: "POST", headers: { ...headers, "mcp-session-id": sid }, body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) })).text();
  const before = await (await fetch(`${gw.address}/metrics`, { headers: { authorization: "Bearer scrape-me" } })).text();
  const seriesOf = (text: string) => text.split("\n").filter((l) => l.startsWith("countersign_") && !l.startsWith("countersign_process_")).length;

  // 200 random method names through the gateway (the 2,000 of the next test go straight to the
  // registry: every notification commits on its own, so thousands would take the test minutes).
  const batch = Array.from({ length: 100 }, () => ({ jsonrpc: "2.0", method: `x/${Math.random().toString(36).slice(2)}`, params: {} }));
  const res = await fetch(url, { method: "POST", headers: { ...headers, "mcp-session-id": sid }, body: JSON.stringify(batch) });
  expect(res.status).toBe(202);
  await res.text();
  const requests = Array.from({ length: 100 }, (_, i) => ({ jsonrpc: "2.0", id: i + 1, method: `x/${Math.random().toString(36).slice(2)}`, params: {} }));
  const answered = await fetch(url, { method: "POST", headers: { ...headers, "mcp-session-id": sid }, body: JSON.stringify(requests) });
  expect(answered.status).toBe(200);
  await answered.text();
  await fetch(url, { method: "DELETE", headers: { "mcp-session-id": sid } });
  let text = "";
  await expect
    .poll(async () => {
      text = await (await fetch(`${gw.address}/metrics`, { headers: { authorization: "Bearer scrape-me" } })).text();
      return value(text, 'countersign_messages_total{connection="tools",direction="in",origin="client",method="other"}');
    })
    .toBe(200);
  expect(value(text, 'countersign_requests_total{connection="tools",method="other",outcome="error"}')).toBe(100);
  expect(text.split("\n").filter((l) => l.includes(`method="x/`)).slice(0, 3)).toEqual([]);
  // A handful of new series (the "other" label per metric and histogram buckets), not thousands.
  const added = seriesOf(text) - seriesOf(before);
  expect(added).toBeLessThan(60);
});

it("labels 2,000 random method names as one 'other' series per metric, and every protocol method as itself", async () => {
  const m = new Metrics();
  const at = new Date();
  const names = Array.from({ length: 2000 }, () => `${Math.random().toString(36).slice(2)}/${Math.random().toString(36).slice(2)}`);
  const row = (method: string, direction: "in" | "out") => ({ sessionId: null, connection: "c", direction, origin: "client" as const, kind: "request" as const, jsonrpcId: "1", method, size: 1, payload: {}, subject: null, at });
  m.committed(names.map((n) => row(n, "in")), []);
  for (const n of names) {
    m.requests.inc({ connection: "c", method: n, outcome: "error" });
    m.requestDuration.observe({ connection: "c", method: n }, 0.01);
    m.upstreamDuration.observe({ connection: "c", method: n }, 0.01);
  }
  for (const known of ["tools/call", "server/discover", "subscriptions/listen", "tasks/result"]) m.requests.inc({ connection: "c", method: known, outcome: "ok" });
  const text = await m.registry.metrics();
  const series = text.split("\n").filter((l) => l.startsWith("countersign_") && !l.startsWith("countersign_process_"));
  console.log(`metrics after 2,000 random method names: ${text.length} bytes, ${series.length} series`);
  expect(series.length).toBeLessThan(120);
  expect(value(text, 'countersign_messages_total{connection="c",direction="in",origin="client",method="other"}')).toBe(2000);
  expect(value(text, 'countersign_requests_total{connection="c",method="other",outcome="error"}')).toBe(2000);
  expect(value(text, 'countersign_request_duration_seconds_count{connection="c",method="other"}')).toBe(2000);
  for (const known of ["tools/call", "server/discover", "subscriptions/listen", "tasks/result"]) {
    expect(value(text, `countersign_requests_total{connection="c",method="${known}",outcome="ok"}`)).toBe(1);
  }
});

it("refuses to start serving /metrics off loopback without a token, naming the key", () => {
  const text = (host: string, metrics = "") => `version: 1\nserver: { host: "${host}", port: 8080 }\n${metrics}connections:\n  - name: a\n    access: { anonymous: true }\n    upstream: { type: stdio, command: node }\n`;
  expect(() => parseConfigText(text("0.0.0.0"), "t.yaml", {})).toThrow(/metrics\.token/);
  expect(() => parseConfigText(text("10.1.2.3"), "t.yaml", {})).toThrow(/metrics\.token/);
  expect(parseConfigText(text("127.0.0.1"), "t.yaml", {}).metrics.enabled).toBe(true);
  expect(parseConfigText(text("::1"), "t.yaml", {}).metrics.enabled).toBe(true);
  expect(parseConfigText(text("0.0.0.0", "metrics: { enabled: false }\n"), "t.yaml", {}).metrics.enabled).toBe(false);
  expect(parseConfigText(text("0.0.0.0", "metrics: { token: { env: M } }\n"), "t.yaml", { M: "t" }).metrics.token).toBeDefined();
});
