// Posting the digest to the (fake) Slack managers' channel, and the schedule: a missed run is
// caught up at start, once; two replicas on one database post a week once.
import pg from "pg";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createSlackDigestPoster } from "../../bot/digest.js";
import type { SlackConfig } from "../../gateway/config/load.js";
import { Secret } from "../../gateway/config/secret.js";
import { generateDigest, postDigest, type DigestPoster } from "../../gateway/evidence/generate.js";
import { renderDigest } from "../../gateway/evidence/render.js";
import { DigestScheduler, type TickOutcome } from "../../gateway/evidence/scheduler.js";
import { createLogger } from "../../gateway/log.js";
import { keyMap, newKey } from "../chain/lib.js";
import { startFakeSlack, type FakeSlack } from "../helpers/fake-slack.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { SEED_WEEK, SEED_ZONE, seedWeek } from "./seed.js";

const BOT_TOKEN = "xoxb-digest-test";
const CHANNEL = "CMANAGERS";
const key = newKey("digest-test");
const verifiers = keyMap(key.verifier);
const log = createLogger("silent");

let slack: FakeSlack;
let db: TestDatabase;
let client: pg.Client;

function slackConfig(): SlackConfig {
  return { mode: "http", botToken: new Secret(BOT_TOKEN, "test"), signingSecret: new Secret("s", "test"), channel: "CAPPROVALS", apiUrl: slack.apiUrl, users: {}, postAttempts: 1 };
}

function poster(): DigestPoster {
  return createSlackDigestPoster(slackConfig(), CHANNEL, { retryConfig: { retries: 0 } });
}

type Section = { id: string; counts: Array<{ key: string; value: unknown }> };
const figure = (content: { sections: Section[] }, section: string, k: string) => content.sections.find((s) => s.id === section)!.counts.find((c) => c.key === k)!.value;

let pool: pg.Pool;
beforeAll(async () => {
  slack = await startFakeSlack({ botToken: BOT_TOKEN });
});
afterAll(async () => {
  await slack?.close();
});

beforeEach(async () => {
  slack.calls.length = 0;
  slack.files.length = 0;
  db = await createTestDatabase();
  client = new pg.Client({ connectionString: db.url });
  await client.connect();
  await client.query("SET TIME ZONE 'UTC'");
  await seedWeek(client, key.signer);
  pool = new pg.Pool({ connectionString: db.url, max: 2 });
});
afterEach(async () => {
  await client?.end();
  await pool?.end();
  await db?.drop();
});

