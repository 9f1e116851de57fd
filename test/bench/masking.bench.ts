/**
 * Masking throughput and added latency.
 * - MB/s on ~1 MB JSON-RPC tool results of four shapes: rows as JSON text in a text content
 *   item (the common MCP shape), the same rows as structuredContent, 1 MB of log text, and prose
 *   in 400 text items; each with some personal data and credentials in it, and without any.
 * - Microseconds added to a small (~400 byte) tool result.
 * Single thread, so MB/s is per core. Target: >= 50 MB/s.
 *
 * `--engine <dir>` measures another copy of gateway/masking (say, the previous commit's, from
 * `git archive`) in the same process and prints both side by side: on a shared machine only
 * figures taken under the same load compare.
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { createMasker, type MaskerOptions } from "../../gateway/masking/index.js";

const MASKER_OPTIONS: MaskerOptions = { fields: [{ path: "$..ssn" }] };
const masker = createMasker(MASKER_OPTIONS);
const engineArg = process.argv.indexOf("--engine");
const other = engineArg > 0 ? (await import(pathToFileURL(resolve(process.argv[engineArg + 1]!, "index.ts")).href) as { createMasker: typeof createMasker }).createMasker : undefined;
const TARGET_MBPS = 50;

let seed = 42;
const rand = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

function row(i: number, secrets: boolean): Record<string, unknown> {
  const r: Record<string, unknown> = {
    id: 100000 + i,
    uuid: `f47ac10b-58cc-4372-a567-${String(i).padStart(12, "0")}`,
    name: pick(["Jane Doe", "Bo Li", "Ana Ruiz", "Kofi Mensah"]),
    status: pick(["active", "pending", "closed"]),
    created_at: `2024-0${1 + (i % 9)}-1${i % 10}T10:2${i % 10}:00Z`,
    amount: Math.round(rand() * 100000) / 100,
    note: pick(["renewal due next month", "customer asked for invoice copy", "shipped via DHL, tracking 1Z999AA10123456784", "version 2.4.1 deployed"]),
    tags: ["crm", pick(["eu", "us", "apac"])],
  };
  if (!secrets) return r;
  if (i % 40 === 0) r.email = `user${i}@example.com`;
  if (i % 97 === 0) r.api_key = `sk_live_${"4eC39HqLyjWDarjtT1zdp7dc"}`;
  if (i % 131 === 0) r.ssn = "123-45-6789";
  return r;
}

function rowsOfSize(bytes: number, secrets: boolean): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  let size = 2;
  for (let i = 0; size < bytes; i++) {
    const r = row(i, secrets);
    rows.push(r);
    size += JSON.stringify(r).length + 1;
  }
  return rows;
}

function logOfSize(bytes: number, secrets: boolean): string {
  const lines: string[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const line = `2024-05-01T10:22:${String(i % 60).padStart(2, "0")}.412Z INFO req=${(i * 7919).toString(16)} GET /api/v1/items/${i} 200 ${i % 300}ms` +
      (secrets && i % 50 === 0 ? ` client=10.0.${i % 255}.${(i * 3) % 255}` : "") + (secrets && i % 200 === 0 ? ` user=jane${i}@example.com` : "");
    lines.push(line);
    size += line.length + 1;
  }
  return lines.join("\n");
}

const MB = 1_000_000;
const shapes: Record<string, unknown> = {};
for (const secrets of [true, false]) {
  const rows = rowsOfSize(MB, secrets);
  const label = secrets ? "with secrets" : "clean";
  shapes[`rows as JSON text, ${label}`] = { jsonrpc: "2.0", id: 7, result: { content: [{ type: "text", text: JSON.stringify(rows) }] } };
  shapes[`rows as structuredContent, ${label}`] = { jsonrpc: "2.0", id: 7, result: { content: [], structuredContent: { rows } } };
  shapes[`log text, ${label}`] = { jsonrpc: "2.0", id: 7, result: { content: [{ type: "text", text: logOfSize(MB, secrets) }] } };
  // Prose in 400 text items: each item scanned, and each boundary between two for split secrets.
  const paragraph = "The deployment finished at 10:22 after 3 retries; version 2.4.1 is live in eu-west-1 and the on-call engineer confirmed the dashboards. ".repeat(19);
  const items = Array.from({ length: 400 }, (_, i) => ({ type: "text", text: secrets && i % 20 === 0 ? `${paragraph}Escalate to ops${i}@example.com, key sk_live_4eC39HqLyjWDarjtT1zdp7dc.` : paragraph }));
  shapes[`400 text items, ${label}`] = { jsonrpc: "2.0", id: 7, result: { content: items } };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

interface Figures {
  cpuMs: number;
  wallMs: number;
  hits: Record<string, number>;
}

/**
 * Median CPU and wall milliseconds of 9 runs per engine, each run with a masker that remembers
 * nothing and a freshly parsed copy of the message; engines take turns run by run, so both see
 * the same load.
 */
