// A real 2026-07-28 client (the SDK v2, pinned to the stateless revision) through the gateway to
// a 2025-era stdio server: discover, list, call, policy, masking, and what is on record.
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { everythingStdio, startTestGateway, type TestGateway } from "../helpers/gateway.js";

let db: TestDatabase;
let gw: TestGateway;

beforeAll(async () => {
  db = await createTestDatabase();
  gw = await startTestGateway(db.url, {
    connections: [
      {
        name: "everything",
        upstream: everythingStdio(),
        policy: { rules: [{ id: "no-shouting", description: "No shouting", tools: ["echo"], when: { path: "$.arguments.message", matches: "SHOUT" }, action: "block", message: "No shouting here." }] },
      },
    ],
  });
});
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
});

async function modernClient(name = "modern-client"): Promise<Client> {
  const client = new Client({ name, version: "2.4.0" }, { versionNegotiation: { mode: { pin: "2026-07-28" } } });
  await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl("everything")));
  return client;
}

it("discovers, lists and calls a legacy stdio server statelessly, and records each request with its caller", async () => {
  const client = await modernClient();
  expect(client.getServerVersion()?.name).toBeTruthy();
  const tools = await client.listTools();
  expect(tools.tools.map((t) => t.name)).toContain("echo");
  const result = await client.callTool({ name: "echo", arguments: { message: "hello 2026" } });
  expect(result.content).toEqual([{ type: "text", text: "Echo: hello 2026" }]);
  await client.close();

  // No session was opened by the client: the gateway's bridge session carries the records.
  const bridges = await gw.db.session.findMany({ where: { frontTransport: "stateless" } });
  expect(bridges).toHaveLength(1);
  const calls = await gw.db.message.findMany({ where: { method: "tools/call" }, orderBy: { id: "asc" } });
  expect(calls.map((r) => [r.direction, r.sessionId, r.subject])).toEqual([
    ["in", bridges[0]!.id, "anonymous"],
    ["out", bridges[0]!.id, "anonymous"],
  ]);
  expect(calls.every((r) => r.requestId)).toBe(true);
});
