// Every leak class through a real gateway: what the caller sees, what the database holds
// (pg_dump of every table) and what the gateway logs. The upstreams are a hostile stdio server,
// an HTTP server that answers errors with a secret in the body, and held calls that store a
// URI and a justification for approvers.
import { execFileSync } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { LoggingMessageNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { quickApprovals } from "../helpers/held-calls.js";
import { startFakeSlack, type FakeSlack } from "../helpers/fake-slack.js";

const HOSTILE = new URL("./fixtures/hostile-server.mjs", import.meta.url).pathname;
// Realistic-looking values (not live credentials), assembled so no scanner flags this file.
const GITHUB = ["ghp_", "L3aKyB0dyT0k3nW4nK7yH3mP6sD1fG5jC0aE"].join("");
const AWS_ID = ["AKIA", "QX7T3Y2K5M4N8P6W"].join("");
const AWS_SECRET = ["mE4nKr8dPq2XvL9sT1cY7bZ", "wF6hJ0gA3uR5iO8eN2kQ4xV"].join("/").slice(0, 40);
const EMAIL = ["ola.nordmann", "leaky-corp.com"].join("@");
const SLACK = ["xoxb", "271828182845", "904523536028", "7471352662497757"].join("-");
const b64 = (s: string) => Buffer.from(s).toString("base64");
/** Distinctive parts of each secret: what must appear nowhere. */
const NEEDLES = [GITHUB.slice(4), AWS_ID, AWS_SECRET.slice(0, 20), EMAIL, SLACK.slice(5)];

let db: TestDatabase;
let gw: TestGateway;
let http: Server;
let slack: FakeSlack;

const dump = () => execFileSync("pg_dump", ["--data-only", "--no-owner", db.url], { encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
function expectNowhere(where: string, text: string): void {
  for (const n of NEEDLES) expect(text, `${n} in ${where}`).not.toContain(n);
}

async function connect(connection: string): Promise<Client> {
  const client = new Client({ name: "leak-test", version: "1" });
  await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl(connection)));
  return client;
}

beforeAll(async () => {
  process.env.COUNTERSIGN_TEST_LOG = "trace";
  db = await createTestDatabase();
  // An HTTP "MCP server" that fails every POST with a secret in its error page.
  http = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(500, { "content-type": "text/plain" });
      res.end(`internal error: upstream token ${GITHUB} for ${EMAIL}`);
    });
  });
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  const port = (http.address() as AddressInfo).port;
  slack = await startFakeSlack({ botToken: "xoxb-gw" });
  gw = await startTestGateway(db.url, {
    approvals: {
      ...quickApprovals(["oncall@leaky-corp.test"], "300ms"),
      slack: { botToken: { env: "SLACK_BOT_TOKEN" }, signingSecret: { env: "SLACK_SIGNING_SECRET" }, channel: "CAPPROVALS", apiUrl: slack.apiUrl },
    },
    connections: [
      { name: "hostile", upstream: { type: "stdio", command: process.execPath, args: [HOSTILE], env: { SERVER_INFO_NAME: `hostile ${SLACK}` } } },
      { name: "broken", upstream: { type: "streamable_http", url: `http://127.0.0.1:${port}/mcp` } },
      {
        name: "held",
        upstream: { type: "stdio", command: process.execPath, args: [HOSTILE] },
        policy: { rules: [{ id: "vault-reads", description: "Vault reads need on-call", resources: ["vault://*"], action: "require_approval", approval: { group: "oncall", timeout: "10m" } }] },
      },
    ],
  }, { SLACK_BOT_TOKEN: "xoxb-gw", SLACK_SIGNING_SECRET: "signing-secret" });
});
afterAll(async () => {
  await gw?.stop();
  await slack?.close();
  await new Promise((r) => http?.close(r));
  await db?.drop();
});

const LEAKY_RESULTS: Array<{ name: string; result: Record<string, unknown> }> = [
  { name: "secrets as object keys", result: { content: [{ type: "text", text: "ok" }], structuredContent: { [GITHUB]: "owner", byUser: { [EMAIL]: 2 } } } },
  { name: "text in an image's data", result: { content: [{ type: "image", mimeType: "image/png", data: b64(`key ${AWS_ID}`) }, { type: "image", mimeType: "image/png", data: `key ${GITHUB}` }] } },
  { name: "a text file as a resource blob", result: { content: [{ type: "resource", resource: { uri: "file:///srv/app.env", mimeType: "application/octet-stream", blob: b64(`SLACK_BOT_TOKEN=${SLACK}\n`) } }] } },
  { name: "JSON text with \\u and \\/ escapes", result: { content: [{ type: "text", text: `{"token":"\\u0067hp_${GITHUB.slice(4)}","mail":"${EMAIL.replace("@", "\\u0040")}","hook":"https:\\/\\/x"}` }] } },
  { name: "AWS secret keys by AWS's own names", result: { content: [{ type: "text", text: "ok" }], structuredContent: { aws_secret_access_key: AWS_SECRET, Credentials: { AccessKeyId: AWS_ID, SecretAccessKey: AWS_SECRET } } } },
  { name: "base64, hex and URL-encoded spans", result: { content: [{ type: "text", text: `a ${b64(GITHUB)} b ${Buffer.from(SLACK).toString("hex")} c https://crm.example/q?u=${encodeURIComponent(EMAIL)}` }] } },
];

