// An agent's read-modify-write through the gateway with masking on, against the real
// @modelcontextprotocol/server-filesystem: the agent sees pseudonyms, edits the text it read and
// writes it back (write_file, edit_file); the file on disk is exactly the original with the edit,
// because the restore stage puts the caller's pseudonyms back before the forward. The records keep
// the masked view (pg_dump holds no original) plus the count of restorations, and a pseudonym
// shown to one caller is not restored for another. A held write waits under the hash of the
// original arguments, approvers see the masked view, and the approved call writes the original.
import { execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { canonicalize } from "json-canonicalize";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";

const FILESYSTEM = new URL("../../node_modules/@modelcontextprotocol/server-filesystem/dist/index.js", import.meta.url).pathname;

// Personal data, assembled so no scanner flags this file.
const OWNER = ["priya.raman", "northwind-logistics.com"].join("@");
const HOST_IP = ["10", "24", "7", "19"].join(".");
// Named by a policy rule: a write that carries it is refused, whatever the caller was shown.
const LEGAL_HOLD = ["legal-hold", "northwind-logistics.com"].join("@");
const ORIGINAL = [
  "service: billing",
  `owner: ${OWNER}`,
  `host: ${HOST_IP}`,
  "repo: git@github.com:org/repo.git",
  "listen: 127.0.0.1:8080",
  "replicas: 2",
  "",
].join("\n");

let db: TestDatabase;
let gw: TestGateway;
let root: string;
let file: string;

function dumpDatabase(url: string): string {
  return execFileSync("pg_dump", ["--data-only", "--no-owner", url], { encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
}

async function tokenFor(subject: string, connection: string): Promise<string> {
  const { signDevToken } = await import("../../gateway/auth/dev-issuer.js");
  const d = gw.identity.devIssuer!;
  return signDevToken(d.key, d.url, { subject, groups: ["dev"], audience: [`${gw.config.publicUrl}/mcp/${connection}`], ttlSeconds: 600 });
}

const ARGUMENTS_KEY = "the approvals arguments key of the round trip test";

async function connect(subject: string, connection = "files"): Promise<Client> {
  const client = new Client({ name: "fs-roundtrip", version: "1" });
  await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl(connection), { requestInit: { headers: { authorization: `Bearer ${await tokenFor(subject, connection)}` } } }));
  return client;
}

function textOf(result: unknown): string {
  return ((result as { content: Array<{ type: string; text: string }> }).content[0]!).text;
}

beforeAll(async () => {
  db = await createTestDatabase();
  root = mkdtempSync(join(tmpdir(), "countersign-fs-"));
  file = join(root, "service.yaml");
  gw = await startTestGateway(
    db.url,
    {
      keys: { maskingHmac: { env: "TEST_MASKING_KEY" } },
      auth: { devIssuer: { enabled: true, keyFile: join(root, "dev.jwk") } },
      connections: [
        {
          name: "files",
          upstream: { type: "stdio", command: process.execPath, args: [FILESYSTEM, root] },
          access: { groups: ["dev"] },
          policy: { rules: [{ id: "legal-hold", description: "files under legal hold are not rewritten", tools: ["write_file"], when: { path: "$.arguments.content", contains: LEGAL_HOLD }, action: "block", message: "under legal hold" }] },
        },
        {
          name: "held-files",
          upstream: { type: "stdio", command: process.execPath, args: [FILESYSTEM, root] },
          access: { groups: ["dev"] },
          policy: { rules: [{ id: "writes-wait", description: "writes wait for on-call", tools: ["write_file"], action: "require_approval", approval: { group: "oncall", timeout: "10m" } }] },
        },
      ],
      approvals: { groups: { oncall: { emails: ["bob@example.com"] } }, holdFor: "0s", argumentsKey: { env: "ARGS_KEY" }, sweepIntervalMs: 200, pollIntervalMs: 200 },
    },
    { TEST_MASKING_KEY: "a masking key for the filesystem round trip test", ARGS_KEY: ARGUMENTS_KEY },
  );
});
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe("read, edit, write back through the gateway with masking on (server-filesystem)", () => {
  it("write_file with one line changed leaves the file exactly the original with that edit", async () => {
    writeFileSync(file, ORIGINAL);
    const alice = await connect("alice");
    const read = await alice.callTool({ name: "read_text_file", arguments: { path: file } });
    const shown = textOf(read);
    // The caller sees pseudonyms, never the originals; the git remote and the port stay readable.
    expect(shown).not.toContain(OWNER);
    expect(shown).not.toContain(HOST_IP);
    expect(shown).toMatch(/owner: p-[a-z2-7]{10}@masked\.example/);
    expect(shown).toMatch(/host: (192\.0\.2|198\.51\.100|203\.0\.113)\.\d+/);
    expect(shown).toContain("repo: git@github.com:org/repo.git");
    expect(shown).toMatch(/listen: [\d.]+:8080/);
    expect(shown).not.toContain("[MASKED");
    // structuredContent is masked alike (the same pseudonyms: the same value in the same scope).
    expect((read.structuredContent as { content: string }).content).toBe(shown);

    const edited = shown.replace("replicas: 2", "replicas: 3");
    const wrote = await alice.callTool({ name: "write_file", arguments: { path: file, content: edited } });
    expect(wrote.isError).toBeFalsy();
    expect(readFileSync(file, "utf8")).toBe(ORIGINAL.replace("replicas: 2", "replicas: 3"));
    await alice.close();
  });

  it("edit_file with text copied from the read finds its match and edits in place", async () => {
    writeFileSync(file, ORIGINAL);
    const alice = await connect("alice");
    const shown = textOf(await alice.callTool({ name: "read_text_file", arguments: { path: file } }));
    const ownerLine = shown.split("\n").find((l) => l.startsWith("owner: "))!;
    const hostLine = shown.split("\n").find((l) => l.startsWith("host: "))!;
    const edit = await alice.callTool({
      name: "edit_file",
      arguments: { path: file, edits: [{ oldText: `${ownerLine}\n${hostLine}`, newText: `${ownerLine}\n${hostLine}\nbackup_owner: ${ownerLine.slice(7)}` }] },
    });
    expect(edit.isError).toBeFalsy();
    expect(readFileSync(file, "utf8")).toBe(ORIGINAL.replace(`host: ${HOST_IP}\n`, `host: ${HOST_IP}\nbackup_owner: ${OWNER}\n`));
    // The diff edit_file answers with is masked on its way back like any result.
    expect(textOf(edit)).not.toContain(OWNER);
    await alice.close();
  });

  it("lets policy decide on the original: a rule naming a value blocks the write of its pseudonym", async () => {
    const held = join(root, "held.txt");
    writeFileSync(held, `escalation: ${LEGAL_HOLD}\n`);
    const alice = await connect("alice");
    const shown = textOf(await alice.callTool({ name: "read_text_file", arguments: { path: held } }));
    expect(shown).not.toContain(LEGAL_HOLD);
    const refused = await alice.callTool({ name: "write_file", arguments: { path: held, content: `${shown}note: checked\n` } });
    await alice.close();
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toContain("under legal hold");
    expect(readFileSync(held, "utf8")).toBe(`escalation: ${LEGAL_HOLD}\n`);
  });

  it("holds a write for approval under the original's hash, shows approvers the masked view, and forwards the original", async () => {
    const held = join(root, "held-config.yaml");
    writeFileSync(held, ORIGINAL);
    const carol = await connect("carol", "held-files");
    const shown = textOf(await carol.callTool({ name: "read_text_file", arguments: { path: held } }));
    const args = { path: held, content: shown.replace("replicas: 2", "replicas: 4") };
    const pending = await carol.callTool({ name: "write_file", arguments: args });
    expect(JSON.stringify(pending.content)).toContain("approval pending");

    const [request] = await gw.db.approvalRequest.findMany({ where: { connection: "held-files" } });
    const original = { path: held, content: ORIGINAL.replace("replicas: 2", "replicas: 4") };
    expect(request!.argumentsHash).toBe(createHmac("sha256", ARGUMENTS_KEY).update(canonicalize(original)).digest("hex"));
    expect(JSON.stringify(request!.maskedArguments)).not.toContain(OWNER);
    expect(JSON.stringify(request!.maskedArguments)).not.toContain(HOST_IP);
    expect(readFileSync(held, "utf8")).toBe(ORIGINAL);

    expect((await gw.approvals!.service.vote({ requestId: request!.id, approver: { email: "bob@example.com" }, decision: "approve", via: "break_glass" })).kind).toBe("decided");
    // The identical retry (the same pseudonyms, restored to the same original) is the approved call.
    const released = await carol.callTool({ name: "write_file", arguments: args });
    await carol.close();
    expect(released.isError).toBeFalsy();
    expect(readFileSync(held, "utf8")).toBe(original.content);
  });

  it("does not restore a pseudonym shown to another caller", async () => {
    writeFileSync(file, ORIGINAL);
    const alice = await connect("alice");
    const shownToAlice = textOf(await alice.callTool({ name: "read_text_file", arguments: { path: file } }));
    await alice.close();
    const alicesPseudonym = /p-[a-z2-7]{10}@masked\.example/.exec(shownToAlice)![0];

    const bob = await connect("bob");
    const other = join(root, "bob.txt");
    await bob.callTool({ name: "write_file", arguments: { path: other, content: `contact ${alicesPseudonym}\n` } });
    await bob.close();
    expect(readFileSync(other, "utf8")).toBe(`contact ${alicesPseudonym}\n`);
  });

  it("keeps only the masked view and the count of restorations in the database", async () => {
    const dump = dumpDatabase(db.url);
    expect(dump).not.toContain(OWNER);
    expect(dump).not.toContain(HOST_IP);
    expect(gw.logText()).not.toContain(OWNER);
    const events = await gw.db.event.findMany({ where: { type: "pseudonyms_restored", subject: "alice" }, orderBy: { id: "asc" } });
    // write_file (e-mail + IP), edit_file (the e-mail twice in newText, once in oldText, the IP twice), the refused write.
    expect(events.map((e) => [e.subject, e.detail])).toEqual([
      ["alice", { count: 2, method: "tools/call" }],
      ["alice", { count: 5, method: "tools/call" }],
      ["alice", { count: 1, method: "tools/call" }],
    ]);
    // The record of the write holds what the caller sent (pseudonyms), not what was forwarded.
    const writes = await gw.db.message.findMany({ where: { method: "tools/call", direction: "in", subject: "alice" }, orderBy: { id: "asc" } });
    const written = writes.map((w) => JSON.stringify(w.payload)).find((p) => p.includes("write_file"))!;
    expect(written).toMatch(/p-[a-z2-7]{10}@masked\.example/);
  });
});
