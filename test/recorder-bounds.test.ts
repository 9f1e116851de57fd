// The recorder under a stalled database, at its queue bound, and with rows PostgreSQL refuses:
// every caller learns of an outage within the commit timeout (not one timeout per queued batch),
// a full queue refuses at once, and one poison row fails only its own caller.
import { createServer, connect, type Server, type Socket } from "node:net";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { Recorder, type MessageRecord } from "../gateway/audit/recorder.js";
import { hotPoolTimeouts } from "../gateway/store/pools.js";
import { restoreStored } from "../gateway/audit/storable.js";
import { CountersignError } from "../gateway/errors.js";
import { createTestDatabase, type TestDatabase } from "./helpers/postgres.js";

/** A TCP proxy to PostgreSQL that can stall: while stalled, bytes in both directions are held back. */
class StallingProxy {
  stalled = false;
  readonly #server: Server;
  readonly #pairs: Array<[Socket, Socket]> = [];
  constructor(target: { host: string; port: number }) {
    this.#server = createServer((client) => {
      const upstream = connect(target.port, target.host);
      this.#pairs.push([client, upstream]);
      const pipe = (from: Socket, to: Socket) => from.on("data", (chunk) => (this.stalled ? this.#held.push([to, chunk]) : to.write(chunk)));
      pipe(client, upstream);
      pipe(upstream, client);
      const end = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on("error", end).on("close", end);
      upstream.on("error", end).on("close", end);
    });
  }
  #held: Array<[Socket, Buffer]> = [];
  listen(): Promise<number> {
    return new Promise((r) => this.#server.listen(0, "127.0.0.1", () => r((this.#server.address() as { port: number }).port)));
  }
  resume(): void {
    this.stalled = false;
    for (const [to, chunk] of this.#held.splice(0)) to.write(chunk);
  }
  close(): Promise<void> {
    for (const [a, b] of this.#pairs) (a.destroy(), b.destroy());
    return new Promise((r) => this.#server.close(() => r()));
  }
}

let db: TestDatabase;
let proxy: StallingProxy;
let proxiedUrl: string;
const pools: pg.Pool[] = [];
const recorders: Recorder[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  const u = new URL(db.url);
  proxy = new StallingProxy({ host: u.hostname, port: Number(u.port || 5432) });
  u.port = String(await proxy.listen());
  proxiedUrl = u.toString();
});
afterAll(async () => {
  for (const r of recorders) r.close();
  proxy?.resume();
  await Promise.all(pools.map((p) => p.end().catch(() => {})));
  await proxy?.close();
  await db?.drop();
});

function recorderOn(url: string, opts: Partial<ConstructorParameters<typeof Recorder>[1]> & { commitTimeoutMs: number }) {
  // Pool settings as the gateway's (gateway/gateway.ts).
  const pool = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 3000, ...hotPoolTimeouts(opts.commitTimeoutMs) });
  pool.on("error", () => {});
  pools.push(pool);
  const recorder = new Recorder(pool, opts);
  recorders.push(recorder);
  return { pool, recorder };
}

const row = (n: number, extra: Partial<MessageRecord> = {}): MessageRecord => ({
  sessionId: null, connection: "c", direction: "in", origin: "client", kind: "notification", jsonrpcId: null,
  method: "notifications/message", size: 20, payload: { n }, subject: null, at: new Date(), ...extra,
});

/** Settles every promise, noting when each one settled (ms from `t0`) and how. */
async function timed(t0: number, ps: Array<Promise<void>>) {
  return Promise.all(ps.map((p) => p.then(() => ({ ok: true as const, ms: performance.now() - t0, err: undefined }), (err: unknown) => ({ ok: false as const, ms: performance.now() - t0, err: err as CountersignError }))));
}

it("a database stall: the 2,000th caller learns of it within the commit timeout, and a probe commit reopens the store", async () => {
  const commitTimeoutMs = 600;
  const { recorder } = recorderOn(proxiedUrl, { commitTimeoutMs, probeIntervalMs: 200 });
  await recorder.message(row(0)); // connected and committing
  proxy.stalled = true;
  const t0 = performance.now();
  const results = await timed(t0, Array.from({ length: 2000 }, (_, i) => recorder.message(row(i + 1))));
  expect(results.every((r) => !r.ok && r.err.code === "CS_ERR_AUDIT_UNAVAILABLE")).toBe(true);
  const last = Math.max(...results.map((r) => r.ms));
  console.log(`stall: the last of 2,000 callers learned of it after ${last.toFixed(0)} ms (commit timeout ${commitTimeoutMs} ms)`);
  // Four batches of 500 used to time out one after the other (4 × 600 ms).
  expect(last).toBeLessThan(commitTimeoutMs * 2);
  expect(recorder.status.healthy).toBe(false);

  // While the store is known down, a new record is refused at once, without waiting a timeout.
  const t1 = performance.now();
  const [refused] = await timed(t1, [recorder.message(row(5000))]);
  expect(refused!.err?.code).toBe("CS_ERR_AUDIT_UNAVAILABLE");
  expect(refused!.err?.detail).toMatch(/probe commit/);
  expect(refused!.ms).toBeLessThan(commitTimeoutMs);
  expect(recorder.status.refused).toBeGreaterThan(0);

  proxy.resume();
  await expect.poll(() => recorder.status.healthy, { timeout: 10_000 }).toBe(true);
  await recorder.message(row(6000));
  const check = new pg.Client({ connectionString: db.url });
  await check.connect();
  try {
    const recovered = await check.query(`SELECT count(*)::int AS n FROM events WHERE type = 'audit_store' AND reason = 'recovered'`);
    expect(recovered.rows[0].n).toBeGreaterThanOrEqual(1);
    const after = await check.query(`SELECT count(*)::int AS n FROM messages WHERE payload->>'n' = '6000'`);
    expect(after.rows[0].n).toBe(1);
  } finally {
    await check.end();
  }
  expect(recorder.status.queuedRows).toBe(0);
  expect(recorder.status.queuedBytes).toBe(0);
});

it("at its row bound, a new record is refused at once with the reason, never queued without end", async () => {
  const { recorder } = recorderOn(proxiedUrl, { commitTimeoutMs: 2000, maxQueuedRows: 50, probeIntervalMs: 200 });
  await recorder.message(row(0));
  proxy.stalled = true;
  const t0 = performance.now();
  const pending = Array.from({ length: 200 }, (_, i) => recorder.message(row(i + 1)));
  const results = await timed(t0, pending);
  proxy.resume();
  const full = results.filter((r) => !r.ok && /audit queue is full/.test(r.err.detail ?? ""));
  expect(full).toHaveLength(150);
  expect(full.every((r) => r.err?.code === "CS_ERR_AUDIT_UNAVAILABLE" && r.ms < 2000)).toBe(true);
  expect(recorder.status.refused).toBeGreaterThanOrEqual(150);
});

it("at its byte bound, a large record is refused at once", async () => {
  const { recorder } = recorderOn(db.url, { commitTimeoutMs: 2000, maxQueuedBytes: 100_000 });
  const big = "x".repeat(200_000);
  await expect(recorder.message(row(1, { payload: { big }, payloadText: JSON.stringify({ big }), size: 200_012 }))).rejects.toMatchObject({ code: "CS_ERR_AUDIT_UNAVAILABLE", detail: expect.stringMatching(/audit queue is full/) });
  await recorder.message(row(2)); // smaller ones still go
});

it("text PostgreSQL cannot store is kept, escaped and lossless; one poison row fails only its own caller", async () => {
  const { pool, recorder } = recorderOn(db.url, { commitTimeoutMs: 5000 });
  const nasty = { text: "a\u0000b", lone: "x\ud800y", low: "\udc00", pair: "😀", key: { "k\u0000": "\u2063cs-escaped:looks escaped" } };
  // A batch: ordinary rows, rows with NUL and lone surrogates (in the payload, the method and the id),
  // and one the store refuses (size beyond int range).
  const batch = [
    recorder.message(row(9001, { payload: { n: 9001 } })),
    recorder.message(row(9002, { payload: { n: 9002, ...nasty }, method: "x\u0000y", jsonrpcId: "id\ud800" })),
    recorder.message(row(9003, { payload: { n: 9003 }, payloadText: JSON.stringify({ n: 9003 }), size: 2 ** 40 })),
    recorder.message(row(9004, { payload: { n: 9004 } })),
  ];
  const results = await timed(performance.now(), batch);
  expect(results.map((r) => r.ok)).toEqual([true, true, false, true]);
  expect(results[2]!.err!.code).toBe("CS_ERR_AUDIT_UNAVAILABLE");
  expect(recorder.status.healthy).toBe(true);
  expect(recorder.status.rejectedRows).toBe(1);
  const stored = await pool.query(`SELECT method, "jsonrpcId", payload FROM messages WHERE (payload->>'n')::int = 9002`);
  expect(stored.rows).toHaveLength(1);
  const r = stored.rows[0];
  expect(restoreStored(r.payload)).toEqual({ n: 9002, ...nasty });
  expect(restoreStored(r.method)).toBe("x\u0000y");
  expect(restoreStored(r.jsonrpcId)).toBe("id\ud800");
  const others = await pool.query(`SELECT (payload->>'n')::int AS n FROM messages WHERE (payload->>'n')::int IN (9001, 9003, 9004) ORDER BY 1`);
  expect(others.rows.map((x) => x.n)).toEqual([9001, 9004]);
});
