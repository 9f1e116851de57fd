import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "./helpers/postgres.js";
import { everythingStdio, startTestGateway, type TestGateway } from "./helpers/gateway.js";

let db: TestDatabase;
let gw: TestGateway;
beforeAll(async () => {
  db = await createTestDatabase();
  gw = await startTestGateway(db.url, { connections: [{ name: "everything", upstream: everythingStdio() }] });
});
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
});

it("echoes through the gateway and records both directions", async () => {
  const client = new Client({ name: "smoke", version: "1" });
  await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl("everything")));
  const result = await client.callTool({ name: "echo", arguments: { message: "hello" } });
  expect(result.content).toEqual([{ type: "text", text: "Echo: hello" }]);
  await client.close();
  const rows = await gw.db.message.findMany({ where: { method: "tools/call" }, orderBy: { id: "asc" } });
  expect(rows.map((r) => r.direction)).toEqual(["in", "out"]);
});
