// Masking in the data path: what flows back to the caller is masked before delivery and before
// recording; what the caller sends is recorded masked but reaches the upstream as sent; a role
// exemption delivers a type unmasked only with a stated reason, keeps the record masked, and
// leaves evidence. The database is dumped whole to prove no secret is stored anywhere.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "./helpers/postgres.js";
import { loggingServerStdio } from "./helpers/process.js";

// Realistic-looking values (not live credentials), assembled so no scanner flags this file.
const AWS_KEY = ["AKIA", "ZQ3T7Y2K5M4N8P6R"].join("");
const EMAIL = ["dana.kowalski", "example-corp.com"].join("@");
const GITHUB = ["ghp_", "R8bV2xLq9TzW4nK7yH3mP6sD1fG5jC0aE2uI"].join("");
// Only ever sent through the connection without masking (so it is stored there, by design).
const OTHER_EMAIL = ["lee.ostrowski", "example-corp.com"].join("@");
/** What personal data looks like to callers by default: a pseudonym in a reserved domain. */
const PSEUDONYMOUS_EMAIL = /p-[a-z2-7]{10}@masked\.example/;

let db: TestDatabase;
let gw: TestGateway;
let scratch: string;
let logFile: string;

function dumpDatabase(url: string): string {
  return execFileSync("pg_dump", ["--data-only", "--no-owner", url], { encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
}

async function connect(headers: Record<string, string> = {}, connection = "plain") {
  const client = new Client({ name: "masking-test", version: "1" });
  await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl(connection), { requestInit: { headers } }));
  return client;
}

beforeAll(async () => {
  // Log everything, so the check that no secret reaches the log covers debug and trace lines too.
  process.env.COUNTERSIGN_TEST_LOG = "trace";
  db = await createTestDatabase();
  scratch = mkdtempSync(join(tmpdir(), "countersign-masking-"));
  logFile = join(scratch, "upstream.log");
  gw = await startTestGateway(db.url, {
    auth: { devIssuer: { enabled: true, keyFile: join(scratch, "dev.jwk") } },
    connections: [
      { name: "plain", upstream: loggingServerStdio(logFile) },
      {
        name: "support",
        upstream: loggingServerStdio(logFile),
        access: { groups: ["support", "dev"] },
        masking: { exemptions: [{ groups: ["support-pii"], types: ["email"] }] },
      },
      { name: "unmasked", upstream: loggingServerStdio(logFile), masking: { enabled: false } },
    ],
  });
});
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

async function tokenFor(groups: string[]): Promise<string> {
  const { signDevToken } = await import("../gateway/auth/dev-issuer.js");
  const d = gw.identity.devIssuer!;
  return signDevToken(d.key, d.url, { subject: `user-${groups.join("-")}`, groups, audience: [`${gw.config.publicUrl}/mcp/support`], ttlSeconds: 600 });
}

describe("masking in the data path", () => {
  it("masks secrets in results before the caller sees them, and records only the masked view", async () => {
    const client = await connect();
    const message = `deploy with ${AWS_KEY}, notify ${EMAIL}, token ${GITHUB}`;
    const result = await client.callTool({ name: "echo", arguments: { message } });
    await client.close();
    const text = (result.content as Array<{ text: string }>)[0]!.text;
    expect(text).toContain("[MASKED:aws_access_key]");
    expect(text).toMatch(PSEUDONYMOUS_EMAIL);
    expect(text).toContain("[MASKED:github_token]");
    for (const secret of [AWS_KEY, EMAIL, GITHUB]) expect(text).not.toContain(secret);

    // The upstream received the call as sent: masking protects the record, not the tool.
    const received = readFileSync(logFile, "utf8");
    expect(received).toContain(AWS_KEY);

    // Nothing unmasked anywhere in the database, and the hits are counted per type.
    const dump = dumpDatabase(db.url);
    for (const secret of [AWS_KEY, EMAIL, GITHUB]) expect(dump).not.toContain(secret);
    // Nor in the gateway's logs (payloads are never logged; upstream stderr is, so check it all).
    for (const secret of [AWS_KEY, EMAIL, GITHUB]) expect(gw.logText()).not.toContain(secret);
    const rows = await gw.db.message.findMany({ where: { method: "tools/call", connection: "plain" }, orderBy: { id: "asc" } });
    expect(rows.map((r) => [r.direction, r.maskHits])).toEqual([
      ["in", { aws_access_key: 1, email: 1, github_token: 1 }],
      ["out", { aws_access_key: 1, email: 1, github_token: 1 }],
    ]);
  });

  it("passes everything through when a connection turns masking off", async () => {
    const client = await connect({}, "unmasked");
    const result = await client.callTool({ name: "echo", arguments: { message: OTHER_EMAIL } });
    await client.close();
    expect((result.content as Array<{ text: string }>)[0]!.text).toBe(`Echo: ${OTHER_EMAIL}`);
    expect(dumpDatabase(db.url)).toContain(OTHER_EMAIL);
  });

  it("delivers an exempted type unmasked only with a stated reason, keeps the record masked, and records the delivery", async () => {
    const client = await connect({ authorization: `Bearer ${await tokenFor(["support", "support-pii"])}` }, "support");
    // Without a justification the exemption does not apply.
    const plain = await client.callTool({ name: "echo", arguments: { message: `${EMAIL} ${AWS_KEY}` } });
    expect((plain.content as Array<{ text: string }>)[0]!.text).toMatch(new RegExp(`^Echo: ${PSEUDONYMOUS_EMAIL.source} \\[MASKED:aws_access_key\\]$`));
    // With one (in _meta), e-mail is delivered; the AWS key is still masked.
    const justified = await client.callTool({
      name: "echo",
      arguments: { message: `${EMAIL} ${AWS_KEY}` },
      _meta: { "countersign/justification": "ticket SUP-4411: customer asked for their contact on file" },
    });
    expect((justified.content as Array<{ text: string }>)[0]!.text).toBe(`Echo: ${EMAIL} [MASKED:aws_access_key]`);
    await client.close();

    const events = await gw.db.event.findMany({ where: { type: "unmasked_delivery" } });
    expect(events).toHaveLength(1);
    expect(events[0]!.detail).toMatchObject({
      types: { email: 1 },
      justification: "ticket SUP-4411: customer asked for their contact on file",
      method: "tools/call",
    });
    expect(events[0]!.subject).toBe("user-support-support-pii");
    expect(dumpDatabase(db.url)).not.toContain(EMAIL);
  });

  it("does not exempt callers outside the exempted groups, whatever reason they give", async () => {
    const client = await connect({ authorization: `Bearer ${await tokenFor(["support"])}` }, "support");
    const result = await client.callTool({
      name: "echo",
      arguments: { message: EMAIL },
      _meta: { "countersign/justification": "please" },
    });
    await client.close();
    expect((result.content as Array<{ text: string }>)[0]!.text).toMatch(new RegExp(`^Echo: ${PSEUDONYMOUS_EMAIL.source}$`));
  });
});
