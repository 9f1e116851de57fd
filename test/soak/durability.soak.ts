// Durability under SIGKILL: the gateway process is killed at random moments while clients call a
// tool, restarted, and killed again, many times. Afterwards the record must hold
//   (a) a committed response row for every response a client received, and
//   (b) a committed request row for every call the upstream received.
// The kill moments come from a seeded PRNG; the seed is printed and DURABILITY_SEED replays a run.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import {
  killGateway,
  killPids,
  loggingConnection,
  startGatewayProcess,
  waitForPidsGone,
  writeGatewayConfig,
  type GatewayProcess,
} from "../helpers/process.js";

const TIME_BUDGET_MS = Number(process.env.DURABILITY_BUDGET_MS ?? 45_000);
const MIN_KILLS = 10;
const CLIENTS = 4;
/** Pause between a client's calls: steady load that leaves CPU for the replacement gateway to start. */
const THINK_MS = 10;
/** Kills land up to this long after calls flow and the replacement is ready (or after ready, for early kills). */
const MAX_KILL_DELAY_MS = 1000;
const EARLY_KILL_SHARE = 0.2;
const PROTOCOL_VERSION = "2025-06-18";

/** mulberry32: small, seedable, good enough to spread kill moments. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface CallOutcome {
  message: string;
  sessionId: string;
  jsonrpcId: number;
  /** The result the client received, if it received one. */
  result?: unknown;
  error?: { code: number; data?: { code?: string } };
}

let db: TestDatabase;
let dir: string;
let gateway: GatewayProcess | undefined;
const gatewayPids: number[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  dir = mkdtempSync(join(tmpdir(), "countersign-durability-"));
});

afterAll(async () => {
  await killGateway(gateway);
  // Whatever upstream children the log names and still run are ours: never leave them behind.
  if (dir) {
    killPids(upstreamPids(join(dir, "upstream.jsonl")));
    rmSync(dir, { recursive: true, force: true });
  }
  await db?.drop();
});

function upstreamLog(file: string): Array<{ pid: number; started?: boolean; msg?: Record<string, unknown> }> {
  let text = "";
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return [];
  }
  // A child killed mid-write may leave a torn last line; every complete line is a whole entry.
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as { pid: number; started?: boolean; msg?: Record<string, unknown> }];
      } catch {
        return [];
      }
    });
}

function upstreamPids(file: string): number[] {
  return upstreamLog(file).filter((e) => e.started).map((e) => e.pid);
}

/** Reads a POST's answer (JSON or an SSE stream) as it arrives; returns the response to `id` if it came whole. */
async function readAnswer(res: Response, id: number): Promise<Record<string, unknown> | undefined> {
  const type = res.headers.get("content-type") ?? "";
  if (type.includes("application/json")) {
    const body = (await res.json()) as Record<string, unknown>;
    return body.id === id ? body : undefined;
  }
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return undefined;
      buffered += value;
      let end: number;
      while ((end = buffered.indexOf("\n\n")) !== -1) {
        const event = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        const data = event
          .split("\n")
          .filter((l) => l.startsWith("data:"))
          .map((l) => l.slice(5).trimStart())
          .join("\n");
        if (!data) continue;
        const msg = JSON.parse(data) as Record<string, unknown>;
        if (msg.id === id && ("result" in msg || "error" in msg)) return msg;
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

function post(url: string, body: unknown, sessionId?: string): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": PROTOCOL_VERSION,
      ...(sessionId ? { "mcp-session-id": sessionId } : {}),
    },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
}

async function openSession(url: string, client: string): Promise<string> {
  const res = await post(url, {
    jsonrpc: "2.0",
    id: 0,
    method: "initialize",
    params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: client, version: "1" } },
  });
  const sessionId = res.headers.get("mcp-session-id");
  const answer = await readAnswer(res, 0);
  if (!sessionId || !answer || !("result" in answer)) throw new Error(`initialize failed: HTTP ${res.status}`);
  const ack = await post(url, { jsonrpc: "2.0", method: "notifications/initialized" }, sessionId);
  if (ack.status !== 202) throw new Error(`notifications/initialized: HTTP ${ack.status}`);
  return sessionId;
}

