// The fallback without Slack: `countersign approvals list | show | approve | deny`, run as a real
// process against a real gateway's approvals API with real tokens from the dev issuer. The approver
// is the token's identity and the rules are Slack's: no self-approval, approver groups by e-mail,
// N-of-M, one Deny ends it. A decision here releases the held MCP call exactly like a click.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { signDevToken } from "../../gateway/auth/dev-issuer.js";
import { startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { loggingServerStdio, forwardedCalls } from "../helpers/process.js";
import { DEPLOYS_NEED_ONCALL, quickApprovals } from "../helpers/held-calls.js";
import { runCli } from "../helpers/cli.js";

let db: TestDatabase;
let gw: TestGateway;
let scratch: string;
let upstreamLog: string;
let configFile: string;

const forwarded = (marker: string) => forwardedCalls(upstreamLog, marker);

beforeAll(async () => {
  db = await createTestDatabase();
  scratch = mkdtempSync(join(tmpdir(), "cs-approvals-cli-"));
  upstreamLog = join(scratch, "received.log");
  const config = {
    auth: { devIssuer: { enabled: true, keyFile: join(scratch, "dev.jwk") } },
    approvals: quickApprovals(["alice@example.com", "bob@example.com", "carol@example.com"], "30s"),
    connections: [
      {
        name: "ops",
        access: { groups: ["dev"] },
        upstream: loggingServerStdio(upstreamLog),
        policy: {
          rules: [
            DEPLOYS_NEED_ONCALL,
            { id: "migrations-need-two", description: "Migrations need two on-call approvals", tools: ["echo"], when: { path: "$.arguments.message", matches: "^migrate" }, action: "require_approval", approval: { group: "oncall", approvals: 2, timeout: "10m" } },
          ],
        },
      },
    ],
  };
  gw = await startTestGateway(db.url, config);
  // The same configuration on disk, for the CLI (`countersign token` reads the dev issuer's key from it).
  configFile = join(scratch, "countersign.yaml");
  writeFileSync(configFile, stringify({ version: 1, server: { host: "127.0.0.1", port: 0 }, ...config }));
}, 60_000);
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

const token = (subject: string, email: string | undefined, audience = `${gw.config.publicUrl}/approvals`, ttlSeconds = 600) => {
  const d = gw.identity.devIssuer!;
  return signDevToken(d.key, d.url, { subject, email, groups: ["dev"], audience: [audience], ttlSeconds });
};

/** `countersign approvals …` against the test gateway, with COUNTERSIGN_URL and the given token. */
const cli = async (tok: string | undefined, ...args: string[]) =>
  runCli(["approvals", ...args, "--config", configFile], { COUNTERSIGN_URL: gw.address, ...(tok ? { COUNTERSIGN_TOKEN: tok } : {}) });

async function aliceCall(message: string) {
  const t = await token("alice", "alice@example.com", `${gw.config.publicUrl}/mcp/ops`);
  const client = new Client({ name: "cli-test", version: "1" });
  await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl("ops"), { requestInit: { headers: { authorization: `Bearer ${t}` } } }));
  const call = client.callTool({ name: "echo", arguments: { message } }, undefined, { timeout: 60_000 });
  return { client, call };
}

