// A real approvals stack for tests: a database of its own, the recorder, the approvals service,
// the real Bolt app in HTTP mode behind the Fastify receiver, and the fake Slack on loopback.
// Clicks are real signed interactivity POSTs.
import { openStore } from "../../gateway/store/pools.js";
import { createHmac, randomBytes } from "node:crypto";
import Fastify, { type FastifyInstance } from "fastify";
import pg from "pg";
import { pino } from "pino";
import { Recorder } from "../../gateway/audit/recorder.js";
import { createDb, type Db } from "../../gateway/store/client.js";
import { ApprovalService } from "../../gateway/approvals/service.js";
import { EmailDirectory } from "../../gateway/approvals/directory.js";
import type { NewApprovalRequest } from "../../gateway/approvals/types.js";
import { Secret } from "../../gateway/config/secret.js";
import type { ApprovalsConfig } from "../../gateway/config/load.js";
import { createSlackBot, registerSlackRoutes, type SlackBot, type SlackRoutes } from "../../bot/index.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { startFakeSlack, type FakeSlack } from "../helpers/fake-slack.js";

export const SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5";
export const BOT_TOKEN = "xoxb-test-token";
export const APP_TOKEN = "xapp-test-token";
export const TEAM = "T0FAKE";
export const APP_ID = "AFAKE";
export const CHANNEL = "C0APPROVALS";

export const USERS = {
  alice: { id: "UALICE", email: "alice@example.com", name: "Alice Requester" },
  bob: { id: "UBOB", email: "bob@example.com", name: "Bob Approver" },
  carol: { id: "UCAROL", email: "carol@example.com", name: "Carol Approver" },
  dave: { id: "UDAVE", email: "dave@example.com", name: "Dave (via user group)" },
  eve: { id: "UEVE", email: "eve@example.com", name: "Eve Outsider" },
  nomail: { id: "UNOMAIL", name: "No Mail" },
} as const;
export type UserName = keyof typeof USERS;

export const silentLog = pino({ level: process.env.TEST_LOG ?? "silent" });

export function approvalsConfig(apiUrl: string, overrides: Partial<ApprovalsConfig> = {}, mode: "http" | "socket" = "http"): ApprovalsConfig {
  return {
    groups: {
      // Alice is in the group and an admin elsewhere: she still cannot approve her own call.
      oncall: { emails: ["alice@example.com", "bob@example.com", "carol@example.com"], slackUserGroups: ["S0ONCALL"] },
      managers: { emails: ["eve@example.com"], slackUserGroups: [] },
    },
    holdForMs: 45_000,
    sweepIntervalMs: 100,
    pollIntervalMs: 200,
    listen: true,
    slack: {
      mode,
      botToken: new Secret(BOT_TOKEN, "test"),
      signingSecret: new Secret(SIGNING_SECRET, "test"),
      ...(mode === "socket" ? { appToken: new Secret(APP_TOKEN, "test") } : {}),
      channel: CHANNEL,
      apiUrl,
      teamId: TEAM,
      appId: APP_ID,
      users: {},
      postAttempts: 6,
    },
    ...overrides,
  };
}

export interface Stack {
  db: TestDatabase;
  prisma: Db;
  recorder: Recorder;
  service: ApprovalService;
  slack: FakeSlack;
  bot: SlackBot;
  http: FastifyInstance;
  routes: SlackRoutes | undefined;
  url: string;
  sessionId: string;
  request(over?: Partial<NewApprovalRequest>): ReturnType<ApprovalService["request"]>;
  click(user: UserName, action: "approve" | "deny" | "details", requestId: string, opts?: ClickOptions): Promise<Response>;
  submitDeny(user: UserName, requestId: string, reason: string, opts?: ClickOptions & { viewId?: string }): Promise<Response>;
  post(body: string, headers: Record<string, string>): Promise<Response>;
  stop(): Promise<void>;
}

export interface ClickOptions {
  actionTs?: string;
  retryNum?: number;
  /** Seconds to add to the signed timestamp (negative: stale, positive: future). */
  skewSeconds?: number;
  secret?: string;
  team?: string;
}

export function sign(secret: string, ts: string, body: string): string {
  return `v0=${createHmac("sha256", secret).update(`v0:${ts}:${body}`).digest("hex")}`;
}

let actionSeq = 0;
export const newActionTs = () => `${Math.floor(Date.now() / 1000)}.${String(++actionSeq).padStart(6, "0")}${randomBytes(2).toString("hex")}`;

export function blockActionPayload(user: UserName, action: "approve" | "deny" | "details", requestId: string, actionTs: string, team = TEAM): Record<string, unknown> {
  const u = USERS[user];
  return {
    type: "block_actions",
    team: { id: team, domain: "fake" },
    user: { id: u.id, username: u.name, name: u.name, team_id: team },
    api_app_id: APP_ID,
    token: "legacy-verification-token",
    container: { type: "message", message_ts: "1.000001", channel_id: CHANNEL, is_ephemeral: false },
    trigger_id: `${Date.now()}.${actionSeq}.${randomBytes(4).toString("hex")}`,
    channel: { id: CHANNEL, name: "approvals" },
    message: { type: "message", ts: "1.000001", text: "Approval needed" },
    response_url: "http://127.0.0.1:9/unused",
    actions: [{ action_id: `countersign_${action}`, block_id: `decide:${requestId}`, value: requestId, type: "button", action_ts: actionTs, text: { type: "plain_text", text: action } }],
  };
}