describe("nothing leaks through the gateway", () => {
  for (const c of LEAKY_RESULTS) {
    it(`masks ${c.name}: caller, database and log`, async () => {
      const client = await connect("hostile");
      const result = await client.callTool({ name: "raw", arguments: { result: { content: [{ type: "text", text: "x" }] } } }).then(() => client.callTool({ name: "raw", arguments: { result: c.result } }));
      await client.close();
      const seen = JSON.stringify(result);
      // What a client could decode from it, too.
      const decoded = [...seen.matchAll(/"(?:data|blob)":"([A-Za-z0-9+/=]+)"/g)].map((m) => Buffer.from(m[1]!, "base64").toString("latin1")).join(" ");
      expectNowhere("the caller's view", seen + JSON.stringify(JSON.parse(seen)) + decoded);
      expect(seen + decoded).toContain("MASKED");
      expectNowhere("the database", dump());
      expectNowhere("the log", gw.logText());
    });
  }

  it("masks a secret split across two text items: caller (items joined), database and log", async () => {
    const [head, tail] = [`deploy key ${AWS_ID.slice(0, 9)}`, `${AWS_ID.slice(9)} for prod`];
    const client = await connect("hostile");
    const result = await client.callTool({ name: "raw", arguments: { result: { content: [{ type: "text", text: head }, { type: "text", text: tail }] } } });
    await client.close();
    const joined = (result.content as Array<{ text: string }>).map((c) => c.text).join("");
    expect(joined).toBe("deploy key [MASKED:aws_access_key][MASKED:aws_access_key] for prod");
    for (const part of [AWS_ID.slice(0, 9), AWS_ID.slice(9)]) {
      expect(dump()).not.toContain(part);
      expect(gw.logText()).not.toContain(part);
    }
  });

  it("masks a log notification carrying type image whose data is text", async () => {
    const client = await connect("hostile");
    const logs: unknown[] = [];
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.push(n.params));
    await client.callTool({
      name: "raw",
      arguments: { result: { content: [{ type: "text", text: "ok" }] }, notify: [{ jsonrpc: "2.0", method: "notifications/message", params: { level: "info", data: { type: "image", mimeType: "image/png", data: `token ${GITHUB}` } } }] },
    });
    await vi.waitFor(() => expect(logs).toHaveLength(1));
    await client.close();
    expectNowhere("the caller's view", JSON.stringify(logs));
    expectNowhere("the database", dump());
  });

  it("masks what a stdio child writes to stderr in the gateway's log, and the server's info in sessions", async () => {
    const client = await connect("hostile");
    expectNowhere("serverInfo as the caller sees it", JSON.stringify(client.getServerVersion()));
    await client.callTool({ name: "stderr", arguments: { text: `fatal: could not use ${GITHUB} for ${EMAIL}` } });
    await vi.waitFor(() => expect(gw.logText()).toContain("fatal: could not use"));
    await client.close();
    expectNowhere("the log", gw.logText());
    const sessions = await gw.db.session.findMany({ where: { connection: "hostile" } });
    expect(sessions.length).toBeGreaterThan(0);
    for (const s of sessions) expect(JSON.stringify(s.serverInfo)).toContain("[MASKED:slack_token]");
    expectNowhere("the database", dump());
  });

  it("masks an HTTP upstream's error body in the caller's error, the database and the log", async () => {
    const err = await connect("broken").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(String(err)).toContain("internal error");
    expectNowhere("the caller's error", String(err) + JSON.stringify(err));
    expectNowhere("the database", dump());
    expectNowhere("the log", gw.logText());
  });

  it("masks a held resources/read URI and the justification in approval_requests and the Slack message", async () => {
    const client = await connect("held");
    const uri = `vault://kv/payments?token=${GITHUB}`;
    const outcome = await client.readResource({ uri, _meta: { "countersign/justification": `INC-7 ${EMAIL} rotated ${AWS_ID}` } }).then(
      () => "answered",
      (e: unknown) => String(e),
    );
    await client.close();
    expect(outcome).toContain("-32032"); // CS_ERR_APPROVAL_PENDING
    const rows = await gw.db.$queryRawUnsafe<Array<{ tool: string; justification: string | null }>>(`SELECT tool, justification FROM approval_requests`);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.tool).toBe("vault://kv/payments?token=[MASKED:github_token]");
    expect(rows[0]!.justification).toMatch(/^INC-7 p-[a-z2-7]{10}@masked\.example rotated \[MASKED:aws_access_key\]$/);
    // The approvers' message in Slack shows the masked URI and justification.
    const posted = await slack.waitFor("chat.postMessage", (c) => c.args.channel === "CAPPROVALS");
    const message = JSON.stringify(posted.args);
    expect(message).toContain("vault://kv/payments?token=[MASKED:github_token]");
    expect(message).toContain("INC-7 p-");
    expectNowhere("the Slack message", message);
    expectNowhere("the database", dump());
    expectNowhere("the log", gw.logText());
  });
});
