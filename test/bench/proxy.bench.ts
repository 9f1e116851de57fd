// `npm run bench`: tools/call `echo` on server-everything, side by side in the same run:
//   direct            the client talks to server-everything's Streamable HTTP endpoint,
//   gateway → http    through Countersign to that same HTTP server,
//   gateway → stdio   through Countersign to server-everything over stdio (a child per session),
//   gateway → stdio (shared)  the same, with the stdio server declared shareable: one child for all sessions,
//   gateway → stdio (2026)    MCP 2026-07-28 stateless requests (the SDK v2 client pinned to the revision) to the
//                     same stdio server: no client session; the caller's bridge session (one child) carries them,
//   mcp-proxy → stdio a peer relay (the npm package mcp-proxy 6.x: Streamable HTTP in front of a
//                     stdio server, nothing recorded, masked or checked), to the same stdio server,
// at concurrency 1 and 32, with the whole pipeline on (callers authenticate with JWTs from the
// built-in dev issuer, masking is on, every message is committed to a real PostgreSQL before it
// moves on). The machine is small and noisy, so the configurations are interleaved over several
// short rounds and compared round by round (median of the ratios). CPU time per call, by process,
// is read from /proc: it explains the throughput ratio and is not disturbed by other work.
//
//   npm run bench -- [--rounds N] [--seconds S] [--json] [--only http|stdio] [--cpu-prof DIR] [--async-commit]
import { Client as ModernClient, StreamableHTTPClientTransport as ModernTransport } from "@modelcontextprotocol/client";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { cpus, loadavg } from "node:os";
import { parseArgs } from "node:util";
import pg from "pg";
import {
  buildGatewayIfStale,
  childPids,
  processCpuMs,
  createMigratedDatabase,
  everythingStdioUpstream,
  fmt2,
  LatencySamples,
  median,
  renderTable,
  startEverythingHttp,
  startGatewayChild,
  startMcpProxy,
} from "./lib.js";

/** Targets: at c=32 the gateway's throughput to a stdio server against mcp-proxy's to the same server; at c=1 the
 * gateway's CPU per call (its process and its PostgreSQL backends) against mcp-proxy's, and the p50 the gateway adds
 * over direct for the HTTP upstream. */
const TARGET_RPS_RATIO_VS_PROXY = 1.0;
const TARGET_CPU_RATIO_VS_PROXY = 1.5;
const TARGET_ADDED_P50_MS = 1.5;
const ALL_CONCURRENCIES = [1, 32] as const;
/** Calls per measured run at most, whatever the duration: bounds a run on a fast machine. */
const MAX_CALLS_PER_RUN = 200_000;
const CALL_TIMEOUT_MS = 10_000;
const MESSAGE = "countersign-bench";