async function pendingRequest(marker: string): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const rows = await gw.db.$queryRawUnsafe<Array<{ id: string }>>(`SELECT id FROM approval_requests WHERE "maskedArguments"::text LIKE $1 ORDER BY "createdAt" DESC LIMIT 1`, `%${marker}%`);
    if (rows[0]) return rows[0].id;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no approval request for ${marker}`);
}

const events = (requestId: string) => gw.db.event.findMany({ where: { type: "approval", detail: { path: ["requestId"], equals: requestId } }, orderBy: { id: "asc" } });

describe("countersign approvals through the gateway", () => {
  it("releases the held call once when a group member approves; refuses the requester and outsiders", async () => {
    const { client, call } = await aliceCall("deploy v7");
    const id = await pendingRequest("deploy v7");
    const bob = await token("bob", "bob@example.com");

    const list = await cli(bob, "list");
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(id);
    expect(list.stdout).toContain("alice@example.com");
    const shown = await cli(bob, "show", id);
    expect(shown.stdout).toContain("deploy v7");
    expect(shown.stdout).toMatch(/you may vote: +yes/);
    // Where to decide it in a browser.
    expect(shown.stdout).toContain(`console:       ${gw.config.publicUrl}/console/approvals/${id}`);

    // The requester's own token: refused, recorded, nothing forwarded.
    const self = await cli(await token("alice", "alice@example.com"), "approve", id);
    expect(self.code).toBe(3);
    expect(self.stderr).toContain("CS_ERR_SELF_APPROVAL");
    expect(self.stderr).toContain("four-eyes");
    // Someone outside the group: told which group decides.
    const eve = await token("eve", "eve@example.com");
    const outsider = await cli(eve, "approve", id);
    expect(outsider.code).toBe(3);
    expect(outsider.stderr).toContain("CS_ERR_NOT_AN_APPROVER");
    expect(outsider.stderr).toContain("eve@example.com is not in the group oncall");
    // The outsider's list does not show the request at all.
    expect((await cli(eve, "list")).stdout).not.toContain(id);
    expect(forwarded("deploy v7")).toBe(0);

    const approved = await cli(bob, "approve", id);
    expect(approved.code).toBe(0);
    expect(approved.stdout).toContain(`${id}: approved by bob@example.com`);
    const result = await call;
    expect(result.isError).toBeFalsy();
    expect(result.content).toEqual([{ type: "text", text: "Echo: deploy v7" }]);
    expect(forwarded("deploy v7")).toBe(1);

    // Once decided, a second vote is refused and nothing more is forwarded.
    const again = await cli(await token("carol", "carol@example.com"), "approve", id);
    expect(again.code).toBe(3);
    expect(again.stderr).toContain("already approved");
    expect(forwarded("deploy v7")).toBe(1);

    const recorded = await events(id);
    expect(recorded.map((e) => e.reason)).toEqual(expect.arrayContaining(["self_approval_refused", "unauthorized_click", "vote", "approved", "forwarded"]));
    const vote = recorded.find((e) => e.reason === "vote")!;
    expect(vote.detail).toMatchObject({ via: "api", approverSubject: "bob", decision: "approve" });
    await client.close();
  }, 90_000);

  it("refuses bad, expired, wrong-audience and e-mail-less tokens", async () => {
    const bad = await cli("not-a-token", "list");
    expect(bad.code).toBe(4);
    expect(bad.stderr).toContain("CS_ERR_UNAUTHENTICATED");
    const expired = await cli(await token("bob", "bob@example.com", undefined, -3600), "list");
    expect(expired.code).toBe(4);
    expect(expired.stderr).toMatch(/CS_ERR_UNAUTHENTICATED.*expired/);
    // A token for an MCP connection is not a token for the approvals API.
    const mcpToken = await cli(await token("bob", "bob@example.com", `${gw.config.publicUrl}/mcp/ops`), "list");
    expect(mcpToken.code).toBe(4);
    const noEmail = await cli(await token("svc", undefined), "list");
    expect(noEmail.code).toBe(3);
    expect(noEmail.stderr).toContain("CS_ERR_APPROVER_NO_EMAIL");
    const none = await cli(undefined, "list");
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("COUNTERSIGN_TOKEN");
  }, 60_000);

  it("counts N of M approvals, lets one Deny end it, and prints --json for machines", async () => {
    const { client, call } = await aliceCall("migrate orders");
    const id = await pendingRequest("migrate orders");
    // A token made by `countersign token --approvals` from the same dev issuer.
    const minted = await runCli(["token", "--approvals", "--sub", "bob", "--email", "bob@example.com", "--config", configFile]);
    expect(minted.code).toBe(0);
    const bob = minted.stdout.trim();

    const listed = JSON.parse((await cli(bob, "list", "--json")).stdout) as { approver: string; requests: Array<Record<string, unknown>> };
    expect(listed.approver).toBe("bob@example.com");
    const mine = listed.requests.find((r) => r.id === id)!;
    expect(mine).toMatchObject({ status: "pending", connection: "ops", tool: "echo", approverGroup: "oncall", approvalsNeeded: 2, approveCount: 0, mayDecide: true, arguments: { message: "migrate orders" } });
    expect(mine.requester).toMatchObject({ subject: "alice", email: "alice@example.com" });
    expect(mine).not.toHaveProperty("argumentsHash");

    const first = JSON.parse((await cli(bob, "approve", id, "--json")).stdout) as { outcome: string; request: { approveCount: number; status: string } };
    expect(first).toMatchObject({ outcome: "recorded", request: { approveCount: 1, status: "pending" } });
    const carol = await token("carol", "carol@example.com");
    const noReason = await cli(carol, "deny", id);
    expect(noReason.code).toBe(2);
    const denied = await cli(carol, "deny", id, "--reason", "not during the freeze");
    expect(denied.code).toBe(0);
    expect(denied.stdout).toContain(`${id}: denied by carol@example.com`);
    const result = await call;
    expect(result.isError).toBe(true);
    expect(JSON.stringify(result.content)).toContain("not during the freeze");
    expect(forwarded("migrate orders")).toBe(0);

    const shown = JSON.parse((await cli(bob, "show", id, "--json")).stdout) as { status: string; votes: Array<{ approver: string; decision: string; via: string }> };
    expect(shown.status).toBe("denied");
    expect(shown.votes).toEqual([
      expect.objectContaining({ approver: "bob@example.com", decision: "approve", via: "api" }),
      expect.objectContaining({ approver: "carol@example.com", decision: "deny", via: "api" }),
    ]);
    const refusedJson = await cli(bob, "approve", id, "--json");
    expect(refusedJson.code).toBe(3);
    expect(JSON.parse(refusedJson.stdout)).toMatchObject({ error: { code: "CS_ERR_APPROVAL_CLOSED", status: 409 } });
    await client.close();
  }, 90_000);

  it("keeps a break-glass path to the database, recorded as such", async () => {
    const { client, call } = await aliceCall("deploy hotfix");
    const id = await pendingRequest("deploy hotfix");
    const env = { DATABASE_URL: db.url };
    const missingAs = await runCli(["approvals", "approve", id, "--database", "--config", configFile], env);
    expect(missingAs.code).toBe(2);
    const self = await runCli(["approvals", "approve", id, "--database", "--as", "alice@example.com", "--config", configFile], env);
    expect(self.code).toBe(3);
    const done = await runCli(["approvals", "approve", id, "--database", "--as", "bob@example.com", "--config", configFile], env);
    expect(done.code).toBe(0);
    expect(done.stderr).toContain("break-glass");
    expect((await call).content).toEqual([{ type: "text", text: "Echo: deploy hotfix" }]);
    const vote = (await events(id)).find((e) => e.reason === "vote")!;
    expect(vote.detail).toMatchObject({ via: "break_glass" });
    await client.close();
  }, 90_000);
});
