// `npm run bench:approvals`: what holding calls for approval costs, through real gateway processes
// (dist/, as users run it) on a real PostgreSQL, with real MCP clients:
//   latency   a held call from an MCP client; a decision through the approvals API, on the replica
//             that holds the call (same) or on a second replica (cross: LISTEN/NOTIFY); timed from
//             the decision request until the upstream receives the call. The upstream is a small
//             Streamable HTTP MCP server in this process, so both ends read one clock.
//   memory    the gateway's resident memory (VmRSS) before and with N held calls (default 10,000,
//             over 10 sessions with 1,000 concurrent requests each), and per held call.
//
//   npm run bench:approvals -- [--calls 10000] [--sessions 10] [--rounds 100] [--json]
import { createServer, type IncomingMessage, type Server } from "node:http";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { LoggingMessageNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { stringify } from "yaml";
import { devIssuerUrl, loadDevIssuerKey, signDevToken } from "../../gateway/auth/dev-issuer.js";
import { buildGatewayIfStale, createMigratedDatabase, fmt2, freePort, GATEWAY_CLI, LatencySamples, onExit, renderTable, startChild, type Child } from "./lib.js";

const { values: args } = parseArgs({
  options: {
    calls: { type: "string", default: "10000" },
    sessions: { type: "string", default: "10" },
    rounds: { type: "string", default: "100" },
    json: { type: "boolean", default: false },
  },
});
const CALLS = Number(args.calls);
const SESSIONS = Number(args.sessions);
const ROUNDS = Number(args.rounds);
const TARGET_RSS_MB = 512;
const SETTLE_MS = 15_000;
/** Token audiences and the dev issuer name the public URL: one for every replica. */
const PUBLIC_URL = "http://countersign.bench";
const say = (line: string) => process.stderr.write(`bench: ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ── the upstream: answers echo and notes when each call arrived ───────────────────────────────

const arrivals = new Map<string, bigint>();

async function startUpstream(): Promise<{ server: Server; url: string }> {
  const read = async (req: IncomingMessage) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString("utf8");
  };
  const server = createServer((req, res) => {
    if (req.method !== "POST") return void res.writeHead(405).end();
    void read(req).then((text) => {
      const msg = JSON.parse(text) as { id?: number | string; method?: string; params?: { name?: string; arguments?: { message?: string } } };
      if (msg.method === "tools/call") arrivals.set(String(msg.params?.arguments?.message), process.hrtime.bigint());
      if (msg.id === undefined) return void res.writeHead(202).end();
      const result =
        msg.method === "initialize"
          ? { protocolVersion: "2025-06-18", capabilities: { tools: {} }, serverInfo: { name: "bench-upstream", version: "1" } }
          : msg.method === "tools/list"
            ? { tools: [{ name: "echo", inputSchema: { type: "object", properties: { message: { type: "string" } } } }] }
            : msg.method === "tools/call"
              ? { content: [{ type: "text", text: `Echo: ${msg.params?.arguments?.message}` }] }
              : {};
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ jsonrpc: "2.0", id: msg.id, result }));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}/mcp` };
}

// ── gateways ──────────────────────────────────────────────────────────────────────────────────

interface Replica {
  child: Child;
  url: string;
}

async function startReplica(dir: string, databaseUrl: string, upstreamUrl: string, name: string): Promise<Replica> {
  const port = await freePort();
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    stringify({
      version: 1,
      publicUrl: PUBLIC_URL,
      server: { host: "127.0.0.1", port },
      database: { url: { env: "DATABASE_URL" }, migrateOnStart: false, embeddedDataDir: join(dir, "pg") },
      log: { level: "warn" },
      auth: { devIssuer: { enabled: true, keyFile: join(dir, "dev-issuer.jwk") } },
      // Thousands of held calls per session each get a "waiting for approval" notification.
      limits: { notificationsPerSecond: 1_000_000 },
      approvals: { groups: { oncall: { emails: ["bob@bench.example"] } }, holdFor: "30m", sweepIntervalMs: 1000, pollIntervalMs: 1000 },
      connections: [
        {
          name: "bench",
          maxSessions: Math.max(32, SESSIONS + 2),
          maxSessionsPerIdentity: Math.max(32, SESSIONS + 2),
          access: { anonymous: true },
          upstream: { type: "streamable_http", url: upstreamUrl },
          policy: {
            rules: [{ id: "held", description: "Bench calls wait for on-call", tools: ["echo"], when: { path: "$.arguments.message", matches: "^held" }, action: "require_approval", approval: { group: "oncall", timeout: "1h" } }],
          },
        },
      ],
    }),
  );
  const { child, match } = await startChild(`gateway ${name}`, process.execPath, [GATEWAY_CLI, "start", "--config", file], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", DATABASE_URL: databaseUrl },
    ready: /^Countersign ready at (\S+)/,
    timeoutMs: 60_000,
  });
  return { child, url: match[1]! };
}

