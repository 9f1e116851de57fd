// Concurrency: many writers, racing sealers and two real gateway processes still produce one
// valid, gap-free chain in which every recorded row is sealed exactly once.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type pg from "pg";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { Recorder } from "../../gateway/audit/recorder.js";
import { closeChainClient, connectChainClient } from "../../gateway/store/chain/pg.js";
import { sealBatch, Sealer } from "../../gateway/audit/chain/sealer.js";
import { verifyChain } from "../../gateway/audit/chain/verify.js";
import { createDb, type Db } from "../../gateway/store/client.js";
import { createLogger } from "../../gateway/log.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { killGateway, loggingConnection, startGatewayProcess, writeGatewayConfig, type GatewayProcess } from "../helpers/process.js";
import { insertMessage, resetAudit, waitFor } from "./lib.js";

let db: TestDatabase;
let client: pg.Client;
const quiet = createLogger("silent");
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  db = await createTestDatabase();
  client = await connectChainClient(db.url);
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});
afterAll(async () => {
  await closeChainClient(client);
  await db?.drop();
});


/** The chain covers every audit row, each exactly once, with sequence numbers 1..n. */
async function expectCompleteChain(): Promise<number> {
  const counts = await client.query<{ rows: string; entries: string; distinct_refs: string; min: string; max: string; queued: string }>(`
    SELECT (SELECT count(*) FROM messages) + (SELECT count(*) FROM events) + (SELECT count(*) FROM sessions)
             + (SELECT count(*) FROM approval_requests) + (SELECT count(*) FROM approval_votes) AS rows,
           (SELECT count(*) FROM audit_chain) AS entries,
           (SELECT count(DISTINCT (source, "sourceId")) FROM audit_chain) AS distinct_refs,
           (SELECT min(seq) FROM audit_chain) AS min, (SELECT max(seq) FROM audit_chain) AS max,
           (SELECT count(*) FROM audit_unsealed) AS queued`);
  const c = counts.rows[0]!;
  expect(Number(c.queued)).toBe(0);
  expect(Number(c.entries)).toBe(Number(c.rows));
  expect(Number(c.distinct_refs)).toBe(Number(c.rows));
  expect(Number(c.min)).toBe(1);
  expect(Number(c.max)).toBe(Number(c.rows));
  const r = await verifyChain(client, { keys: new Map() });
  expect(r.problems).toEqual([]);
  expect(r.range?.records).toBe(Number(c.rows));
  return Number(c.rows);
}

it("parallel writers through two recorders, two sealers and an on-demand sealer racing: every row sealed once, no gaps", async () => {
  await resetAudit(client);
  const dbs: Db[] = [createDb(db.url), createDb(db.url)];
  cleanups.push(...dbs.map((d) => () => d.$disconnect()));
  const recorders = dbs.map((d) => new Recorder(d, { commitTimeoutMs: 10_000, maxBatch: 50 }));
  const sealers = [0, 1].map(() => new Sealer(db.url, { intervalMs: 5, leaderRetryMs: 20, batchSize: 64, log: quiet }));
  cleanups.push(...sealers.map((s) => () => s.stop()));
  for (const s of sealers) s.start();

  // A third appender outside the leader election, as `countersign checkpoint` is.
  let racing = true;
  const racer = await connectChainClient(db.url);
  cleanups.push(() => closeChainClient(racer));
  const racerLoop = (async () => {
    while (racing) await sealBatch(racer, 7);
  })();

  const writer = async (w: number) => {
    const rec = recorders[w % 2]!;
    for (let i = 0; i < 60; i++) {
      const at = new Date();
      await Promise.all([
        rec.message({ sessionId: null, connection: "c", direction: "in", origin: "client", kind: "request", jsonrpcId: String(i), method: "tools/call", size: 2, payload: { w, i }, subject: null, at }),
        i % 3 === 0 ? rec.event({ type: "policy_decision", reason: "allow", detail: { w, i } }) : Promise.resolve(),
      ]);
      if (i === 30 && w === 0) {
        // Halfway, the leader goes away; the other sealer must take over.
        const leader = await waitFor("a leader", async () => sealers.find((s) => s.status.leader));
        await leader.stop();
        const other = sealers.find((s) => s !== leader)!;
        await waitFor("the other sealer to take over", async () => other.status.leader);
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, (_, w) => writer(w)));
  await waitFor("every row sealed", async () => Number((await client.query(`SELECT count(*) AS n FROM audit_unsealed`)).rows[0].n) === 0);
  racing = false;
  await racerLoop;
  const total = await expectCompleteChain();
  expect(total).toBe(8 * 60 + 8 * 20);
  expect(sealers.filter((s) => s.status.sealedRows > 0).length).toBe(2);
}, 60_000);

it("a row that commits late with a smaller id is sealed after the rows that committed before it, never skipped", async () => {
  await resetAudit(client);
  const slow = await connectChainClient(db.url);
  cleanups.push(() => closeChainClient(slow));
  await slow.query("BEGIN");
  const early = await insertMessage(slow, { n: "takes its id first, commits last" });
  const late = await insertMessage(client, { n: "takes its id second, commits first" });
  expect(Number(early)).toBeLessThan(Number(late));
  expect(await sealBatch(client)).toBe(1);
  await slow.query("COMMIT");
  expect(await sealBatch(client)).toBe(1);
  const order = await client.query<{ sourceId: string }>(`SELECT "sourceId" FROM audit_chain ORDER BY audit_chain.seq`);
  expect(order.rows.map((r) => r.sourceId)).toEqual([late, early]);
  await expectCompleteChain();
});

it("two gateway processes on one database: one seals; when it is killed the other takes over", async () => {
  await resetAudit(client);
  const dir = mkdtempSync(join(tmpdir(), "cs-chain-"));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const config = writeGatewayConfig(join(dir, "gw.yaml"), { audit: { sealIntervalMs: 50 }, connections: [loggingConnection("log", join(dir, "upstream.log"))] });
  const gateways: GatewayProcess[] = [];
  cleanups.push(async () => Promise.all(gateways.map((g) => killGateway(g))));
  for (let i = 0; i < 2; i++) gateways.push(await startGatewayProcess(config, db.url));

  const leaderPid = async () => {
    const res = await client.query<{ application_name: string }>(
      `SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE 'countersign-sealer%'
         AND a.datname = current_database()`, // other test files' gateways seal their own databases
    );
    const name = res.rows[0]?.application_name;
    return name ? Number(/pid=(\d+)/.exec(name)![1]) : undefined;
  };
  const calls = async (gw: GatewayProcess, n: number) => {
    const c = new Client({ name: "chain-test", version: "1" });
    await c.connect(new StreamableHTTPClientTransport(new URL(gw.mcpUrl("log"))));
    for (let i = 0; i < n; i++) await c.callTool({ name: "echo", arguments: { message: `m${i}` } });
    await c.close();
  };
  await Promise.all(gateways.map((g) => calls(g, 10)));
  const first = await waitFor("a sealer", leaderPid);
  const leader = gateways.find((g) => g.pid === first)!;
  const survivor = gateways.find((g) => g !== leader)!;
  expect(leader).toBeDefined();

  await killGateway(leader);
  await calls(survivor, 10);
  expect(await waitFor("the surviving gateway to take over sealing", async () => (await leaderPid()) === survivor.pid)).toBe(true);
  await waitFor("every row sealed", async () => Number((await client.query(`SELECT count(*) AS n FROM audit_unsealed`)).rows[0].n) === 0);
  await expectCompleteChain();
}, 60_000);
