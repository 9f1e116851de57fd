// Socket Mode: the real Bolt app connects (apps.connections.open on the fake Web API, then a
// WebSocket to the fake's ws server playing Slack's side), receives a click as an envelope,
// acknowledges it, and the click decides.
import { openStore, type Store } from "../../gateway/store/pools.js";
import { afterAll, beforeAll, expect, it } from "vitest";
import { pino } from "pino";
import { Recorder } from "../../gateway/audit/recorder.js";
import { createDb, type Db } from "../../gateway/store/client.js";
import { ApprovalService } from "../../gateway/approvals/service.js";
import { EmailDirectory } from "../../gateway/approvals/directory.js";
import { createSlackBot, type SlackBot } from "../../bot/index.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { startFakeSlack, type FakeSlack } from "../helpers/fake-slack.js";
import { APP_TOKEN, approvalsConfig, baseRequest, blockActionPayload, BOT_TOKEN, createSessionRow, newActionTs, TEAM, until, USERS } from "./harness.js";

let db: TestDatabase;
let slack: FakeSlack;
let prisma: Db;
let recorder: Recorder;
let service: ApprovalService;
let bot: SlackBot;
let sessionId: string;
let store: Store;

beforeAll(async () => {
  db = await createTestDatabase();
  slack = await startFakeSlack({ botToken: BOT_TOKEN, appToken: APP_TOKEN, teamId: TEAM });
  for (const u of Object.values(USERS)) slack.addUser(u);
  slack.addUserGroup("S0ONCALL", [USERS.dave.id]);
  prisma = createDb(db.url);
  recorder = new Recorder(prisma, { commitTimeoutMs: 5000 });
  const config = approvalsConfig(slack.apiUrl, {}, "socket");
  const log = pino({ level: "silent" });
  store = openStore(db.url, { log });
  service = new ApprovalService({ pool: store.background, hub: store.listen, recorder, directory: new EmailDirectory(config.groups), log, sweepIntervalMs: 200, pollIntervalMs: 200 });
  await service.start();
  bot = await createSlackBot({ approvals: config, service, log, clientOptions: { retryConfig: { retries: 0 } } });
  await bot.start();
  sessionId = await createSessionRow(db.url);
});
afterAll(async () => {
  await bot?.stop();
  await service?.stop();
  await recorder?.drain();
  await prisma?.$disconnect();
  await store?.close();
  await slack?.close();
  await db?.drop();
});

it("connects with the app token at the configured API URL and decides on a click envelope", async () => {
  const open = await slack.waitFor("apps.connections.open");
  expect(open.token).toBe(APP_TOKEN);
  await until(() => slack.sockets.length > 0, "the WebSocket connection");
  const { request } = await service.request(baseRequest(sessionId));
  await until(async () => (await service.store.get(request.id))?.slack.ts, "posted");
  const ack = await slack.sendEnvelope(blockActionPayload("bob", "approve", request.id, newActionTs()));
  expect(ack.envelope_id).toMatch(/^env-/);
  const r = await service.waitForDecision(request.id, undefined, 10_000);
  expect(r).toMatchObject({ status: "approved", decidedBy: "bob@example.com" });
  await slack.waitFor("chat.update", (c) => c.args.ts === r.slack.ts);
});

it("drops envelopes from another workspace", async () => {
  const { request } = await service.request(baseRequest(sessionId));
  await slack.sendEnvelope(blockActionPayload("bob", "approve", request.id, newActionTs(), "TOTHER"));
  // A real click afterwards is still processed, so the foreign one had its chance to be handled.
  await slack.sendEnvelope(blockActionPayload("eve", "approve", request.id, newActionTs()));
  await slack.waitFor("chat.postEphemeral", (c) => c.args.user === USERS.eve.id && JSON.stringify(c.args.blocks).includes(request.id));
  expect((await service.store.get(request.id))!.status).toBe("pending");
});
