// The audit chain's costs, measured on the real PostgreSQL the tests use:
//   1. sealer throughput: rows sealed per second from a backlog (hash + canonical JSON + append);
//   2. chain-append cost on the hot path: the Recorder's throughput and per-record commit latency
//      under concurrent load with the seal-queue trigger on (and a sealer running) versus off,
//      interleaved rounds, medians reported;
//   3. the window between commit and seal under that load (sealedAt - commit time);
//   4. verify throughput.
// Run: npm run bench:chain  (CHAIN_BENCH_ROWS, CHAIN_BENCH_ROUNDS to scale)
import { Recorder, type MessageRecord } from "../../gateway/audit/recorder.js";
import { closeChainClient, connectChainClient } from "../../gateway/store/chain/pg.js";
import { sealAll, Sealer } from "../../gateway/audit/chain/sealer.js";
import { verifyChain } from "../../gateway/audit/chain/verify.js";
import { createDb } from "../../gateway/store/client.js";
import { createLogger } from "../../gateway/log.js";
import setup from "../helpers/global-setup.js";
import { createTestDatabase } from "../helpers/postgres.js";
import { fmt2, LatencySamples, median, percentile } from "./lib.js";

const BACKLOG = Number(process.env.CHAIN_BENCH_ROWS ?? 20_000);
const ROUNDS = Number(process.env.CHAIN_BENCH_ROUNDS ?? 3);
const WRITERS = 32;
const PER_WRITER = 150;

// A tools/call-sized payload (~400 bytes of JSON).
const payload = (i: number) => ({
  jsonrpc: "2.0",
  id: i,
  method: "tools/call",
  params: { name: "query", arguments: { sql: `SELECT * FROM orders WHERE customer_id = ${i} AND status = 'open' ORDER BY created_at DESC LIMIT 50`, database: "analytics" }, _meta: { progressToken: i } },
});
const message = (i: number): MessageRecord => ({
  sessionId: null, connection: "bench", direction: "in", origin: "client", kind: "request", jsonrpcId: String(i),
  method: "tools/call", size: 400, payload: payload(i), subject: "bench@example.com", at: new Date(),
});

const quiet = createLogger("silent");
const stopSetup = await setup();
const tdb = await createTestDatabase();
const client = await connectChainClient(tdb.url);
const out = (line: string) => process.stdout.write(line + "\n");