const { values: args } = parseArgs({
  options: {
    rounds: { type: "string", default: "5" },
    seconds: { type: "string", default: "3.5" },
    json: { type: "boolean", default: false },
    "cpu-prof": { type: "string" },
    only: { type: "string" },
    concurrency: { type: "string" },
    "async-commit": { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});
if (args.help) {
  process.stdout.write(
    "usage: npm run bench -- [--rounds N (default 5)] [--seconds S per run (default 3.5)] [--json]\n" +
      "                        [--cpu-prof DIR (profile the gateway child)] [--only http|stdio (one gateway configuration, with direct)]\n" +
      "                        [--concurrency 1|32 (only that one; the comparisons that need the other are not made)]\n" +
      "                        [--async-commit (diagnostic: the bench database commits without waiting for the WAL flush, to\n" +
      "                         show what the disk's fsync costs; NOT durable, never how the gateway is run)]\n",
  );
  process.exit(0);
}
const ROUNDS = Math.min(50, Math.max(1, Number.parseInt(args.rounds!, 10) || 5));
const SECONDS = Math.min(60, Math.max(0.5, Number(args.seconds) || 3.5));
if (args.only !== undefined && args.only !== "http" && args.only !== "stdio") {
  process.stderr.write("bench: --only takes http or stdio\n");
  process.exit(2);
}
if (args.concurrency !== undefined && args.concurrency !== "1" && args.concurrency !== "32") {
  process.stderr.write("bench: --concurrency takes 1 or 32\n");
  process.exit(2);
}
/** The concurrencies measured: both by default; one with --concurrency (for profiling one of them). */
const CONCURRENCIES: ReadonlyArray<1 | 32> = args.concurrency ? [Number(args.concurrency) as 1 | 32] : ALL_CONCURRENCIES;
const say = (line: string) => process.stderr.write(`bench: ${line}\n`);

type TargetKey = "direct" | "gateway_http" | "gateway_stdio" | "gateway_stdio_shared" | "gateway_stdio_stateless" | "mcp_proxy_stdio";
const LABELS: Record<TargetKey, string> = {
  direct: "direct",
  gateway_http: "gateway → http",
  gateway_stdio: "gateway → stdio",
  gateway_stdio_shared: "gateway → stdio (shared)",
  gateway_stdio_stateless: "gateway → stdio (2026)",
  mcp_proxy_stdio: "mcp-proxy → stdio",
};


interface Target {
  key: TargetKey;
  url: string;
  /** One session (or, for 2026, one stateless client) per concurrent worker; worker 0 alone runs concurrency 1. */
  clients: Caller[];
}

/** CPU time per successful call, in ms, by the process that spent it. */
interface CpuPerCall {
  client: number;
  upstream: number;
  gateway: number;
  postgres: number;
}

interface RunResult {
  cpu?: CpuPerCall;
  calls: number;
  errors: number;
  seconds: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
}

/** What a worker calls: tools/call echo, answered right or not. */
interface Caller {
  echo(): Promise<boolean>;
  close(): Promise<void>;
}

function echoed(content: unknown): boolean {
  const first = (content as Array<{ type: string; text?: string }> | undefined)?.[0];
  return first?.text === `Echo: ${MESSAGE}`;
}

async function connect(url: string, name: string, token: string | undefined, stateless = false): Promise<Caller> {
  const requestInit = token ? { headers: { authorization: `Bearer ${token}` } } : undefined;
  if (stateless) {
    const client = new ModernClient({ name, version: "1" }, { versionNegotiation: { mode: { pin: "2026-07-28" } } });
    await client.connect(new ModernTransport(new URL(url), requestInit ? { requestInit } : undefined));
    return {
      echo: async () => echoed((await client.callTool({ name: "echo", arguments: { message: MESSAGE } }, { timeout: CALL_TIMEOUT_MS })).content),
      close: () => client.close(),
    };
  }
  const client = new Client({ name, version: "1" });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), requestInit ? { requestInit } : undefined));
  return {
    echo: async () => echoed((await client.callTool({ name: "echo", arguments: { message: MESSAGE } }, undefined, { timeout: CALL_TIMEOUT_MS })).content),
    close: () => client.close(),
  };
}

async function openClients(key: TargetKey, url: string, count: number, token: string | undefined): Promise<Caller[]> {
  const clients: Caller[] = [];
  // A few at a time: behind the gateway's stdio connection each session spawns a server.
  for (let i = 0; i < count; i += 4) {
    const batch = await Promise.all(Array.from({ length: Math.min(4, count - i) }, (_, j) => connect(url, `bench-${key}-${i + j}`, token, key === "gateway_stdio_stateless")));
    clients.push(...batch);
  }
  return clients;
}

function echo(client: Caller): Promise<boolean> {
  return client.echo();
}

/**
 * Where the CPU goes: this process (the clients), the upstream server(s), the gateway, the peer relay
 * (mcp-proxy) and its stdio children, and the PostgreSQL backends serving the bench database (found
 * through pg_stat_activity).
 */
class CpuMeter {
  constructor(
    private readonly pg: pg.Client,
    private readonly upstreamPid: number,
    private readonly gatewayPid: number,
    private readonly relayPid: number,
  ) {}

  async snapshot(): Promise<CpuSnapshot> {
    const own = process.cpuUsage();
    const backends = await this.pg.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()");
    return {
      client: (own.user + own.system) / 1000,
      httpServer: processCpuMs(this.upstreamPid),
      stdioServers: childPids(this.gatewayPid).reduce((sum, pid) => sum + processCpuMs(pid), 0),
      gateway: processCpuMs(this.gatewayPid),
      relay: processCpuMs(this.relayPid),
      relayServers: childPids(this.relayPid).reduce((sum, pid) => sum + processCpuMs(pid), 0),
      postgres: new Map(backends.rows.map((r) => [r.pid, processCpuMs(r.pid)])),
    };
  }

