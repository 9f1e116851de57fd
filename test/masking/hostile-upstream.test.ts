// Masking against a hostile stdio upstream, through a real gateway and the SDK's client:
// protocol fields arrive byte-identical (progress still matches its call), a credential
// smuggled in one fails that call closed, and a message nested too deep fails that call only:
// the gateway and every other session keep working. Checked in the caller's view, the database
// (pg_dump) and the gateway's log.
import { execFileSync } from "node:child_process";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpError, ProgressNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";

export const HOSTILE_SERVER = new URL("./fixtures/hostile-server.mjs", import.meta.url).pathname;
const GITHUB = ["ghp_", "Q7mZ2xLq9TzW4nK7yH3mP6sD1fG5jC0aE2uI"].join("");

let db: TestDatabase;
let gw: TestGateway;

const dump = () => execFileSync("pg_dump", ["--data-only", "--no-owner", db.url], { encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });

async function connect(): Promise<Client> {
  const client = new Client({ name: "hostile-test", version: "1" });
  await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl("hostile")));
  return client;
}

beforeAll(async () => {
  process.env.COUNTERSIGN_TEST_LOG = "trace";
  db = await createTestDatabase();
  gw = await startTestGateway(db.url, {
    connections: [{ name: "hostile", upstream: { type: "stdio", command: process.execPath, args: [HOSTILE_SERVER] } }],
  });
});
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
});

describe("protocol fields through the gateway", () => {
  it("delivers progress matched to its call (the progress token is not masked)", async () => {
    const client = await connect();
    const seen: number[] = [];
    const result = await client.callTool({ name: "progress", arguments: { steps: 3 } }, undefined, { onprogress: (p) => seen.push(p.progress) });
    await client.close();
    expect((result.content as Array<{ text: string }>)[0]!.text).toBe("done");
    expect(seen).toEqual([1, 2, 3]);
    const rows = await gw.db.message.findMany({ where: { method: "notifications/progress" } });
    expect(rows).toHaveLength(3);
    for (const r of rows) expect(JSON.stringify(r.payload)).not.toContain("MASKED");
  });

  it("passes a string progress token byte-identical, though its name ends in 'token'", async () => {
    // Clients that pick their own tokens (the conformance suite does) send strings.
    const client = await connect();
    const tokens: unknown[] = [];
    client.setNotificationHandler(ProgressNotificationSchema, (n) => {
      tokens.push(n.params.progressToken);
    });
    await client.callTool({ name: "progress", arguments: { steps: 2 }, _meta: { progressToken: "upload-token-7f3a" } });
    await vi.waitFor(() => expect(tokens).toHaveLength(2));
    await client.close();
    expect(tokens).toEqual(["upload-token-7f3a", "upload-token-7f3a"]);
  });

  it("fails a call closed when the upstream smuggles a credential in a protocol field", async () => {
    const client = await connect();
    const call = client.callTool({
      name: "raw",
      arguments: { result: { content: [{ type: "text", text: "page 1" }], _meta: { "io.modelcontextprotocol/related-task": { taskId: GITHUB } } } },
    });
    const err = await call.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(McpError);
    expect((err as McpError).code).toBe(-32081);
    expect(JSON.stringify((err as McpError).data)).toContain("CS_ERR_SECRET_IN_PROTOCOL_FIELD");
    // The same session goes on working.
    expect((await client.callTool({ name: "echo", arguments: { message: "still here" } })).content).toEqual([{ type: "text", text: "Echo: still here" }]);
    await client.close();
    // Recorded: the refusal stands in the record where the answer would be; the credential is nowhere.
    const out = await gw.db.message.findMany({ where: { direction: "out", method: "tools/call" }, orderBy: { id: "asc" } });
    expect(out.some((r) => JSON.stringify(r.payload).includes("CS_ERR_SECRET_IN_PROTOCOL_FIELD"))).toBe(true);
    expect(dump()).not.toContain(GITHUB.slice(4));
    expect(gw.logText()).not.toContain(GITHUB.slice(4));
  });
});

describe("bounded depth through the gateway", () => {
  it("fails only the call whose answer is nested 3,000 levels deep; the gateway and other sessions keep working", async () => {
    const [victim, bystander] = await Promise.all([connect(), connect()]);
    const err = await victim.callTool({ name: "deep", arguments: { depth: 3000 } }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(McpError);
    expect((err as McpError).code).toBe(-32080);
    expect(JSON.stringify((err as McpError).data)).toContain("CS_ERR_MESSAGE_TOO_COMPLEX");
    // Everyone else, and the victim's own session, carry on.
    const [a, b] = await Promise.all([
      bystander.callTool({ name: "echo", arguments: { message: "bystander" } }),
      victim.callTool({ name: "echo", arguments: { message: "victim again" } }),
    ]);
    expect(a.content).toEqual([{ type: "text", text: "Echo: bystander" }]);
    expect(b.content).toEqual([{ type: "text", text: "Echo: victim again" }]);
    const fresh = await connect();
    expect((await fresh.callTool({ name: "echo", arguments: { message: "new" } })).content).toEqual([{ type: "text", text: "Echo: new" }]);
    await Promise.all([victim.close(), bystander.close(), fresh.close()]);
    const rows = await gw.db.message.findMany({ where: { direction: "out", method: "tools/call" } });
    expect(rows.filter((r) => JSON.stringify(r.payload).includes("CS_ERR_MESSAGE_TOO_COMPLEX"))).toHaveLength(1);
  });
});

describe("pseudonyms keep typed results valid", () => {
  it("a tool's outputSchema (an e-mail and an IPv4 pattern) still validates in the SDK client", async () => {
    const client = await connect();
    await client.listTools(); // the client learns the output schemas, and validates against them
    const email = ["mira.santos", "client-corp.com"].join("@");
    const result = await client.callTool({ name: "contact", arguments: { email, ip: "10.44.3.7" } });
    const again = await client.callTool({ name: "contact", arguments: { email, ip: "10.44.3.7" } });
    await client.close();
    const sc = result.structuredContent as { email: string; ip: string };
    expect(sc.email).toMatch(/^p-[a-z2-7]{10}@masked\.example$/);
    expect(sc.ip).toMatch(/^(192\.0\.2|198\.51\.100|203\.0\.113)\.\d{1,3}$/);
    // Deterministic: the agent can still compare and join.
    expect(again.structuredContent).toEqual(sc);
    expect(dump()).not.toContain(email);
  });
});