export function viewSubmissionPayload(user: UserName, requestId: string, reason: string, viewId: string): Record<string, unknown> {
  const u = USERS[user];
  return {
    type: "view_submission",
    team: { id: TEAM, domain: "fake" },
    user: { id: u.id, username: u.name, name: u.name, team_id: TEAM },
    api_app_id: APP_ID,
    token: "legacy-verification-token",
    trigger_id: `${Date.now()}.${randomBytes(4).toString("hex")}`,
    view: {
      id: viewId,
      team_id: TEAM,
      type: "modal",
      callback_id: "countersign_deny",
      private_metadata: requestId,
      hash: "1.abc",
      blocks: [],
      state: { values: { reason: { reason: { type: "plain_text_input", value: reason } } } },
      app_id: APP_ID,
      bot_id: "BBOT",
    },
  };
}

export async function createSessionRow(url: string): Promise<string> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const instance = `test-${randomBytes(3).toString("hex")}`;
  const session = `sess-${randomBytes(6).toString("hex")}`;
  await c.query(`INSERT INTO instances (id, host, pid, version) VALUES ($1, 'test', 1, 'test')`, [instance]);
  await c.query(`INSERT INTO sessions (id, connection, "frontTransport", "upstreamKind", "ownerInstanceId") VALUES ($1, 'prod-db', 'streamable_http', 'stdio', $2)`, [session, instance]);
  await c.end();
  return session;
}

export function baseRequest(sessionId: string, over: Partial<NewApprovalRequest> = {}): NewApprovalRequest {
  return {
    sessionId,
    connection: "prod-db",
    tool: "query",
    arguments: { sql: "DELETE FROM orders WHERE created_at < now() - interval '1 year'", note: randomBytes(4).toString("hex") },
    maskedArguments: { sql: "DELETE FROM orders WHERE created_at < now() - interval '1 year'", password: "[MASKED:password]" },
    requester: { subject: "alice", issuer: "https://idp.example.com", kind: "user", email: "alice@example.com", name: "Alice Requester", groups: ["dev", "oncall", "admins"] },
    rule: { id: "sql-writes-need-approval", description: "Writes to the production database need an on-call approval" },
    approverGroup: "oncall",
    approvalsNeeded: 1,
    timeoutMs: 15 * 60_000,
    justification: "Quarterly cleanup, ticket OPS-1234",
    ...over,
  };
}

export interface StackOptions {
  approvals?: Partial<ApprovalsConfig>;
  db?: TestDatabase;
  slack?: FakeSlack;
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const db = opts.db ?? (await createTestDatabase());
  const slack = opts.slack ?? (await startFakeSlack({ botToken: BOT_TOKEN, appToken: APP_TOKEN, teamId: TEAM }));
  for (const u of Object.values(USERS)) slack.addUser(u);
  slack.addUserGroup("S0ONCALL", [USERS.dave.id]);
  const prisma = createDb(db.url);
  const store = openStore(db.url, { log: silentLog });
  const recorder = new Recorder(prisma, { commitTimeoutMs: 5000 });
  const config = approvalsConfig(slack.apiUrl, opts.approvals);
  const service = new ApprovalService({
    pool: store.background,
    hub: store.listen,
    recorder,
    directory: new EmailDirectory(config.groups),
    log: silentLog,
    sweepIntervalMs: config.sweepIntervalMs,
    pollIntervalMs: config.pollIntervalMs,
    reminderEveryMs: config.reminderEveryMs,
    escalation: config.escalation,
    retryBaseMs: 50,
  });
  await service.start();
  const bot = await createSlackBot({ approvals: config, service, log: silentLog, clientOptions: { retryConfig: { retries: 0 } } });
  const http = Fastify();
  const routes = registerSlackRoutes(http, { bot, recorder, log: silentLog, refusalFlushMs: 60_000 });
  await http.listen({ host: "127.0.0.1", port: 0 });
  const addr = http.server.address();
  const url = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}/slack/events`;
  const sessionId = await createSessionRow(db.url);

  const post = (body: string, headers: Record<string, string>) => fetch(url, { method: "POST", body, headers });
  const signedForm = (payload: Record<string, unknown>, o: ClickOptions = {}) => {
    const body = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
    const ts = String(Math.floor(Date.now() / 1000) + (o.skewSeconds ?? 0));
    const headers: Record<string, string> = {
      "content-type": "application/x-www-form-urlencoded",
      "x-slack-request-timestamp": ts,
      "x-slack-signature": sign(o.secret ?? SIGNING_SECRET, ts, body),
    };
    if (o.retryNum !== undefined) Object.assign(headers, { "x-slack-retry-num": String(o.retryNum), "x-slack-retry-reason": "http_timeout" });
    return post(body, headers);
  };

  return {
    db, prisma, recorder, service, slack, bot, http, routes, url, sessionId, post,
    request: (over) => service.request(baseRequest(sessionId, over)),
    click: (user, action, requestId, o = {}) => signedForm(blockActionPayload(user, action, requestId, o.actionTs ?? newActionTs(), o.team), o),
    submitDeny: (user, requestId, reason, o = {}) => signedForm(viewSubmissionPayload(user, requestId, reason, o.viewId ?? `VDENY${randomBytes(4).toString("hex")}`), o),
    async stop() {
      await http.close();
      await bot.stop();
      await service.stop();
      await recorder.drain();
      await prisma.$disconnect();
      await store.close();
      if (!opts.slack) await slack.close();
      if (!opts.db) await db.drop();
    },
  };
}

/** Polls until `fn` returns a truthy value. */
export async function until<T>(fn: () => Promise<T> | T, what: string, timeoutMs = 10_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