async function client(replica: Replica, onLog?: (text: string) => void): Promise<Client> {
  const c = new Client({ name: "approvals-bench", version: "1" });
  if (onLog) c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => onLog(String(n.params.data)));
  await c.connect(new StreamableHTTPClientTransport(new URL(`${replica.url}/mcp/bench`)));
  return c;
}

const rssBytes = (pid: number, field: "VmRSS" | "VmHWM" = "VmRSS") => {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : Number.NaN;
};
const waiters = async (r: Replica) => ((await (await fetch(`${r.url}/readyz`)).json()) as { approvals?: { waiters: number } }).approvals?.waiters ?? 0;
const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);

// ── run ───────────────────────────────────────────────────────────────────────────────────────

buildGatewayIfStale(say);
const dir = mkdtempSync(join(tmpdir(), "countersign-approvals-bench-"));
onExit(() => rmSync(dir, { recursive: true, force: true }));
const db = await createMigratedDatabase("bench_approvals");
const upstream = await startUpstream();
const results: Record<string, unknown> = {};

try {
  // Latency: a held call on A, decided on A (same) or on B (cross), interleaved.
  say("starting replicas A and B");
  const a = await startReplica(dir, db.url, upstream.url, "a");
  const b = await startReplica(dir, db.url, upstream.url, "b");
  const key = await loadDevIssuerKey(join(dir, "dev-issuer.jwk"));
  const bob = await signDevToken(key, devIssuerUrl(PUBLIC_URL), { subject: "bob", email: "bob@bench.example", groups: [], audience: [`${PUBLIC_URL}/approvals`], ttlSeconds: 3600 });
  const pending = new Map<string, (id: string) => void>();
  const caller = await client(a, (text) => {
    const m = /request (apr_\w+)/.exec(text);
    const marker = /held-lat-\d+-\w+/.exec(text)?.[0];
    if (m) for (const [msg, resolve] of pending) if (!marker || marker === msg) resolve(m[1]!), pending.delete(msg);
  });
  const samples = { same: new LatencySamples(), cross: new LatencySamples() };
  say(`latency: ${ROUNDS} rounds, same and cross replica`);
  for (let i = 0; i < ROUNDS; i++) {
    for (const kind of ["same", "cross"] as const) {
      const message = `held-lat-${i}-${kind}`;
      const id = new Promise<string>((resolve) => pending.set(message, resolve));
      const call = caller.callTool({ name: "echo", arguments: { message } }, undefined, { timeout: 120_000 });
      const requestId = await id;
      await sleep(20); // the waiter is registered once the caller has been told
      const t0 = process.hrtime.bigint();
      const res = await fetch(`${(kind === "same" ? a : b).url}/approvals/${requestId}/approve`, { method: "POST", headers: { authorization: `Bearer ${bob}` } });
      if (res.status !== 200) throw new Error(`approve ${requestId}: HTTP ${res.status} ${await res.text()}`);
      const result = await call;
      const t1 = arrivals.get(message);
      if (!t1 || result.isError) throw new Error(`round ${i} ${kind}: the call was not forwarded (${JSON.stringify(result.content)})`);
      samples[kind].add(t1 - t0);
    }
  }
  await caller.close();
  await Promise.all([a.child.stop(), b.child.stop()]);
  results.latency = { same: samples.same.summary(), cross: samples.cross.summary(), rounds: ROUNDS };

  // Memory: a fresh replica, then CALLS held calls over SESSIONS sessions.
  say("starting replica C for the memory run");
  const c = await startReplica(dir, db.url, upstream.url, "c");
  const pid = c.child.proc.pid!;
  const clients = await Promise.all(Array.from({ length: SESSIONS }, () => client(c)));
  // One allowed call per session, so upstream sessions and code paths are warm before the baseline.
  await Promise.all(clients.map((cl, i) => cl.callTool({ name: "echo", arguments: { message: `warm-${i}` } })));
  await sleep(2000);
  const before = rssBytes(pid);
  say(`RSS before: ${mb(before)} MB; opening ${CALLS} held calls`);
  const started = Date.now();
  const calls: Array<Promise<unknown>> = [];
  // In waves: ten thousand connections opened at once overflow the listen backlog, and the dropped
  // SYNs come back after seconds of TCP back-off, which would measure the kernel, not the gateway.
  const WAVE = 500;
  let held = 0;
  const deadline = Date.now() + 240_000;
  let shown = Date.now();
  for (let opened = 0; opened < CALLS; ) {
    const upTo = Math.min(CALLS, opened + WAVE);
    for (; opened < upTo; opened++) {
      calls.push(clients[opened % SESSIONS]!.callTool({ name: "echo", arguments: { message: `held-mem-${opened}` } }, undefined, { timeout: 30 * 60_000 }).catch(() => undefined));
    }
    while ((held = await waiters(c)) < opened) {
      if (Date.now() > deadline) throw new Error(`only ${held} of ${CALLS} calls were held after 240 s`);
      await sleep(100);
    }
    if (Date.now() - shown >= 10_000) {
      shown = Date.now();
      say(`${held} held after ${((shown - started) / 1000).toFixed(0)} s (gateway RSS ${mb(rssBytes(pid))} MB)`);
    }
  }
  const holdSeconds = (Date.now() - started) / 1000;
  await sleep(2000);
  const afterBurst = rssBytes(pid);
  say(`${held} calls held after ${holdSeconds.toFixed(1)} s; RSS ${mb(afterBurst)} MB; letting it settle for ${SETTLE_MS / 1000} s`);
  // Garbage from the burst is collected when the process goes idle (still holding every call).
  await sleep(SETTLE_MS);
  const after = rssBytes(pid);
  const peak = rssBytes(pid, "VmHWM");
  if ((await waiters(c)) !== CALLS) throw new Error("held calls were released during the measurement");
  results.memory = {
    calls: CALLS,
    sessions: SESSIONS,
    rssBeforeBytes: before,
    rssAfterBurstBytes: afterBurst,
    rssAfterBytes: after,
    peakRssBytes: peak,
    perHeldCallBytes: Math.round((after - before) / CALLS),
    secondsToHoldAll: holdSeconds,
    targetRssMb: TARGET_RSS_MB,
  };
  // Closing the clients ends their pending calls; the held requests die with the gateway.
  await Promise.race([Promise.allSettled(clients.map((cl) => cl.close())), sleep(5000)]);
  await c.child.stop(3000);
} finally {
  upstream.server.close();
  await db.drop();
}

