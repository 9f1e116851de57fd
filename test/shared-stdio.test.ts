// A stdio server declared shareable (`upstream.shared: true`): one child process serves every
// session of the connection. Each caller must still see exactly its own answers, ids and progress,
// as with a child of its own; the child lives while a session uses it.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { parseConfigText } from "../gateway/config/load.js";
import { everythingStdio, startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "./helpers/postgres.js";
import { loggingServerStdio } from "./helpers/process.js";

let db: TestDatabase;
let gw: TestGateway;
let dir: string;
let logFile: string;

beforeAll(async () => {
  db = await createTestDatabase();
  dir = mkdtempSync(join(tmpdir(), "cs-shared-"));
  logFile = join(dir, "upstream.jsonl");
  gw = await startTestGateway(db.url, {
    connections: [
      { name: "logging", upstream: { ...loggingServerStdio(logFile), shared: true } },
      { name: "everything", upstream: everythingStdio({ shared: true }) },
    ],
  });
});
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

interface LogEntry {
  pid: number;
  started?: boolean;
  msg?: { id?: unknown; method?: string; params?: Record<string, unknown> };
}
const upstreamLog = (): LogEntry[] =>
  readFileSync(logFile, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as LogEntry);

async function connect(url: URL, name: string): Promise<Client> {
  const client = new Client({ name, version: "1" });
  await client.connect(new StreamableHTTPClientTransport(url));
  return client;
}

/** Ends the session at the gateway (DELETE), then the client. */
async function end(client: Client): Promise<void> {
  await (client.transport as StreamableHTTPClientTransport).terminateSession();
  await client.close();
}

it("serves several sessions from one child, each seeing its own answers under its own ids", async () => {
  const clients = await Promise.all([0, 1, 2, 3].map((n) => connect(gw.mcpUrl("logging"), `shared-${n}`)));
  // Every SDK client numbers its requests from 0: the same ids arrive from four sessions at once.
  const results = await Promise.all(
    clients.flatMap((c, n) => [0, 1, 2].map((k) => c.callTool({ name: "echo", arguments: { message: `c${n}-k${k}` } }))),
  );
  expect(results.map((r) => (r.content as Array<{ text: string }>)[0]!.text)).toEqual(
    [0, 1, 2, 3].flatMap((n) => [0, 1, 2].map((k) => `Echo: c${n}-k${k}`)),
  );

  const log = upstreamLog();
  expect(log.filter((e) => e.started)).toHaveLength(1); // one child process
  expect(log.filter((e) => e.msg?.method === "initialize")).toHaveLength(1); // initialized once, by the gateway
  // The child saw 12 distinct ids, none of them a client's id reused.
  const ids = log.filter((e) => e.msg?.method === "tools/call").map((e) => e.msg!.id);
  expect(new Set(ids).size).toBe(12);

  // Each session's record holds its own requests and answers, under the ids its client chose.
  const rows = await gw.db.message.findMany({ where: { method: "tools/call", direction: "out" } });
  expect(rows).toHaveLength(12);
  for (const r of rows) expect((r.payload as { id: unknown }).id).toBe(Number(r.jsonrpcId));
  const perSession = new Map<string | null, number>();
  for (const r of rows) perSession.set(r.sessionId, (perSession.get(r.sessionId) ?? 0) + 1);
  expect([...perSession.values()]).toEqual([3, 3, 3, 3]);

  // One session leaving does not end the child for the others.
  await end(clients[0]!);
  const after = await clients[1]!.callTool({ name: "echo", arguments: { message: "still here" } });
  expect((after.content as Array<{ text: string }>)[0]!.text).toBe("Echo: still here");
  for (const c of clients.slice(1)) await end(c);
});

it("routes progress to the session whose call it belongs to, under that client's token", async () => {
  const [a, b] = await Promise.all([connect(gw.mcpUrl("everything"), "progress-a"), connect(gw.mcpUrl("everything"), "progress-b")]);
  const seen = { a: [] as number[], b: [] as number[] };
  // Both clients use their request id as the progress token: the same token from two sessions.
  const call = (c: Client, into: number[]) =>
    c.callTool({ name: "trigger-long-running-operation", arguments: { duration: 0.4, steps: 4 } }, undefined, {
      onprogress: (p) => into.push(p.progress),
    });
  const [ra, rb] = await Promise.all([call(a, seen.a), call(b, seen.b)]);
  expect((ra.content as Array<{ text: string }>)[0]!.text).toContain("Steps: 4");
  expect((rb.content as Array<{ text: string }>)[0]!.text).toContain("Steps: 4");
  expect(seen).toEqual({ a: [1, 2, 3, 4], b: [1, 2, 3, 4] });
  await end(a);
  await end(b);
});

it("ends the child with the last session, and starts a new one for the next", async () => {
  const startedBefore = upstreamLog().filter((e) => e.started).map((e) => e.pid);
  const client = await connect(gw.mcpUrl("logging"), "late");
  await client.callTool({ name: "echo", arguments: { message: "late" } });
  const started = upstreamLog().filter((e) => e.started).map((e) => e.pid);
  // The first test's sessions all closed, so their child ended and this session got a new one.
  expect(started).toHaveLength(startedBefore.length + 1);
  const pid = started.at(-1)!;
  await end(client);
  await vi.waitFor(() => expect(() => process.kill(pid, 0)).toThrow(), { timeout: 10_000 });
});

it("refuses a shared child together with a per-caller upstream identity", () => {
  const yaml = `
version: 1
database: { url: { env: DB } }
connections:
  - name: shared
    access: { anonymous: true }
    upstream: { type: stdio, command: node, shared: true }
    upstreamIdentity: { headers: { subject: X-Subject } }
`;
  expect(() => parseConfigText(yaml, "shared.yaml", { DB: "postgresql://x@localhost/x" })).toThrow(/connections\[0\]\.upstream\.shared|connections\.0\.upstream\.shared/);
});
