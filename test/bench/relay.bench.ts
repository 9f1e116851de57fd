// What a relay between replicas costs: tools/call `echo` on one session (server-everything over
// stdio, callers authenticated with dev-issuer JWTs, every message committed to PostgreSQL), sent
// either to the replica that holds the session (direct) or to the other one, which relays it
// (relayed). One call at a time; the two are interleaved over short rounds and compared round by
// round, as the machine is small and noisy.
//
//   npx tsx test/bench/relay.bench.ts [--rounds N] [--calls N]
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { devIssuerUrl, loadDevIssuerKey, signDevToken } from "../../gateway/auth/dev-issuer.js";
import { freePort, killGateway, startGatewayProcess, writeGatewayConfig, type GatewayProcess } from "../helpers/process.js";
import { createMigratedDatabase, EVERYTHING, fmt2, median, percentile, renderTable } from "./lib.js";

const { values: args } = parseArgs({ options: { rounds: { type: "string", default: "5" }, calls: { type: "string", default: "200" } } });
const ROUNDS = Number(args.rounds);
const CALLS = Number(args.calls);
const PUBLIC_URL = "http://countersign.bench";

const dir = mkdtempSync(join(tmpdir(), "countersign-relay-bench-"));
const db = await createMigratedDatabase("relay_bench");
const gateways: GatewayProcess[] = [];
try {
  writeFileSync(join(dir, "secret"), "relay-bench-secret-0123456789abcdefghij\n");
  const key = await loadDevIssuerKey(join(dir, "dev-issuer.jwk"));
  const token = await signDevToken(key, devIssuerUrl(PUBLIC_URL), { subject: "bench", groups: ["bench"], audience: [`${PUBLIC_URL}/mcp/everything`], ttlSeconds: 3600 });
  for (const name of ["owner", "other"]) {
    const file = writeGatewayConfig(join(dir, `${name}.yaml`), {
      publicUrl: PUBLIC_URL,
      log: { level: "warn" },
      auth: { devIssuer: { enabled: true, keyFile: join(dir, "dev-issuer.jwk") } },
      cluster: { internalPort: await freePort(), internalHost: "127.0.0.1", secret: { file: join(dir, "secret") } },
      connections: [{ name: "everything", access: {}, upstream: { type: "stdio", command: process.execPath, args: [EVERYTHING, "stdio"] } }],
    });
    gateways.push(await startGatewayProcess(file, db.url));
  }
  const [owner, other] = gateways as [GatewayProcess, GatewayProcess];

  const headers: Record<string, string> = { authorization: `Bearer ${token}`, "content-type": "application/json", accept: "application/json, text/event-stream;q=0.1" };
  const init = await fetch(owner.mcpUrl("everything"), {
    method: "POST",
    headers,
    body: JSON.stringify({ jsonrpc: "2.0", id: 0, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "bench", version: "1" } } }),
  });
  await init.text();
  headers["mcp-session-id"] = init.headers.get("mcp-session-id")!;
  headers["mcp-protocol-version"] = "2025-06-18";

  let id = 1;
  const call = async (p: GatewayProcess): Promise<number> => {
    const started = performance.now();
    const res = await fetch(p.mcpUrl("everything"), {
      method: "POST",
      headers,
      body: JSON.stringify({ jsonrpc: "2.0", id: id++, method: "tools/call", params: { name: "echo", arguments: { message: "relay-bench" } } }),
    });
    const text = await res.text();
    if (res.status !== 200 || !text.includes("relay-bench")) throw new Error(`call failed: ${res.status} ${text.slice(0, 200)}`);
    return performance.now() - started;
  };
  const run = async (p: GatewayProcess) => {
    const ms: number[] = [];
    for (let i = 0; i < CALLS; i++) ms.push(await call(p));
    return ms.sort((a, b) => a - b);
  };
  for (let i = 0; i < 50; i++) await call(i % 2 ? owner : other); // warm-up

  const rows: string[][] = [];
  const added: number[] = [];
  for (let r = 1; r <= ROUNDS; r++) {
    const direct = await run(owner);
    const relayed = await run(other);
    const [d50, r50] = [percentile(direct, 50), percentile(relayed, 50)];
    added.push(r50 - d50);
    rows.push([String(r), fmt2(d50), fmt2(percentile(direct, 99)), fmt2(r50), fmt2(percentile(relayed, 99)), fmt2(r50 - d50)]);
  }
  process.stdout.write(`${CALLS} sequential tools/call per run, ${ROUNDS} rounds (ms)\n`);
  process.stdout.write(renderTable(["round", "direct p50", "direct p99", "relayed p50", "relayed p99", "added p50"], rows, [false, true, true, true, true, true]) + "\n");
  process.stdout.write(`median added latency of a relay (p50): ${fmt2(median(added))} ms\n`);
} finally {
  for (const g of gateways) await killGateway(g);
  await db.drop();
  rmSync(dir, { recursive: true, force: true });
}
