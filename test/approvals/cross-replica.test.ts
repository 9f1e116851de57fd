// Two (then three) gateway processes on one database: a call held on replica B is released by a
// decision that arrives at replica A, a signed Slack click on A's /slack/events (against the fake
// Slack) or the approvals API on A, and is forwarded once with its real result. Replica C runs
// with approvals.listen: false, so only the polling fallback can release its call.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { devIssuerUrl, loadDevIssuerKey, signDevToken, type DevIssuerKey } from "../../gateway/auth/dev-issuer.js";
import { startFakeSlack, type FakeSlack } from "../helpers/fake-slack.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { killGateway, loggingServerStdio, startGatewayProcess, writeGatewayConfig, type GatewayProcess, forwardedCalls } from "../helpers/process.js";
import { APP_ID, APP_TOKEN, BOT_TOKEN, blockActionPayload, CHANNEL, newActionTs, sign, SIGNING_SECRET, TEAM, USERS } from "./harness.js";

const PUBLIC_URL = "http://127.0.0.1:0";
let db: TestDatabase;
let slack: FakeSlack;
let scratch: string;
let upstreamLog: string;
let a: GatewayProcess | undefined;
let b: GatewayProcess | undefined;
let c: GatewayProcess | undefined;
let key: DevIssuerKey;
let sql: pg.Client;

const forwarded = (marker: string) => forwardedCalls(upstreamLog, marker);

function config(listen: boolean): Record<string, unknown> {
  return {
    auth: { devIssuer: { enabled: true, keyFile: join(scratch, "dev.jwk") } },
    approvals: {
      groups: { oncall: { emails: ["alice@example.com", "bob@example.com", "carol@example.com"] } },
      holdFor: "60s",
      sweepIntervalMs: 200,
      pollIntervalMs: 200,
      listen,
      slack: {
        mode: "http",
        botToken: { file: join(scratch, "bot-token") },
        signingSecret: { file: join(scratch, "signing-secret") },
        channel: CHANNEL,
        apiUrl: slack.apiUrl,
        teamId: TEAM,
        appId: APP_ID,
      },
    },
    connections: [
      {
        name: "ops",
        access: { groups: ["dev"] },
        upstream: loggingServerStdio(upstreamLog),
        policy: { rules: [{ id: "deploys-need-oncall", description: "Deploys wait for on-call", tools: ["echo"], action: "require_approval", approval: { group: "oncall", timeout: "10m" } }] },
      },
    ],
  };
}