function measure(creates: ReadonlyArray<typeof createMasker>, message: unknown): Figures[] {
  for (const create of creates) for (let i = 0; i < 3; i++) create(MASKER_OPTIONS).maskMessage(JSON.parse(JSON.stringify(message))); // warm-up
  const runs = creates.map(() => ({ times: [] as number[], cpuTimes: [] as number[], hits: {} as Record<string, number> }));
  for (let i = 0; i < 9; i++) {
    creates.forEach((create, e) => {
      // Repeated runs over the same strings would flatter the verdict cache.
      const coldMasker = create(MASKER_OPTIONS);
      const fresh: unknown = JSON.parse(JSON.stringify(message));
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      runs[e]!.hits = coldMasker.maskMessage(fresh).hits;
      runs[e]!.times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      const c = process.cpuUsage(c0);
      runs[e]!.cpuTimes.push((c.user + c.system) / 1000);
    });
  }
  return runs.map((r) => ({ cpuMs: median(r.cpuTimes), wallMs: median(r.times), hits: r.hits }));
}

const results: string[] = [];
let belowTarget = false;
for (const [name, message] of Object.entries(shapes)) {
  const mb = Buffer.byteLength(JSON.stringify(message)) / MB;
  // Per core: bytes per CPU-second of this thread (wall time also shown; it suffers from other load on the machine).
  const [now, was] = measure(other ? [createMasker, other] : [createMasker], message);
  const mbps = mb / (now!.cpuMs / 1000);
  if (mbps < TARGET_MBPS) belowTarget = true;
  let line = `${name.padEnd(39)} ${mb.toFixed(2)} MB  cpu ${now!.cpuMs.toFixed(1).padStart(5)} ms  ${mbps.toFixed(0).padStart(4)} MB/s per core  (wall ${(mb / (now!.wallMs / 1000)).toFixed(0).padStart(3)})`;
  if (was) {
    line += `  was ${(mb / (was.cpuMs / 1000)).toFixed(0).padStart(4)} MB/s  ${(was.cpuMs / now!.cpuMs).toFixed(2)}x`;
    if (JSON.stringify(was.hits) !== JSON.stringify(now!.hits)) line += `  HITS DIFFER: was ${JSON.stringify(was.hits)}`;
  }
  results.push(`${line}  hits ${JSON.stringify(now!.hits)}`);
}

const small = {
  jsonrpc: "2.0",
  id: 3,
  result: {
    content: [{ type: "text", text: JSON.stringify({ id: 48213, name: "Jane Doe", email: "jane.doe@example.com", status: "active", updated: "2024-05-01T10:22:13Z", note: "called about invoice 2024-000123" }, null, 2) }],
    isError: false,
  },
};
for (let i = 0; i < 2000; i++) masker.maskMessage(small);
const smallTimes: number[] = [];
for (let round = 0; round < 7; round++) {
  const n = 5000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) masker.maskMessage(small);
  smallTimes.push(Number(process.hrtime.bigint() - t0) / 1e3 / n);
}

console.log(`masking throughput (one thread, median of 9 runs; target >= ${TARGET_MBPS} MB/s per core${other ? "; was: the engine given by --engine" : ""})`);
console.log(`  load average ${(await import("node:os")).loadavg().map((x) => x.toFixed(1)).join(" ")} on ${(await import("node:os")).cpus().length} cores`);
for (const r of results) console.log("  " + r);
console.log(`added latency on a small result (${Buffer.byteLength(JSON.stringify(small))} bytes): median ${median(smallTimes).toFixed(1)} µs per message`);
if (belowTarget) console.log(`below target: at least one shape under ${TARGET_MBPS} MB/s`);