it(
  "keeps every delivered response and every forwarded request on record across repeated SIGKILLs",
  async () => {
    const seed = Number(process.env.DURABILITY_SEED ?? Math.floor(Math.random() * 2 ** 31));
    console.log(`durability: seed ${seed} (replay with DURABILITY_SEED=${seed})`);
    const random = prng(seed);
    const logFile = join(dir, "upstream.jsonl");
    const configFile = writeGatewayConfig(join(dir, "countersign.yaml"), {
      connections: [loggingConnection("logging", logFile)],
    });

    const outcomes: CallOutcome[] = [];
    let connectionFailures = 0;
    let stop = false;
    let current: GatewayProcess | undefined;
    let answeredThisRound = 0;

    const client = async (n: number) => {
      let calls = 0;
      while (!stop) {
        const gw = current;
        if (!gw) {
          await new Promise((r) => setTimeout(r, 10));
          continue;
        }
        const url = gw.mcpUrl("logging");
        let sessionId: string;
        try {
          sessionId = await openSession(url, `durability-${n}`);
        } catch {
          connectionFailures++;
          // The gateway is gone: wait for the next one rather than spin.
          while (!stop && current === gw) await new Promise((r) => setTimeout(r, 10));
          continue;
        }
        for (let id = 1; !stop; id++) {
          const message = `s${seed}-c${n}-n${calls++}`;
          const outcome: CallOutcome = { message, sessionId, jsonrpcId: id };
          outcomes.push(outcome);
          try {
            const res = await post(url, { jsonrpc: "2.0", id, method: "tools/call", params: { name: "echo", arguments: { message } } }, sessionId);
            const answer = await readAnswer(res, id);
            if (!answer) throw new Error(`no answer (HTTP ${res.status})`);
            if ("result" in answer) {
              outcome.result = answer.result;
              if (current === gw) answeredThisRound++;
            }
            else {
              outcome.error = answer.error as CallOutcome["error"];
              break; // a gateway error ends this session's use; open another
            }
          } catch {
            connectionFailures++;
            break;
          }
          await new Promise((r) => setTimeout(r, THINK_MS));
        }
      }
    };

    const clients = Array.from({ length: CLIENTS }, (_, n) => client(n));
    const started = Date.now();
    let kills = 0;
    const launch = () => {
      const p = startGatewayProcess(configFile, db.url);
      void p.then((gw) => gatewayPids.push(gw.pid), () => {});
      return p;
    };
    // The replacement process starts while the current one serves, so that each kill is followed
    // at once by a fresh gateway: more kills fit in the time budget.
    let next = launch();
    try {
      while (kills < MIN_KILLS || Date.now() - started < TIME_BUDGET_MS) {
        gateway = await next;
        answeredThisRound = 0;
        current = gateway;
        next = launch();
        // Most kills land while calls flow (and once the replacement is ready, so no time is spent
        // idle); some land while sessions are still being set up.
        if (random() >= EARLY_KILL_SHARE) {
          const deadline = Date.now() + 10_000;
          while (answeredThisRound === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
          await next.catch(() => undefined);
        }
        await new Promise((r) => setTimeout(r, Math.floor(random() * MAX_KILL_DELAY_MS)));
        gateway.child.kill("SIGKILL");
        kills++;
        current = undefined;
        const { signal } = await gateway.exited;
        expect(signal).toBe("SIGKILL");
      }
    } finally {
      stop = true;
      current = undefined;
      await killGateway(gateway);
      await killGateway(await next.catch(() => undefined));
      await Promise.all(clients);
    }

    // No orphans: every upstream child saw its gateway die (stdin EOF) and exited.
    const children = upstreamPids(logFile);
    expect(await waitForPidsGone(children, 10_000)).toEqual([]);
    expect(await waitForPidsGone(gatewayPids, 1000)).toEqual([]);

    const pgClient = new pg.Client({ connectionString: db.url });
    await pgClient.connect();
    let inRows: Array<{ sessionId: string; jsonrpcId: string; message: string | null }>;
    let outRows: Array<{ sessionId: string; jsonrpcId: string; payload: Record<string, unknown> }>;
    try {
      inRows = (
        await pgClient.query(
          `SELECT "sessionId", "jsonrpcId", payload->'params'->'arguments'->>'message' AS message
             FROM messages WHERE direction = 'in' AND method = 'tools/call'`,
        )
      ).rows;
      outRows = (await pgClient.query(`SELECT "sessionId", "jsonrpcId", payload FROM messages WHERE direction = 'out' AND method = 'tools/call'`)).rows;
    } finally {
      await pgClient.end();
    }

    // (a) Every response a client received has its committed record, with the same result.
    const outByKey = new Map(outRows.map((r) => [`${r.sessionId}|${r.jsonrpcId}`, r.payload]));
    const received = outcomes.filter((o) => o.result !== undefined);
    const unrecordedResponses = received.filter((o) => {
      const payload = outByKey.get(`${o.sessionId}|${o.jsonrpcId}`);
      return !payload || !isDeepStrictEqual(payload.result, o.result);
    });
    for (const o of received) expect(o.result).toEqual({ content: [{ type: "text", text: `Echo: ${o.message}` }] });

    // (b) Every call the upstream received has its committed request record (same id, same argument).
    const inByMessage = new Map(inRows.map((r) => [r.message, r]));
    const upstreamCalls = upstreamLog(logFile).filter((e) => e.msg?.method === "tools/call");
    const unrecordedCalls = upstreamCalls.filter((e) => {
      const args = (e.msg!.params as { arguments?: { message?: string } }).arguments;
      const row = inByMessage.get(args?.message ?? null);
      return !row || row.jsonrpcId !== String(e.msg!.id);
    });

    const errors = outcomes.filter((o) => o.error !== undefined);
    const recordedNotForwarded = inRows.length - upstreamCalls.length;
    console.log(
      `durability: ${kills} SIGKILLs in ${((Date.now() - started) / 1000).toFixed(1)} s; ` +
        `${outcomes.length} calls sent, ${received.length} answered with a result, ${errors.length} with a gateway error, ` +
        `${outcomes.length - received.length - errors.length} cut off by a kill; ${connectionFailures} failed connections; ` +
        `${upstreamCalls.length} calls reached the upstream; ${inRows.length} requests and ${outRows.length} responses on record ` +
        `(${recordedNotForwarded} recorded but never forwarded: killed between commit and forward); ${children.length} upstream children, none left`,
    );
    expect(kills).toBeGreaterThanOrEqual(MIN_KILLS);
    expect(received.length).toBeGreaterThan(0);
    expect(upstreamCalls.length).toBeGreaterThan(0);
    expect(unrecordedResponses.map((o) => o.message)).toEqual([]);
    expect(unrecordedCalls.map((e) => JSON.stringify(e.msg))).toEqual([]);
  },
  180_000,
);
