// The digest schedule inside a running gateway: started with `digest.enabled`, it catches up the
// last scheduled week at start and posts it to the managers' channel once, signed with the
// checkpoint key.
import { Cron } from "croner";
import { afterAll, beforeAll, expect, it } from "vitest";
import { lastCompleteWeek } from "../../gateway/evidence/week.js";
import { newKey } from "../chain/lib.js";
import { startFakeSlack, type FakeSlack } from "../helpers/fake-slack.js";
import { everythingStdio, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";

const key = newKey("gateway-digest");
let db: TestDatabase;
let slack: FakeSlack;
let gw: TestGateway;

beforeAll(async () => {
  db = await createTestDatabase();
  slack = await startFakeSlack({ botToken: "xoxb-gw" });
  gw = await startTestGateway(
    db.url,
    {
      connections: [{ name: "everything", upstream: everythingStdio() }],
      approvals: { slack: { botToken: { env: "SLACK_BOT_TOKEN" }, signingSecret: { env: "SLACK_SIGNING_SECRET" }, channel: "CAPPROVALS", apiUrl: slack.apiUrl } },
      audit: { checkpoint: { keys: [{ id: "gateway-digest", privateKey: { env: "CHECKPOINT_KEY" } }] } },
      digest: { enabled: true, timeZone: "UTC", slackChannel: "CMANAGERS", checkIntervalMs: 100 },
    },
    { SLACK_BOT_TOKEN: "xoxb-gw", SLACK_SIGNING_SECRET: "secret", CHECKPOINT_KEY: key.pem },
  );
});

afterAll(async () => {
  await gw?.stop();
  await slack?.close();
  await db?.drop();
});

it("at start, the gateway posts the last scheduled week's digest once", async () => {
  const due = new Cron("0 9 * * 1", { timezone: "UTC", paused: true }).previousRuns(1, new Date())[0]!;
  const week = lastCompleteWeek(due, "UTC").label;
  const msg = await slack.waitFor("chat.postMessage", (c) => c.args.channel === "CMANAGERS", 20_000);
  expect(msg.args.text).toMatch(new RegExp(`^Weekly evidence digest ${week}: \\d+ exception\\(s\\)$`));
  await slack.waitFor("files.completeUploadExternal");
  // Many checks later, still one post and one stored digest.
  const row = async () => (await gw.db.$queryRawUnsafe<Array<{ n: number; week: string; keyId: string; posted: boolean }>>(
    `SELECT count(*)::int AS n, min(week) AS week, min("keyId") AS "keyId", bool_and("postedAt" IS NOT NULL) AS posted FROM digests`,
  ))[0]!;
  await expect.poll(async () => (await row()).posted, { timeout: 5_000 }).toBe(true);
  // Positive signal first: the schedule has finished five more checks since the post was stored.
  const checked = gw.digest!.checks;
  await expect.poll(() => gw.digest!.checks, { timeout: 10_000 }).toBeGreaterThanOrEqual(checked + 5);
  expect(await row()).toEqual({ n: 1, week, keyId: "gateway-digest", posted: true });
  expect(slack.callsOf("chat.postMessage").filter((c) => c.args.channel === "CMANAGERS")).toHaveLength(1);
  expect(slack.files.filter((f) => f.completed && f.channel === "CMANAGERS")).toHaveLength(1);
});