describe("posting to the managers' channel", () => {
  it("posts the headline numbers and exceptions, and uploads the Markdown report into the thread", async () => {
    const { parseIsoWeek } = await import("../../gateway/evidence/week.js");
    const g = await generateDigest(client, { week: parseIsoWeek(SEED_WEEK, SEED_ZONE), trigger: "on_demand", signer: key.signer, verifiers });
    const res = await postDigest(client, poster(), g.stored, g.seal);

    const [msg] = slack.callsOf("chat.postMessage");
    expect(msg!.token).toBe(BOT_TOKEN);
    expect(msg!.args.channel).toBe(CHANNEL);
    expect(msg!.args.text).toBe("Weekly evidence digest 2026-W47: 5 exception(s)");
    const blocks = msg!.args.blocks as Array<{ type: string; text?: { text: string }; fields?: Array<{ text: string }>; elements?: Array<{ text: string }> }>;
    expect(blocks[0]).toEqual({ type: "header", text: { type: "plain_text", text: "Weekly evidence digest 2026-W47", emoji: true } });
    expect(blocks[1]!.text!.text).toBe("*2026-11-16 to 2026-11-22* (Europe/Paris) · :warning: *5 exception(s)* · chain verification: *passed*");
    expect(blocks[2]!.fields!.map((f) => f.text)).toEqual([
      ":warning: *CC6.1* Logical access\nExceptions",
      ":white_check_mark: *CC6.2 / CC6.3* Authorization and segregation of duties\nOK",
      ":warning: *CC7.2* Monitoring\nExceptions",
      ":warning: *Privacy / Confidentiality* Unmasked personal data under a role exemption\nExceptions",
      ":warning: *CC8.1* Change management\nExceptions",
      ":white_check_mark: *Integrity* Integrity of the record\nOK",
    ]);
    const headline = Object.fromEntries(blocks[3]!.fields!.map((f) => f.text.split("\n") as [string, string]));
    expect(headline).toEqual({
      "*Identities active*": "3",
      "*Authentication failures*": "51",
      "*Approval requests*": "5 (2 approved, 1 denied, 1 expired)",
      "*Time to decision*": "median 120 s, p95 282 s",
      "*Self-approvals granted*": "0",
      "*Calls blocked*": "4",
      "*Values masked*": "5",
      "*Unmasked deliveries*": "4",
      "*Configuration changes*": "2",
      [`*Audit entries sealed*`]: `${figure(g.content, "integrity", "entries")} (gaps: 0)`,
    });
    expect(blocks[4]!.text!.text).toContain("• CC7.2: Unusual volume: alice made 60 calls (trailing weekly median 9)");
    expect(blocks[4]!.text!.text).toContain("• Privacy / Confidentiality: carol received unmasked data 1 time(s) on postgres without stating a reason");
    expect(blocks[5]!.elements![0]!.text).toContain(`SHA-256 \`${g.seal.sha256}\` · signed with \`digest-test\``);
    // No thread is promised before the report is in it.
    expect(blocks[5]!.elements![0]!.text).toContain("The full report is being uploaded to this thread.");

    // Slack's upload flow: URL, bytes, completion into the message's thread; then the summary says where the report is.
    expect(slack.calls.map((c) => c.method)).toEqual(["chat.postMessage", "files.getUploadURLExternal", "files.completeUploadExternal", "chat.update"]);
    expect(JSON.stringify(slack.callsOf("chat.update")[0]!.args.blocks)).toContain("Full report in the thread (countersign-digest-2026-W47.md).");
    const [file] = slack.files;
    expect(file).toMatchObject({ filename: "countersign-digest-2026-W47.md", completed: true, channel: CHANNEL, threadTs: res.ts, title: "Weekly evidence digest 2026-W47" });
    const markdown = renderDigest(g.content, g.seal, "md");
    expect(file!.bytes!.toString("utf8")).toBe(markdown);
    expect(file!.length).toBe(Buffer.byteLength(markdown));
    expect(res.fileId).toBe(file!.id);

    const row = (await client.query(`SELECT "postedAt", "slackChannel", "slackTs", "slackFileId" FROM digests WHERE id = $1`, [g.stored.id])).rows[0];
    expect(row).toMatchObject({ slackChannel: CHANNEL, slackTs: res.ts, slackFileId: file!.id });
    expect(row.postedAt).toBeInstanceOf(Date);
    const ev = (await client.query(`SELECT reason, detail FROM events WHERE type = 'digest_posted'`)).rows;
    expect(ev).toEqual([{ reason: "posted", detail: { week: SEED_WEEK, digestId: g.stored.id, channel: CHANNEL, ts: res.ts, fileId: file!.id } }]);
  });

  it("a failed upload is reported as what it is, and the summary stops promising the thread", async () => {
    const { parseIsoWeek } = await import("../../gateway/evidence/week.js");
    const { DigestUploadError } = await import("../../gateway/evidence/generate.js");
    const g = await generateDigest(client, { week: parseIsoWeek(SEED_WEEK, SEED_ZONE), trigger: "on_demand", signer: key.signer, verifiers });
    slack.failNext("files.completeUploadExternal", 1, "file_uploads_disabled");
    const err = await postDigest(client, poster(), g.stored, g.seal).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DigestUploadError);
    expect((err as Error).message).toMatch(/^the digest of 2026-W47 was posted to C\w+, but its report could not be uploaded: .*file_uploads_disabled/);
    const update = slack.callsOf("chat.update").at(-1)!;
    const context = JSON.stringify(update.args.blocks);
    expect(context).toContain(":x: The full report could not be uploaded");
    expect(context).toContain("`countersign digest --week 2026-W47 --format html` prints it");
    expect(context).not.toContain("Full report in the thread");
    // Posted (the summary is there: not posted twice), and the failed upload recorded.
    expect((await client.query(`SELECT "postedAt" FROM digests WHERE id = $1`, [g.stored.id])).rows[0].postedAt).toBeInstanceOf(Date);
    const ev = (await client.query(`SELECT reason, detail->>'error' AS error FROM events WHERE type = 'digest_posted' AND detail->>'digestId' = $1 ORDER BY id`, [g.stored.id])).rows;
    expect(ev.map((e) => e.reason)).toEqual(["posted", "failed"]);
    expect(ev[1].error).toMatch(/^report upload failed: .*file_uploads_disabled/);
  });

  it("a failed post is recorded and leaves the digest unposted", async () => {
    const { parseIsoWeek } = await import("../../gateway/evidence/week.js");
    const g = await generateDigest(client, { week: parseIsoWeek(SEED_WEEK, SEED_ZONE), trigger: "on_demand", signer: key.signer, verifiers });
    slack.failNext("chat.postMessage", 1, "channel_not_found");
    await expect(postDigest(client, poster(), g.stored, g.seal)).rejects.toThrow(/channel_not_found/);
    const ev = (await client.query(`SELECT reason, detail->>'error' AS error FROM events WHERE type = 'digest_posted'`)).rows;
    expect(ev).toEqual([{ reason: "failed", error: expect.stringContaining("channel_not_found") }]);
    expect((await client.query(`SELECT "postedAt" FROM digests`)).rows[0].postedAt).toBeNull();
  });
});

