// A held call waits holdFor for a decision, timed by the gateway's clock: with a manual clock,
// the default 45 s hold ends when the clock passes it, not after 45 s of waiting, and the caller
// gets "approval pending" while the request stays open for the identical retry.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, expect, it } from "vitest";
import { signDevToken } from "../gateway/auth/dev-issuer.js";
import { ManualClock } from "../gateway/clock.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { DEPLOYS_NEED_ONCALL } from "./helpers/held-calls.js";
import { createTestDatabase, type TestDatabase } from "./helpers/postgres.js";
import { forwardedCalls, loggingServerStdio } from "./helpers/process.js";

const HOLD_MS = 45_000;
const clock = new ManualClock(Date.now());
let db: TestDatabase;
let gw: TestGateway;
let scratch: string;
let upstreamLog: string;

beforeAll(async () => {
  db = await createTestDatabase();
  scratch = mkdtempSync(join(tmpdir(), "countersign-hold-clock-"));
  upstreamLog = join(scratch, "received.log");
  gw = await startTestGateway(
    db.url,
    {
      auth: { devIssuer: { enabled: true, keyFile: join(scratch, "dev.jwk") } },
      approvals: { groups: { oncall: { emails: ["bob@example.com"] } }, holdFor: `${HOLD_MS / 1000}s` },
      connections: [{ name: "ops", access: { groups: ["dev"] }, upstream: loggingServerStdio(upstreamLog), policy: { rules: [DEPLOYS_NEED_ONCALL] } }],
    },
    {},
    { clock },
  );
});
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

it("answers 'approval pending' once the clock passes holdFor, forwarding nothing", async () => {
  const d = gw.identity.devIssuer!;
  const token = await signDevToken(d.key, d.url, { subject: "alice", email: "alice@example.com", groups: ["dev"], audience: [`${gw.config.publicUrl}/mcp/ops`], ttlSeconds: 600 });
  const client = new Client({ name: "hold-clock-test", version: "1" });
  await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl("ops"), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  let answered = false;
  const call = client.callTool({ name: "echo", arguments: { message: "deploy v1" } }, undefined, { timeout: 30_000 }).finally(() => (answered = true));
  // The call is held: its request is open and the gateway waits on it.
  await expect.poll(() => gw.approvals!.service.status().waiters, { timeout: 10_000 }).toBe(1);
  await clock.advance(HOLD_MS - 1000);
  expect(gw.approvals!.service.status().waiters).toBe(1);
  expect(answered).toBe(false);
  await clock.advance(1000);
  const result = await call;
  expect(result.isError).toBe(true);
  expect((result.content as Array<{ text: string }>)[0]!.text).toMatch(/approval pending, request apr_\w+, expires .*retry the same call/);
  expect(gw.approvals!.service.status().waiters).toBe(0);
  expect(forwardedCalls(upstreamLog, "deploy v1")).toBe(0);
  await client.close();
});