  perCall(before: CpuSnapshot, after: CpuSnapshot, key: TargetKey, calls: number): CpuPerCall {
    const per = (ms: number) => (calls > 0 ? ms / calls : Number.NaN);
    const client = per(after.client - before.client);
    if (key === "mcp_proxy_stdio") {
      // The relay records nothing: no database time is its.
      return { client, upstream: per(after.relayServers - before.relayServers), gateway: per(after.relay - before.relay), postgres: 0 };
    }
    let postgres = 0;
    for (const [pid, ms] of after.postgres) postgres += ms - (before.postgres.get(pid) ?? 0);
    const upstream = key.startsWith("gateway_stdio") ? after.stdioServers - before.stdioServers : after.httpServer - before.httpServer;
    return { client, upstream: per(upstream), gateway: per(after.gateway - before.gateway), postgres: per(postgres) };
  }
}

interface CpuSnapshot {
  client: number;
  httpServer: number;
  stdioServers: number;
  gateway: number;
  relay: number;
  relayServers: number;
  postgres: Map<number, number>;
}

/** Each worker calls back to back until the deadline; every call is timed on its own. */
async function runLoad(clients: Caller[], seconds: number, samples: LatencySamples): Promise<RunResult> {
  const local = new LatencySamples();
  let calls = 0;
  let errors = 0;
  const started = process.hrtime.bigint();
  const deadline = started + BigInt(Math.round(seconds * 1e9));
  await Promise.all(
    clients.map(async (client) => {
      while (process.hrtime.bigint() < deadline && calls + errors < MAX_CALLS_PER_RUN) {
        const t0 = process.hrtime.bigint();
        try {
          const ok = await echo(client);
          const t1 = process.hrtime.bigint();
          if (ok) {
            local.add(t1 - t0);
            calls++;
          } else errors++;
        } catch {
          errors++;
        }
      }
    }),
  );
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  samples.merge(local);
  return { calls, errors, seconds: elapsed, rps: calls / elapsed, ...local.summary() };
}