beforeAll(async () => {
  db = await createTestDatabase();
  slack = await startFakeSlack({ botToken: BOT_TOKEN, appToken: APP_TOKEN, teamId: TEAM });
  for (const u of Object.values(USERS)) slack.addUser(u);
  scratch = mkdtempSync(join(tmpdir(), "cs-cross-replica-"));
  upstreamLog = join(scratch, "received.log");
  writeFileSync(join(scratch, "bot-token"), BOT_TOKEN);
  writeFileSync(join(scratch, "signing-secret"), SIGNING_SECRET);
  const listening = writeGatewayConfig(join(scratch, "listening.yaml"), config(true));
  // A first: it creates the dev issuer's key that B and C then share (as replicas share a real issuer).
  a = await startGatewayProcess(listening, db.url, { timeoutMs: 60_000 });
  [b, c] = await Promise.all([
    startGatewayProcess(listening, db.url, { timeoutMs: 60_000 }),
    startGatewayProcess(writeGatewayConfig(join(scratch, "polling.yaml"), config(false)), db.url, { timeoutMs: 60_000 }),
  ]);
  key = await loadDevIssuerKey(join(scratch, "dev.jwk"));
  sql = new pg.Client({ connectionString: db.url });
  await sql.connect();
}, 120_000);
afterAll(async () => {
  await sql?.end();
  await Promise.all([killGateway(a), killGateway(b), killGateway(c)]);
  await slack?.close();
  await db?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

const token = (subject: string, email: string, audience: string) =>
  signDevToken(key, devIssuerUrl(PUBLIC_URL), { subject, email, groups: ["dev"], audience: [audience], ttlSeconds: 600 });

async function heldCallOn(replica: GatewayProcess, message: string) {
  const t = await token("alice", "alice@example.com", `${PUBLIC_URL}/mcp/ops`);
  const client = new Client({ name: "cross-replica", version: "1" });
  await client.connect(new StreamableHTTPClientTransport(new URL(replica.mcpUrl("ops")), { requestInit: { headers: { authorization: `Bearer ${t}` } } }));
  const call = client.callTool({ name: "echo", arguments: { message } }, undefined, { timeout: 90_000 });
  for (let i = 0; i < 400; i++) {
    const r = await sql.query<{ id: string }>(`SELECT id FROM approval_requests WHERE "maskedArguments"::text LIKE $1`, [`%${message}%`]);
    if (r.rows[0]) return { client, call, id: r.rows[0].id };
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`no approval request for ${message}`);
}

/** A signed Slack click, POSTed to one replica's interactivity endpoint. */
async function clickOn(replica: GatewayProcess, user: keyof typeof USERS, requestId: string): Promise<Response> {
  const body = new URLSearchParams({ payload: JSON.stringify(blockActionPayload(user, "approve", requestId, newActionTs())) }).toString();
  const ts = String(Math.floor(Date.now() / 1000));
  return fetch(`${replica.url}/slack/events`, {
    method: "POST",
    body,
    headers: { "content-type": "application/x-www-form-urlencoded", "x-slack-request-timestamp": ts, "x-slack-signature": sign(SIGNING_SECRET, ts, body) },
  });
}

const readiness = async (replica: GatewayProcess) => ((await (await fetch(`${replica.url}/readyz`)).json()) as { approvals: { listening: boolean; waiters: number } }).approvals;

it("a Slack click received by replica A releases the call held on replica B (LISTEN/NOTIFY), forwarded once", async () => {
  expect((await readiness(b!)).listening).toBe(true);
  const { client, call, id } = await heldCallOn(b!, "deploy via slack");
  // B holds it; the approval message was posted by B to the (fake) Slack.
  await slack.waitFor("chat.postMessage", (x) => JSON.stringify(x.args.blocks ?? []).includes(id), 15_000);
  // B is the one waiting for the decision.
  for (let i = 0; (await readiness(b!)).waiters !== 1; i++) {
    if (i > 200) throw new Error("replica B never held the call");
    await new Promise((res) => setTimeout(res, 50));
  }
  expect((await readiness(a!)).waiters).toBe(0);
  expect(forwarded("deploy via slack")).toBe(0);

  expect((await clickOn(a!, "bob", id)).status).toBe(200);
  const result = await call;
  expect(result.isError).toBeFalsy();
  expect(result.content).toEqual([{ type: "text", text: "Echo: deploy via slack" }]);
  expect(forwarded("deploy via slack")).toBe(1);
  const row = await sql.query(`SELECT status, "decidedBy", "forwardedAt" FROM approval_requests WHERE id = $1`, [id]);
  expect(row.rows[0]).toMatchObject({ status: "approved", decidedBy: "bob@example.com" });
  expect(row.rows[0].forwardedAt).not.toBeNull();
  await client.close();
}, 90_000);

it("a decision through replica A's approvals API releases the call on replica C, which only polls", async () => {
  expect((await readiness(c!)).listening).toBe(false);
  const { client, call, id } = await heldCallOn(c!, "deploy via api");
  const bob = await token("bob", "bob@example.com", `${PUBLIC_URL}/approvals`);
  const res = await fetch(`${a!.url}/approvals/${id}/approve`, { method: "POST", headers: { authorization: `Bearer ${bob}` } });
  expect(res.status).toBe(200);
  expect(((await res.json()) as { outcome: string }).outcome).toBe("decided");
  const result = await call;
  expect(result.content).toEqual([{ type: "text", text: "Echo: deploy via api" }]);
  expect(forwarded("deploy via api")).toBe(1);
  await client.close();
}, 90_000);