describe("the schedule", () => {
  // Monday 09:00 Europe/Paris: the run of Monday 23 November covers 2026-W47.
  const schedule = { schedule: "0 9 * * 1", timeZone: SEED_ZONE, checkIntervalMs: 3_600_000 };
  const scheduler = (now: Date, p: DigestPoster | null = poster(), instanceId = "replica-a") =>
    new DigestScheduler({ databaseUrl: db.url, pool, ...schedule, signer: key.signer, verifiers, poster: p ?? undefined, log, instanceId, now: () => now });

  it("a run missed while the gateway was down is caught up at start, once", async () => {
    // Down from Sunday to Tuesday 10:00 Paris: the Monday 09:00 run never happened.
    const tuesday = new Date("2026-11-24T09:00:00Z");
    const a = scheduler(tuesday);
    expect(a.lastScheduledAt()?.toISOString()).toBe("2026-11-23T08:00:00.000Z");
    expect(await a.tick()).toBe("posted");
    expect(await a.tick()).toBe("done");
    await a.stop();
    // A restart (or another replica) finds the week posted.
    const b = scheduler(tuesday, poster(), "replica-b");
    expect(await b.tick()).toBe("done");
    await b.stop();

    expect(slack.callsOf("chat.postMessage")).toHaveLength(1);
    expect(slack.files.filter((f) => f.completed)).toHaveLength(1);
    const rows = (await client.query(`SELECT week, "timeZone", trigger, "generatedBy", content, "postedAt" FROM digests`)).rows;
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ week: SEED_WEEK, timeZone: SEED_ZONE, trigger: "scheduled", generatedBy: "replica-a" });
    expect(figure(rows[0].content, "cc6_1", "authFailures")).toBe(51);
    const gen = (await client.query(`SELECT reason FROM events WHERE type = 'digest_generated'`)).rows;
    expect(gen).toEqual([{ reason: "scheduled" }]);
  });

  it("weeks missed since the last posted one are all caught up, oldest first, so the series has no gap", async () => {
    // Posted on Tuesday 2026-11-10 (week 45); then down until Tuesday 2026-11-24: weeks 46 and 47 were missed.
    const before = scheduler(new Date("2026-11-10T09:00:00Z"));
    expect(await before.tick()).toBe("posted");
    await before.stop();
    const after = scheduler(new Date("2026-11-24T09:00:00Z"), poster(), "replica-b");
    expect(await after.tick()).toBe("posted");
    expect(await after.tick()).toBe("done");
    await after.stop();
    const rows = (await client.query(`SELECT week, "postedAt" FROM digests WHERE trigger = 'scheduled' ORDER BY id`)).rows;
    expect(rows.map((r) => r.week)).toEqual(["2026-W45", "2026-W46", SEED_WEEK]);
    expect(rows.every((r) => r.postedAt instanceof Date)).toBe(true);
    expect(slack.callsOf("chat.postMessage")).toHaveLength(3);
  });

  it("a stored but unposted scheduled digest is posted as stored, not generated again", async () => {
    const tuesday = new Date("2026-11-24T09:00:00Z");
    slack.failNext("chat.postMessage", 1, "internal_error");
    const a = scheduler(tuesday);
    expect(await a.tick()).toBe("failed");
    await a.stop();
    const b = scheduler(tuesday, poster(), "replica-b");
    expect(await b.tick()).toBe("posted");
    await b.stop();
    const rows = (await client.query(`SELECT trigger, "postedAt" IS NOT NULL AS posted FROM digests`)).rows;
    expect(rows).toEqual([{ trigger: "scheduled", posted: true }]);
    expect((await client.query(`SELECT reason FROM events WHERE type = 'digest_posted' ORDER BY id`)).rows.map((r) => r.reason)).toEqual(["failed", "posted"]);
  });

  it("two replicas on one database post the week once", async () => {
    const tuesday = new Date("2026-11-24T09:00:00Z");
    // Each replica's post takes a moment, so the two checks overlap.
    const slow = (): DigestPoster => {
      const p = poster();
      return { channel: p.channel, post: async (d) => (await new Promise((r) => setTimeout(r, 300)), p.post(d)) };
    };
    const a = scheduler(tuesday, slow(), "replica-a");
    const b = scheduler(tuesday, slow(), "replica-b");
    const outcomes: TickOutcome[] = [];
    for (let round = 0; round < 3; round++) outcomes.push(...(await Promise.all([a.tick(), b.tick()])));
    await Promise.all([a.stop(), b.stop()]);
    expect(outcomes.filter((o) => o === "posted")).toHaveLength(1);
    expect(outcomes.every((o) => ["posted", "locked", "done"].includes(o))).toBe(true);
    expect(slack.callsOf("chat.postMessage")).toHaveLength(1);
    expect((await client.query(`SELECT count(*)::int AS n FROM digests`)).rows[0].n).toBe(1);
  });

  it("without a channel the digest is generated and stored on schedule, not posted", async () => {
    const s = scheduler(new Date("2026-11-24T09:00:00Z"), null);
    expect(await s.tick()).toBe("generated");
    expect(await s.tick()).toBe("done");
    await s.stop();
    expect(slack.calls).toHaveLength(0);
    expect((await client.query(`SELECT trigger, "postedAt" FROM digests`)).rows).toEqual([{ trigger: "scheduled", postedAt: null }]);
  });
});
