// Hostile caller, policy by spelling, through a real gateway in front of a real server
// (server-everything behind a tap that logs every line the upstream receives). Generated
// spellings of a blocked resource URI and of a blocked tool name: each one is refused to the
// caller with the rule named, recorded as a block, and never reaches the upstream.
import { mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import fc from "fast-check";
import { afterAll, beforeAll, expect, it } from "vitest";
import { EVERYTHING, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { uriSpellings, nameSpellings } from "./spellings.js";

const TAP = new URL("../fixtures/tap-stdio.mjs", import.meta.url).pathname;
let db: TestDatabase;
let gw: TestGateway;
let scratch: string;
let tapLog: string;
let client: Client;
const received = () => (existsSync(tapLog) ? readFileSync(tapLog, "utf8") : "");

beforeAll(async () => {
  db = await createTestDatabase();
  scratch = mkdtempSync(join(tmpdir(), "cs-adversarial-"));
  tapLog = join(scratch, "received.log");
  gw = await startTestGateway(db.url, {
    connections: [
      {
        name: "demo",
        upstream: { type: "stdio", command: process.execPath, args: [TAP, process.execPath, EVERYTHING, "stdio"], env: { TAP_LOG: tapLog } },
        policy: {
          rules: [
            { id: "no-documents", description: "static documents stay private", resources: ["demo://resource/static/document/*"], action: "block" },
            { id: "no-echo", description: "echo is off", tools: ["echo"], action: "block" },
          ],
        },
      },
    ],
  });
  client = new Client({ name: "adversary", version: "1" });
  await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl("demo")));
});
afterAll(async () => {
  await client?.close().catch(() => {});
  await gw?.stop();
  await db?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

it("every generated spelling of a blocked URI or tool is refused, recorded, and never forwarded", async () => {
  // A fixed seed: the same hostile inputs on every run, many more than the four named ones.
  const uris = ["DEMO://resource/static/document/1", "demo://resource/static/x/../document/1", "demo://resource/static/./document/1", " demo://resource/static/document/1", ...fc.sample(uriSpellings, { numRuns: 24, seed: 13 })];
  const names = [" echo", "echo\n", "\techo ", ...fc.sample(nameSpellings("echo"), { numRuns: 9, seed: 13 })];
  for (const uri of uris) {
    const err = await client.readResource({ uri }).then(
      () => undefined,
      (e: { code?: number; message?: string; data?: { code?: string } }) => e,
    );
    expect(err, uri).toBeDefined();
    expect(err!.data?.code ?? err!.message, uri).toContain("CS_ERR_POLICY_BLOCKED");
  }
  for (const name of names) {
    const result = await client.callTool({ name, arguments: { message: "leak" } });
    expect(result.isError, JSON.stringify(name)).toBe(true);
    expect(JSON.stringify(result.content)).toContain("no-echo");
  }
  // The upstream saw neither a resources/read nor a tools/call.
  const lines = received().split("\n").filter(Boolean).map((l) => JSON.parse(l) as { method?: string });
  expect(lines.filter((m) => m.method === "resources/read" || m.method === "tools/call")).toEqual([]);
  // Each refusal is recorded as a block by its rule.
  const blocks = await gw.db.event.findMany({ where: { type: "policy_decision", reason: "block" } });
  const byRule = (id: string) => blocks.filter((b) => (b.detail as { ruleId?: string }).ruleId === id).length;
  expect(byRule("no-documents")).toBe(uris.length);
  expect(byRule("no-echo")).toBe(names.length);
});