async function main(): Promise<void> {
  const benchStarted = Date.now();
  const loadAtStart = loadavg()[0]!;
  buildGatewayIfStale(say);
  say(`node ${process.version}, ${cpus().length} cores; ${ROUNDS} rounds × ${SECONDS} s per configuration and concurrency`);

  const db = await createMigratedDatabase("cs_bench");
  say(`database ${db.name} created and migrated`);
  if (args["async-commit"]) {
    // Only this throw-away database, never the server's settings.
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    await admin.query(`ALTER DATABASE ${db.name} SET synchronous_commit = off`);
    await admin.end();
    say("diagnostic mode: synchronous_commit = off on the bench database (commits do not wait for the disk)");
  }
  const upstream = await startEverythingHttp();
  say(`server-everything (streamableHttp) at ${upstream.url}`);
  const maxConcurrency = Math.max(...CONCURRENCIES);
  const gateway = await startGatewayChild({
    databaseUrl: db.url,
    connections: [
      { name: "everything-http", upstream: { type: "streamable_http", url: upstream.url }, maxSessions: maxConcurrency + 8, maxSessionsPerIdentity: maxConcurrency + 8 },
      { name: "everything-stdio", upstream: everythingStdioUpstream(), maxSessions: maxConcurrency + 8, maxSessionsPerIdentity: maxConcurrency + 8 },
      { name: "everything-stdio-shared", upstream: { ...everythingStdioUpstream(), shared: true }, maxSessions: maxConcurrency + 8, maxSessionsPerIdentity: maxConcurrency + 8 },
    ],
    // The whole pipeline: callers authenticate with real JWTs, masking is on (its default).
    auth: "dev-issuer",
    nodeArgs: args["cpu-prof"] ? ["--cpu-prof", "--cpu-prof-dir", args["cpu-prof"]] : [],
  });
  say(`gateway child (pid ${gateway.child.proc.pid}) at ${gateway.address}`);
  const relay = await startMcpProxy(everythingStdioUpstream());
  say(`mcp-proxy ${relay.version} (pid ${relay.child.proc.pid}) at ${relay.url}`);

  const targets: Target[] = [];
  try {
    const wanted: Array<[TargetKey, string]> = [
      ["direct", upstream.url],
      ["gateway_http", gateway.mcpUrl("everything-http")],
      ["gateway_stdio", gateway.mcpUrl("everything-stdio")],
      ["gateway_stdio_shared", gateway.mcpUrl("everything-stdio-shared")],
      ["gateway_stdio_stateless", gateway.mcpUrl("everything-stdio")],
      ["mcp_proxy_stdio", relay.url],
    ];
    const keep = (key: TargetKey) => !args.only || key === "direct" || key.startsWith(`gateway_${args.only}`) || (args.only === "stdio" && key === "mcp_proxy_stdio");
    for (const [key, url] of wanted.filter(([key]) => keep(key))) {
      const t0 = Date.now();
      const clients = await openClients(key, url, maxConcurrency, key.startsWith("gateway") ? gateway.token : undefined);
      for (const c of clients) if (!(await echo(c))) throw new Error(`${LABELS[key]}: echo did not answer "Echo: ${MESSAGE}"`);
      targets.push({ key, url, clients });
      say(`${LABELS[key]}: ${clients.length} sessions open (${Date.now() - t0} ms)`);
    }

    // Warm-up: JIT, connection pools, the database's caches. Not measured.
    for (const t of targets) await runLoad(t.clients, Math.min(1.5, SECONDS), new LatencySamples());
    say("warmed up");

    const meterDb = new pg.Client({ connectionString: db.url });
    await meterDb.connect();
    const meter = new CpuMeter(meterDb, upstream.child.proc.pid!, gateway.child.proc.pid!, relay.child.proc.pid!);
    const perRound = new Map<string, RunResult[]>();
    const pooled = new Map<string, LatencySamples>();
    const k = (t: TargetKey, c: number) => `${t}@${c}`;
    for (let round = 0; round < ROUNDS; round++) {
      // Rotate the order each round so no configuration always runs first (or last).
      const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
      for (const c of CONCURRENCIES) {
        for (const t of order) {
          const samples = pooled.get(k(t.key, c)) ?? new LatencySamples();
          pooled.set(k(t.key, c), samples);
          const before = await meter.snapshot();
          const r = await runLoad(t.clients.slice(0, c), SECONDS, samples);
          r.cpu = meter.perCall(before, await meter.snapshot(), t.key, r.calls);
          (perRound.get(k(t.key, c)) ?? perRound.set(k(t.key, c), []).get(k(t.key, c))!).push(r);
          say(
            `round ${round + 1}/${ROUNDS} c=${String(c).padEnd(2)} ${LABELS[t.key].padEnd(24)} ${r.rps.toFixed(0).padStart(5)} rps  p50 ${fmt2(r.p50)} ms  p99 ${fmt2(r.p99)} ms${r.errors ? `  ${r.errors} errors` : ""}`,
          );
        }
      }
    }

    // Round-by-round comparisons (against direct and against the peer relay), then the median over rounds.
    const rounds = (t: TargetKey, c: number) => perRound.get(k(t, c)) ?? [];
    const perRoundRatio = (t: TargetKey, base: TargetKey, c: number) => rounds(t, c).map((r, i) => r.rps / (rounds(base, c)[i]?.rps ?? Number.NaN));
    const addedP50PerRound = (t: TargetKey) => rounds(t, 1).map((r, i) => r.p50 - (rounds("direct", 1)[i]?.p50 ?? Number.NaN));
    // The CPU a proxy spends per call: its own process and, for the gateway, its PostgreSQL backends.
    const proxyCpu = (r: RunResult) => r.cpu!.gateway + r.cpu!.postgres;
    const cpuRatioPerRound = (t: TargetKey, c: number) => rounds(t, c).map((r, i) => proxyCpu(r) / proxyCpu(rounds("mcp_proxy_stdio", c)[i] ?? r));
    const hasRelay = targets.some((t) => t.key === "mcp_proxy_stdio");
    // A 2026 stateless request against a session's request, to the same stdio connection, round by round.
    const statelessVsSessionP50PerRound = rounds("gateway_stdio_stateless", 1).map((r, i) => r.p50 - (rounds("gateway_stdio", 1)[i]?.p50 ?? Number.NaN));
    const comparisons = targets.filter((t) => t.key.startsWith("gateway")).map(({ key: t }) => ({
      target: t,
      rpsRatioC32VsDirect: median(perRoundRatio(t, "direct", 32)),
      rpsRatioC32VsProxy: hasRelay ? median(perRoundRatio(t, "mcp_proxy_stdio", 32)) : Number.NaN,
      rpsRatioC32VsProxyPerRound: hasRelay ? perRoundRatio(t, "mcp_proxy_stdio", 32) : [],
      cpuRatioC1VsProxy: hasRelay ? median(cpuRatioPerRound(t, 1)) : Number.NaN,
      cpuRatioC1VsProxyPerRound: hasRelay ? cpuRatioPerRound(t, 1) : [],
      addedP50MsC1: median(addedP50PerRound(t)),
      addedP50MsC1PerRound: addedP50PerRound(t),
    }));

    const rows = targets.flatMap((t) =>
      CONCURRENCIES.map((c) => {
        const rs = rounds(t.key, c);
        const pooledSummary = pooled.get(k(t.key, c))!.summary();
        return {
          target: t.key,
          concurrency: c,
          rps: median(rs.map((r) => r.rps)),
          p50: pooledSummary.p50,
          p90: pooledSummary.p90,
          p99: pooledSummary.p99,
          calls: rs.reduce((n, r) => n + r.calls, 0),
          errors: rs.reduce((n, r) => n + r.errors, 0),
          cpuMsPerCall: {
            client: median(rs.map((r) => r.cpu!.client)),
            upstream: median(rs.map((r) => r.cpu!.upstream)),
            gateway: median(rs.map((r) => r.cpu!.gateway)),
            postgres: median(rs.map((r) => r.cpu!.postgres)),
          },
        };
      }),
    );

    await meterDb.end();
    for (const t of targets) await Promise.all(t.clients.map((c) => c.close().catch(() => {})));
    targets.length = 0;
    await gateway.child.stop(15_000);
    const recorded = await countRecorded(db.url);

    const result = {
      node: process.version,
      cores: cpus().length,
      rounds: ROUNDS,
      secondsPerRun: SECONDS,
      synchronousCommit: !args["async-commit"],
      tool: "echo",
      results: rows,
      comparisons,
      statelessVsSessionAddedP50MsC1: median(statelessVsSessionP50PerRound),
      targets: {
        rpsRatioC32VsProxyAtLeast: TARGET_RPS_RATIO_VS_PROXY,
        cpuRatioC1VsProxyAtMost: TARGET_CPU_RATIO_VS_PROXY,
        addedP50MsC1AtMostForHttp: TARGET_ADDED_P50_MS,
      },
      recorded,
      totalSeconds: (Date.now() - benchStarted) / 1000,
      loadAverage: { start: loadAtStart, end: loadavg()[0]! },
    };
    if (args.json) {
      process.stdout.write(JSON.stringify(result, null, 2) + "\n");
    } else {
      const table = renderTable(
        ["configuration", "c", "rps", "p50 ms", "p90 ms", "p99 ms", "calls", "errors"],
        rows.map((r) => [LABELS[r.target], String(r.concurrency), r.rps.toFixed(0), fmt2(r.p50), fmt2(r.p90), fmt2(r.p99), String(r.calls), String(r.errors)]),
        [false, true, true, true, true, true, true, true],
      );
      const cpuTable = renderTable(
        ["configuration", "c", "client", "upstream", "proxy", "postgres", "total"],
        rows.map((r) => {
          const u = r.cpuMsPerCall;
          const direct = r.target === "direct";
          return [LABELS[r.target], String(r.concurrency), fmt2(u.client), fmt2(u.upstream), direct ? "-" : fmt2(u.gateway), r.target.startsWith("gateway") ? fmt2(u.postgres) : "-", fmt2(u.client + u.upstream + (direct ? 0 : u.gateway + u.postgres))];
        }),
        [false, true, true, true, true, true, true],
      );
      const verdict = (ok: boolean) => (ok ? "meets target" : "MISSES target");
      const lines = [
        `tools/call echo on server-everything — ${ROUNDS} rounds × ${SECONDS} s, interleaved; node ${process.version}, ${cpus().length} cores`,
        ...(args["async-commit"] ? ["DIAGNOSTIC RUN: synchronous_commit = off (records are not durable): not a valid measurement of the gateway"] : []),
        `rps: median over rounds; p50/p90/p99: all calls of all rounds (client-side, process.hrtime)`,
        "",
        table,
        "",
        ...comparisons.flatMap((c) => [
          `${LABELS[c.target]}:`,
          ...(hasRelay ? [] : ["  (mcp-proxy not in this run: no comparison with it)"]),
          ...(hasRelay
            ? [
                `  rps at c=32 vs mcp-proxy → stdio: ${fmt2(c.rpsRatioC32VsProxy)}× ${spreadOf(c.rpsRatioC32VsProxyPerRound)}` +
                  (c.target !== "gateway_http" ? ` (target ≥ ${TARGET_RPS_RATIO_VS_PROXY}×: ${verdict(c.rpsRatioC32VsProxy >= TARGET_RPS_RATIO_VS_PROXY)})` : ""),
                `  CPU per call at c=1 (proxy + its PostgreSQL) vs mcp-proxy's: ${fmt2(c.cpuRatioC1VsProxy)}× ${spreadOf(c.cpuRatioC1VsProxyPerRound)} (target ≤ ${TARGET_CPU_RATIO_VS_PROXY}×: ${verdict(c.cpuRatioC1VsProxy <= TARGET_CPU_RATIO_VS_PROXY)})`,
              ]
            : []),
          `  added p50 over direct at c=1: ${fmt2(c.addedP50MsC1)} ms ${spreadOf(c.addedP50MsC1PerRound)}` +
            (c.target === "gateway_http" ? ` (target ≤ ${TARGET_ADDED_P50_MS} ms: ${verdict(c.addedP50MsC1 <= TARGET_ADDED_P50_MS)})` : ""),
          `  rps at c=32 vs direct: ${fmt2(c.rpsRatioC32VsDirect)}×`,
        ]),
        `  (each figure: the median over rounds of a comparison made within one round, [min–max] over rounds; stdio is compared with the HTTP direct run)`,
        ...(statelessVsSessionP50PerRound.length > 0
          ? [`2026 stateless request vs session request (stdio, c=1): p50 ${fmt2(median(statelessVsSessionP50PerRound))} ms added ${spreadOf(statelessVsSessionP50PerRound)}`]
          : []),
        "",
        `CPU time per call in ms (median over rounds; from /proc, so other work on the machine is not counted):`,
        cpuTable,
        "",
        `recorded in PostgreSQL during the run: ${recorded.messages} messages, ${recorded.sessions} sessions`,
        `total time ${result.totalSeconds.toFixed(0)} s; 1-minute load average ${fmt2(result.loadAverage.start)} at start, ${fmt2(result.loadAverage.end)} at end (${cpus().length} cores${result.loadAverage.start > cpus().length || result.loadAverage.end > cpus().length ? ": other work competed for the CPU, so absolute figures are inflated" : ""})`,
      ];
      process.stdout.write(lines.join("\n") + "\n");
    }
  } finally {
    for (const t of targets) await Promise.all(t.clients.map((c) => c.close().catch(() => {})));
    await gateway.child.stop(15_000);
    await upstream.child.stop();
    await relay.child.stop();
    await db.drop().catch((err) => say(`could not drop ${db.name}: ${String(err)}`));
  }
}

/** "[min–max]" of a comparison's per-round values: the spread the median hides. */
function spreadOf(values: number[]): string {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return "";
  return `[${fmt2(Math.min(...finite))}–${fmt2(Math.max(...finite))}]`;
}

async function countRecorded(url: string): Promise<{ messages: number; sessions: number }> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const m = await c.query<{ n: string }>("SELECT count(*) AS n FROM messages");
    const s = await c.query<{ n: string }>("SELECT count(*) AS n FROM sessions");
    return { messages: Number(m.rows[0]!.n), sessions: Number(s.rows[0]!.n) };
  } finally {
    await c.end();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    say(`failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    process.exit(1);
  },
);
