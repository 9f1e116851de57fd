// Connections per replica (README, "Connections per replica"): a running gateway with approvals,
// tool pins, the console and the digest schedule holds at most its two pools, one LISTEN
// connection, the sealer's and, while a digest is generated, that one; never one per check.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { everythingStdio, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";

const HOT = 2;
const BACKGROUND = 3;

let db: TestDatabase;
let gw: TestGateway;
let watcher: pg.Client;
let peak = 0;
let listens = 0;
let sampling: NodeJS.Timeout | undefined;

beforeAll(async () => {
  db = await createTestDatabase();
  watcher = new pg.Client({ connectionString: db.url, application_name: "connections-test" });
  await watcher.connect();
  gw = await startTestGateway(db.url, {
    database: { url: { env: "TEST_DATABASE_URL" }, migrateOnStart: false, hotPoolSize: HOT, backgroundPoolSize: BACKGROUND },
    approvals: { groups: { oncall: { emails: ["bob@example.com"] } }, holdFor: "30s", sweepIntervalMs: 100, pollIntervalMs: 100 },
    // A check every 50 ms: a connection per check would show at once.
    digest: { enabled: true, timeZone: "UTC", checkIntervalMs: 50 },
    connections: [{ name: "tools", upstream: everythingStdio() }],
  });
  const sample = async () => {
    const r = await watcher.query<{ n: number; listen: number }>(
      `SELECT count(*)::int AS n, count(*) FILTER (WHERE application_name = 'countersign-listen')::int AS listen
         FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
      [db.name],
    );
    peak = Math.max(peak, r.rows[0]!.n);
    listens = Math.max(listens, r.rows[0]!.listen);
  };
  const loop = () => void sample().finally(() => (sampling = setTimeout(loop, 10)));
  loop();
});
afterAll(async () => {
  if (sampling) clearTimeout(sampling);
  sampling = undefined;
  await gw?.stop();
  await watcher?.end();
  await db?.drop();
});

it("stays within its pools, one LISTEN connection, the sealer's and a digest's, under traffic", async () => {
  // The digest of the last complete week is generated at start (the catch-up); checks go on every 50 ms.
  await expect.poll(async () => (await watcher.query(`SELECT count(*)::int AS n FROM digests`)).rows[0].n, { timeout: 20_000 }).toBe(1);
  // Sessions and calls in parallel: records on the hot pool, session rows on the background pool.
  const clients = await Promise.all(
    Array.from({ length: 4 }, async (_, i) => {
      const c = new Client({ name: `connections-${i}`, version: "1" });
      await c.connect(new StreamableHTTPClientTransport(gw.mcpUrl("tools")));
      return c;
    }),
  );
  await Promise.all(clients.flatMap((c) => Array.from({ length: 10 }, (_, j) => c.callTool({ name: "echo", arguments: { message: `m${j}` } }))));
  await Promise.all(clients.map((c) => c.close()));
  console.log(`connections: peak ${peak} with hotPoolSize ${HOT}, backgroundPoolSize ${BACKGROUND} (bound ${HOT + BACKGROUND + 3}); LISTEN connections ${listens}`);
  expect(peak).toBeGreaterThan(HOT);
  expect(peak).toBeLessThanOrEqual(HOT + BACKGROUND + 1 /* LISTEN */ + 1 /* sealer */ + 1 /* digest generation */);
  expect(listens).toBe(1);
});
