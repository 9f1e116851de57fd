// `countersign digest` as a user runs it: on the seeded week, in each format, posted to the fake
// Slack, and refusing bad input with a clear message.
import { createPublicKey } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyDigestSignature } from "../../gateway/evidence/sign.js";
import { lastCompleteWeek } from "../../gateway/evidence/week.js";
import { newKey } from "../chain/lib.js";
import { runCli } from "../helpers/cli.js";
import { startFakeSlack, type FakeSlack } from "../helpers/fake-slack.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { SEED_ZONE, seedWeek } from "./seed.js";

const key = newKey("digest-cli");
let db: TestDatabase;
let slack: FakeSlack;
let scratch: string;
let plain: string;
let withSlack: string;
let env: Record<string, string>;

function writeConfig(name: string, extra: Record<string, unknown>): string {
  const file = join(scratch, name);
  writeFileSync(
    file,
    stringify({
      version: 1,
      connections: [{ name: "github", upstream: { type: "stdio", command: "node" }, access: { anonymous: true } }],
      audit: { checkpoint: { keys: [{ id: "digest-cli", privateKey: { env: "CHECKPOINT_KEY" } }] } },
      ...extra,
    }),
  );
  return file;
}

beforeAll(async () => {
  db = await createTestDatabase();
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  await client.query("SET TIME ZONE 'UTC'");
  await seedWeek(client, key.signer);
  await client.end();
  slack = await startFakeSlack({ botToken: "xoxb-cli" });
  scratch = mkdtempSync(join(tmpdir(), "cs-digest-"));
  plain = writeConfig("plain.yaml", { digest: { timeZone: SEED_ZONE } });
  withSlack = writeConfig("slack.yaml", {
    digest: { timeZone: SEED_ZONE, slackChannel: "CMANAGERS" },
    approvals: { slack: { botToken: { env: "SLACK_BOT_TOKEN" }, signingSecret: { env: "SLACK_SIGNING_SECRET" }, channel: "CAPPROVALS", apiUrl: slack.apiUrl } },
  });
  env = { DATABASE_URL: db.url, CHECKPOINT_KEY: key.pem, SLACK_BOT_TOKEN: "xoxb-cli", SLACK_SIGNING_SECRET: "secret" };
});

afterAll(async () => {
  await slack?.close();
  await db?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

const figure = (digest: { sections: Array<{ id: string; counts: Array<{ key: string; value: unknown }> }> }, s: string, k: string) =>
  digest.sections.find((x) => x.id === s)!.counts.find((c) => c.key === k)!.value;

describe("countersign digest", () => {
  it("--format json: the signed digest for machines; progress on stderr", async () => {
    const r = await runCli(["digest", "--week", "2026-W47", "--format", "json", "--config", plain], env);
    expect(r.stderr).toContain("digest 2026-W47 (2026-11-16 to 2026-11-22, Europe/Paris)");
    expect(r.stderr).toMatch(/digest #\d+ stored and recorded in \d+ ms: 5 exception\(s\), sha256 [0-9a-f]{16}…, signed with 'digest-cli'/);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.digest.week).toBe("2026-W47");
    expect(figure(out.digest, "cc6_1", "authFailures")).toBe(51);
    expect(figure(out.digest, "cc6_2", "p95SecondsToDecision")).toBe(282);
    expect(out.digest.generatedBy).toMatch(/^cli:/);
    expect(verifyDigestSignature(out.digest, out.signature, createPublicKey(key.publicPem))).toBe(true);
  });

  it("Markdown by default, HTML with --format html, to a file with --out", async () => {
    const md = await runCli(["digest", "--week", "2026-W47", "--config", plain], env);
    expect(md.code).toBe(0);
    expect(md.stdout).toMatch(/^# Countersign weekly evidence digest: 2026-W47/m);
    expect(md.stdout).toContain("| Authentication failures | 51 |");
    const file = join(scratch, "digest.html");
    const html = await runCli(["digest", "--week", "2026-W47", "--format", "html", "--out", file, "--config", plain], env);
    expect(html.code).toBe(0);
    expect(html.stdout).toBe("");
    expect(html.stderr).toContain(`written to ${file}`);
    expect(readFileSync(file, "utf8")).toContain("<td>bad_signature</td><td>41</td>");
  });

  it("without --week: the last complete week in the configured zone", async () => {
    const r = await runCli(["digest", "--format", "json", "--config", plain], env);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).digest.week).toBe(lastCompleteWeek(new Date(), SEED_ZONE).label);
  });

  it("--post: posts the summary and the report to the managers' channel", async () => {
    const r = await runCli(["digest", "--week", "2026-W47", "--post", "--config", withSlack], env);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/posted to CMANAGERS \(ts [\d.]+, file F\d+\)/);
    const [msg] = slack.callsOf("chat.postMessage");
    expect(msg!.args.channel).toBe("CMANAGERS");
    expect(slack.files).toHaveLength(1);
    expect(slack.files[0]!.bytes!.toString("utf8")).toBe(r.stdout);
  });

  it("--verify: a saved JSON digest verifies; a changed figure does not", async () => {
    const file = join(scratch, "digest.json");
    const saved = await runCli(["digest", "--week", "2026-W47", "--format", "json", "--out", file, "--config", plain], env);
    expect(saved.code).toBe(0);
    const ok = await runCli(["digest", "--verify", file, "--config", plain], { CHECKPOINT_KEY: key.pem });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^OK: digest 2026-W47 \(Europe\/Paris\), generated .*: sha256 [0-9a-f]{64}, signed with 'digest-cli'$/m);
    const json = JSON.parse(readFileSync(file, "utf8"));
    json.digest.sections[0].counts[2].value = 0;
    writeFileSync(file, JSON.stringify(json));
    const bad = await runCli(["digest", "--verify", file, "--config", plain], { CHECKPOINT_KEY: key.pem });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain("its content does not match its SHA-256 (changed after signing)");
  });

  it("refuses bad input with a clear message", async () => {
    const week = await runCli(["digest", "--week", "2026-W54", "--config", plain], env);
    expect(week.code).toBe(2);
    expect(week.stderr).toContain("countersign: --week: 2026 has weeks 01 to 53: '2026-W54' is not one of them");
    const shape = await runCli(["digest", "--week", "47", "--config", plain], env);
    expect(shape.stderr).toContain("is not an ISO week: write it as YYYY-Www, e.g. 2026-W47");
    const future = await runCli(["digest", "--week", "2099-W01", "--config", plain], env);
    expect(future.stderr).toContain("2099-W01 has not started yet");
    const format = await runCli(["digest", "--week", "2026-W47", "--format", "pdf", "--config", plain], env);
    expect(format.code).not.toBe(0);
    expect(format.stderr).toMatch(/argument 'pdf' is invalid. Allowed choices are md, html, json/);
    const post = await runCli(["digest", "--week", "2026-W47", "--post", "--config", plain], env);
    expect(post.code).toBe(2);
    expect(post.stderr).toContain("--post needs digest.slackChannel (the managers' channel) and approvals.slack");
  });
});
