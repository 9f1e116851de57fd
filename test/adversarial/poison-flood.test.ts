// One caller's unstorable text must not break recording for another. Caller A floods its session on
// one connection with notifications carrying NUL and lone surrogates (in params, in object keys,
// in the method name), as raw JSON escapes, while caller B makes 200 tool calls on another
// connection. Every one of B's calls succeeds and is recorded both ways; each of A's notifications
// is stored escaped and reads back exactly as sent (checked with SQL on the messages table); the
// store stays healthy and both callers can go on.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ESCAPED_PREFIX, restoreStored } from "../../gateway/audit/storable.js";
import { startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { rawInitialize, rawPost } from "../helpers/upstreams.js";

const SERVER = new URL("../fixtures/logging-server.mjs", import.meta.url).pathname;
const upstream = () => ({ type: "stdio", command: process.execPath, args: [SERVER] });
const FLOOD = 400;
const CALLS = 200;

let db: TestDatabase;
let gw: TestGateway;
let sql: pg.Client;

beforeAll(async () => {
  db = await createTestDatabase();
  gw = await startTestGateway(db.url, { connections: [{ name: "a", upstream: upstream() }, { name: "b", upstream: upstream() }] });
  sql = new pg.Client({ connectionString: db.url });
  await sql.connect();
});
afterAll(async () => {
  await sql?.end();
  await gw?.stop();
  await db?.drop();
});

/** The i-th poison notification, as raw JSON text (the escapes are what a hostile client sends). */
function poison(i: number): { text: string; sent: unknown } {
  const kinds = ["\\u0000", "\\ud800", "\\udfff", "a\\u0000\\ud83d", "\\udc00\\ud800", `${ESCAPED_PREFIX}\\u0000`];
  const bad = kinds[i % kinds.length]!;
  const text = `{"jsonrpc":"2.0","method":"notifications/poison${i % 3 === 0 ? "\\u0000" : ""}","params":{"i":${i},"v":"x${bad}y","k${bad}":[1,"${bad}"]}}`;
  return { text, sent: JSON.parse(text) };
}

it("a flood of NUL and lone surrogates on one connection fails none of another caller's 200 calls", async () => {
  const a = await rawInitialize(gw.mcpUrl("a"), "2025-06-18");
  const b = new Client({ name: "caller-b", version: "1" });
  await b.connect(new StreamableHTTPClientTransport(gw.mcpUrl("b")));
  const bSession = (b.transport as StreamableHTTPClientTransport).sessionId!;

  const flood = (async () => {
    const statuses: number[] = [];
    for (let i = 0; i < FLOOD; i += 8) {
      const burst = await Promise.all(Array.from({ length: Math.min(8, FLOOD - i) }, (_, j) => rawPost(gw.mcpUrl("a"), poison(i + j).text, a.headers)));
      statuses.push(...burst.map((r) => r.status));
    }
    return statuses;
  })();
  const calls = (async () => {
    const texts: string[] = [];
    for (let i = 0; i < CALLS; i++) {
      const r = (await b.callTool({ name: "echo", arguments: { message: `b-${i}` } })) as { content: Array<{ text: string }>; isError?: boolean };
      texts.push(r.isError ? `error: ${JSON.stringify(r.content)}` : r.content[0]!.text);
    }
    return texts;
  })();
  const [statuses, texts] = await Promise.all([flood, calls]);

  // B: every call answered, in order, none refused.
  expect(texts).toEqual(Array.from({ length: CALLS }, (_, i) => `Echo: b-${i}`));
  // A: every notification taken (202), none refused for its content.
  expect(statuses.filter((s) => s !== 202)).toEqual([]);
  expect(gw.recorder.status.healthy).toBe(true);

  // B's 200 requests and 200 responses are recorded.
  const bIn = await sql.query(`SELECT count(*)::int AS n FROM messages WHERE "sessionId" = $1 AND direction = 'in' AND method = 'tools/call'`, [bSession]);
  const bOut = await sql.query(
    `SELECT count(*)::int AS n FROM messages WHERE "sessionId" = $1 AND direction = 'out' AND kind = 'response'
       AND "jsonrpcId" IN (SELECT "jsonrpcId" FROM messages WHERE "sessionId" = $1 AND direction = 'in' AND method = 'tools/call')`,
    [bSession],
  );
  expect([bIn.rows[0].n, bOut.rows[0].n]).toEqual([CALLS, CALLS]);

  // A's rows: stored escaped (no NUL, no lone surrogate reached PostgreSQL), and lossless.
  const aRows = await sql.query(`SELECT method, payload FROM messages WHERE "sessionId" = $1 AND kind = 'notification' AND direction = 'in' AND payload->'params' ? 'i' ORDER BY (payload->'params'->>'i')::int`, [a.sessionId]);
  expect(aRows.rows).toHaveLength(FLOOD);
  for (const [i, row] of aRows.rows.entries()) {
    const sent = poison(i).sent as { method: string };
    expect(restoreStored(row.payload)).toEqual(sent);
    expect(restoreStored(row.method)).toBe(sent.method);
    expect(JSON.stringify(row.payload)).toContain(ESCAPED_PREFIX);
  }

  // Both callers carry on.
  expect(((await b.callTool({ name: "echo", arguments: { message: "after" } })) as { content: Array<{ text: string }> }).content[0]!.text).toBe("Echo: after");
  const ping = await rawPost(gw.mcpUrl("a"), JSON.stringify({ jsonrpc: "2.0", id: 99, method: "ping" }), a.headers);
  expect(ping.status).toBe(200);
  await b.close();
});
