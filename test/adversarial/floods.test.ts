// The floods of the hardening report, against a gateway in its own process (so its RSS is its
// own): 60 unauthenticated 4 MiB bodies (they were read before the token was checked, RSS 205 →
// 384 MB), then 3,000 random method names through a session (they became metric labels: /metrics
// grew to 34 MB and 117,000 series). The figures are printed for the record; the assertions are
// on what must not grow with the flood: no body is read, no method name becomes a label.
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { killGateway, loggingServerStdio, startGatewayProcess, writeGatewayConfig, type GatewayProcess } from "../helpers/process.js";
import { rawInitialize, rawPost } from "../helpers/upstreams.js";

let db: TestDatabase;
let gw: GatewayProcess;
let scratch: string;
const figures: Array<[string, string]> = [];

const rssMb = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${gw.pid}/status`, "utf8"))![1]) / 1024;

function unauthenticatedPost(path: string, body: Buffer): Promise<{ status?: number; error?: string }> {
  return new Promise((resolve) => {
    const u = new URL(path, gw.url);
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: "POST", headers: { "content-type": "application/json", "content-length": body.length } }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode! }));
    });
    req.on("error", (err) => resolve({ error: err.message }));
    req.end(body);
  });
}

beforeAll(async () => {
  db = await createTestDatabase();
  scratch = mkdtempSync(join(tmpdir(), "cs-floods-"));
  const config = writeGatewayConfig(join(scratch, "countersign.yaml"), {
    auth: { issuers: [{ issuer: "https://idp.example.invalid" }] },
    connections: [
      { name: "private", access: { anonymous: false }, upstream: loggingServerStdio("/dev/null") },
      { name: "open", access: { anonymous: true }, upstream: loggingServerStdio("/dev/null") },
    ],
  });
  gw = await startGatewayProcess(config, db.url, { timeoutMs: 60_000 });
});
afterAll(async () => {
  console.log(`\nfloods, gateway process ${gw?.pid}:\n${figures.map(([k, v]) => `  ${k.padEnd(44)} ${v}`).join("\n")}`);
  await killGateway(gw);
  await db?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

it("60 unauthenticated 4 MiB bodies are refused unread", async () => {
  const before = rssMb();
  const body = Buffer.alloc(4 * 1024 * 1024 - 1024, 0x20);
  const results = await Promise.all(Array.from({ length: 60 }, () => unauthenticatedPost("/mcp/private", body)));
  const after = rssMb();
  figures.push(["RSS before / after 60 × 4 MiB unauthenticated", `${before.toFixed(0)} MB → ${after.toFixed(0)} MB`]);
  for (const r of results) {
    if (r.status !== undefined) expect(r.status).toBe(401);
    else expect(r.error).toMatch(/EPIPE|ECONNRESET|socket hang up/);
  }
  // Reading them would hold at least 240 MiB.
  expect(after - before).toBeLessThan(60);
});

it("3,000 random method names become no metric label", async () => {
  const scrape = async () => (await fetch(`${gw.url}/metrics`)).text();
  const seriesOf = (text: string) => text.split("\n").filter((l) => l && !l.startsWith("#")).length;
  const first = await scrape();
  const before = rssMb();
  // 2025-03-26 allows batches: 30 POSTs of 100 requests, each with a method no one has seen.
  const s = await rawInitialize(`${gw.url}/mcp/open`, "2025-03-26");
  const names: string[] = [];
  for (let b = 0; b < 30; b++) {
    const batch = Array.from({ length: 100 }, (_, i) => {
      const method = `flood/${randomBytes(6).toString("hex")}`;
      names.push(method);
      return { jsonrpc: "2.0", id: b * 100 + i + 1, method };
    });
    const res = await rawPost(`${gw.url}/mcp/open`, JSON.stringify(batch), s.headers);
    expect(res.status).toBe(200);
    expect(res.messages).toHaveLength(100);
  }
  const text = await scrape();
  const after = rssMb();
  figures.push(["/metrics before the names", `${first.length} bytes, ${seriesOf(first)} series`]);
  figures.push(["/metrics after 3,000 random method names", `${text.length} bytes, ${seriesOf(text)} series`]);
  figures.push(["RSS before / after 3,000 method names", `${before.toFixed(0)} MB → ${after.toFixed(0)} MB`]);
  expect(names.filter((n) => text.includes(n))).toEqual([]);
  expect(text).toContain('method="other"');
  // The growth is the fixed set of series the traffic touched, not one per name.
  expect(seriesOf(text) - seriesOf(first)).toBeLessThan(200);
}, 300_000); // 3,000 recorded round trips on two shared cores