try {
  out(`audit chain benchmark: PostgreSQL ${(await client.query("SHOW server_version")).rows[0].server_version}, ${ROUNDS} rounds, medians`);

  // 1. Sealer throughput from a backlog.
  const sealRates: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    await client.query(`TRUNCATE messages, events, audit_chain, audit_unsealed, audit_checkpoints RESTART IDENTITY`);
    await client.query(
      `INSERT INTO messages ("connection", "direction", "origin", "kind", "method", "size", "payload", "subject")
       SELECT 'bench', 'in', 'client', 'request', 'tools/call', 400, $1::jsonb || jsonb_build_object('id', g), 'bench@example.com' FROM generate_series(1, $2) g`,
      [JSON.stringify(payload(0)), BACKLOG],
    );
    const t0 = performance.now();
    const n = await sealAll(client, Number.POSITIVE_INFINITY, 1000);
    const s = (performance.now() - t0) / 1000;
    sealRates.push(n / s);
  }
  out(`1. sealer throughput (batches of 1000, ${BACKLOG} rows backlog): ${Math.round(median(sealRates))} rows/s  [rounds: ${sealRates.map((x) => Math.round(x)).join(", ")}]`);

  // 4. Verify throughput over that chain.
  const tv = performance.now();
  const v = await verifyChain(client, { keys: new Map() });
  const vs = (performance.now() - tv) / 1000;
  out(`4. verify throughput: ${Math.round((v.range?.records ?? 0) / vs)} records/s (${v.range?.records} records in ${vs.toFixed(2)} s, ok=${v.ok})`);

  // 2 + 3. The hot path with and without the trigger, interleaved.
  const db = createDb(tdb.url, { poolSize: 10 });
  type Mode = "off" | "trigger" | "on";
  const results: Record<Mode, { rate: number[]; p50: number[]; p99: number[]; sealP50: number[]; sealP99: number[] }> = {
    on: { rate: [], p50: [], p99: [], sealP50: [], sealP99: [] },
    trigger: { rate: [], p50: [], p99: [], sealP50: [], sealP99: [] },
    off: { rate: [], p50: [], p99: [], sealP50: [], sealP99: [] },
  };
  const orders: Mode[][] = [["on", "trigger", "off"], ["off", "on", "trigger"], ["trigger", "off", "on"]];
  for (let r = 0; r < ROUNDS; r++) {
    for (const mode of orders[r % orders.length]!) {
      await client.query(`TRUNCATE messages, events, audit_chain, audit_unsealed, audit_checkpoints RESTART IDENTITY`);
      await client.query(`ALTER TABLE messages ${mode === "off" ? "DISABLE" : "ENABLE"} TRIGGER messages_audit_enqueue`);
      const sealer = mode === "on" ? new Sealer(tdb.url, { intervalMs: 200, log: quiet }) : undefined;
      sealer?.start();
      const recorder = new Recorder(db, { commitTimeoutMs: 30_000 });
      const lat = new LatencySamples();
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: WRITERS }, async (_, w) => {
          for (let i = 0; i < PER_WRITER; i++) {
            const s = process.hrtime.bigint();
            await recorder.message(message(w * PER_WRITER + i));
            lat.add(process.hrtime.bigint() - s);
          }
        }),
      );
      const secs = (performance.now() - t0) / 1000;
      const sum = lat.summary();
      results[mode].rate.push((WRITERS * PER_WRITER) / secs);
      results[mode].p50.push(sum.p50);
      results[mode].p99.push(sum.p99);
      if (sealer) {
        // Wait for the tail, then read how long each row waited between commit and seal.
        for (;;) {
          const q = await client.query(`SELECT count(*)::int AS n FROM audit_unsealed`);
          if (q.rows[0].n === 0) break;
          await new Promise((res) => setTimeout(res, 20));
        }
        await sealer.stop();
        const waits = await client.query<{ ms: number }>(
          `SELECT extract(epoch FROM (c."sealedAt" - q.committed)) * 1000 AS ms
             FROM audit_chain c JOIN messages m ON c.source = 'messages' AND c."sourceId" = m.id::text
             CROSS JOIN LATERAL (SELECT m.at AS committed) q`,
        );
        const ms = Float64Array.from(waits.rows.map((x) => Number(x.ms))).sort();
        results.on.sealP50.push(percentile(ms, 50));
        results.on.sealP99.push(percentile(ms, 99));
      }
    }
  }
  await client.query(`ALTER TABLE messages ENABLE TRIGGER messages_audit_enqueue`);
  await db.$disconnect();
  const m = (xs: number[]) => median(xs);
  out(`2. hot path, ${WRITERS} concurrent writers x ${PER_WRITER} records through the Recorder (group commit):`);
  out(`   trigger off (no chain):          ${Math.round(m(results.off.rate))} records/s, commit p50 ${fmt2(m(results.off.p50))} ms, p99 ${fmt2(m(results.off.p99))} ms`);
  out(`   seal-queue trigger on, no sealer: ${Math.round(m(results.trigger.rate))} records/s, commit p50 ${fmt2(m(results.trigger.p50))} ms, p99 ${fmt2(m(results.trigger.p99))} ms`);
  out(`   trigger on + sealer running:     ${Math.round(m(results.on.rate))} records/s, commit p50 ${fmt2(m(results.on.p50))} ms, p99 ${fmt2(m(results.on.p99))} ms`);
  const cost = (x: Mode) => `${fmt2(((m(results.off.rate) - m(results[x].rate)) / m(results.off.rate)) * 100)}% throughput, ${fmt2(m(results[x].p50) - m(results.off.p50))} ms at p50`;
  out(`   chain-append cost on the hot path (trigger): ${cost("trigger")}; with the sealer sharing the machine: ${cost("on")}`);
  out(`3. window between record time and seal under that load (sealIntervalMs 200): p50 ${fmt2(m(results.on.sealP50))} ms, p99 ${fmt2(m(results.on.sealP99))} ms`);
} finally {
  await closeChainClient(client);
  await tdb.drop();
  await stopSetup();
}