if (args.json) process.stdout.write(JSON.stringify(results, null, 2) + "\n");
else {
  const m = results.memory as { calls: number; sessions: number; rssBeforeBytes: number; rssAfterBurstBytes: number; rssAfterBytes: number; peakRssBytes: number; perHeldCallBytes: number; secondsToHoldAll: number };
  const l = results.latency as { same: { p50: number; p90: number; p99: number }; cross: { p50: number; p90: number; p99: number } };
  process.stdout.write(`\nMemory: ${m.calls} held calls over ${m.sessions} sessions (one gateway process; target ≤ ${TARGET_RSS_MB} MB RSS)\n`);
  process.stdout.write(
    renderTable(
      ["RSS before", `RSS with ${m.calls} held: after the burst`, `settled (${SETTLE_MS / 1000} s)`, "peak RSS", "per held call (settled)", "time to hold all", "target met (peak)"],
      [[`${mb(m.rssBeforeBytes)} MB`, `${mb(m.rssAfterBurstBytes)} MB`, `${mb(m.rssAfterBytes)} MB`, `${mb(m.peakRssBytes)} MB`, `${(m.perHeldCallBytes / 1024).toFixed(1)} KiB`, `${m.secondsToHoldAll.toFixed(1)} s`, m.peakRssBytes <= TARGET_RSS_MB * 1024 * 1024 ? "yes" : "no"]],
      [true, true, true, true, true, true, false],
    ) + "\n",
  );
  process.stdout.write(`\nDecision → upstream receives the call (approvals API; ${ROUNDS} rounds each)\n`);
  process.stdout.write(
    renderTable(
      ["decided on", "p50 ms", "p90 ms", "p99 ms"],
      [
        ["same replica", fmt2(l.same.p50), fmt2(l.same.p90), fmt2(l.same.p99)],
        ["other replica (NOTIFY)", fmt2(l.cross.p50), fmt2(l.cross.p90), fmt2(l.cross.p99)],
      ],
      [false, true, true, true],
    ) + "\n",
  );
}
process.exit(0);
