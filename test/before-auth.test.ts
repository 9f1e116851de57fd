// Before authentication the gateway reads nothing: an unauthenticated POST is answered 401 with
// `Connection: close` and its body is never read (60 bodies of 4 MiB do not grow memory), and a
// request whose body trickles in is cut after the request timeout.
import { request } from "node:http";
import { connect } from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "./helpers/postgres.js";
import { loggingServerStdio } from "./helpers/process.js";

let db: TestDatabase;
let gw: TestGateway;

beforeAll(async () => {
  db = await createTestDatabase();
  gw = await startTestGateway(db.url, {
    auth: { issuers: [{ issuer: "https://idp.example.invalid" }] },
    limits: { requestTimeoutMs: 4000, requestHeadersTimeoutMs: 4000 },
    connections: [
      { name: "private", access: { anonymous: false }, upstream: loggingServerStdio("/dev/null") },
      { name: "open", upstream: loggingServerStdio("/dev/null") },
    ],
  });
});
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
});

/** POSTs `body` without a token; resolves with the status and the Connection header, or the socket error. */
function unauthenticatedPost(path: string, body: Buffer): Promise<{ status?: number; connection?: string | undefined; error?: string }> {
  return new Promise((resolve) => {
    const u = new URL(path, gw.address);
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: "POST", headers: { "content-type": "application/json", "content-length": body.length } }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode!, connection: res.headers.connection }));
    });
    req.on("error", (err) => resolve({ error: err.message }));
    req.end(body);
  });
}

it("60 unauthenticated 4 MiB bodies: each gets 401 with Connection: close, and the gateway reads none of them", async () => {
  const body = Buffer.alloc(4 * 1024 * 1024 - 1024, 0x20); // one buffer, shared by every request
  global.gc?.();
  const before = process.memoryUsage().rss;
  const results = await Promise.all(Array.from({ length: 60 }, () => unauthenticatedPost("/mcp/private", body)));
  const after = process.memoryUsage().rss;
  console.log(`60 unauthenticated 4 MiB bodies: RSS ${(before / 2 ** 20).toFixed(0)} → ${(after / 2 ** 20).toFixed(0)} MB`);
  for (const r of results) {
    // The answer may come before the client has finished sending; the socket then closes under it.
    if (r.status !== undefined) {
      expect(r.status).toBe(401);
      expect(r.connection).toBe("close");
    } else expect(r.error).toMatch(/EPIPE|ECONNRESET|socket hang up/);
  }
  expect(results.filter((r) => r.status === 401).length).toBeGreaterThan(0);
  // Reading them would hold 60 × 4 MiB (and more, as strings).
  expect(after - before).toBeLessThan(40 * 2 ** 20);
});

it("the 401 comes without reading the body: a request that never sends its body is still answered", async () => {
  const u = new URL(gw.address);
  const socket = connect(Number(u.port), u.hostname);
  let text = "";
  socket.on("data", (d) => (text += d.toString()));
  socket.on("error", () => {});
  socket.write(`POST /mcp/private HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 4000000\r\n\r\n{"jsonrpc":`);
  await expect.poll(() => text, { timeout: 5000 }).toMatch(/^HTTP\/1\.1 401/);
  expect(text.toLowerCase()).toContain("connection: close");
  await expect.poll(() => socket.closed || socket.readableEnded, { timeout: 5000 }).toBe(true);
  socket.destroy();
});

it("a body that trickles in is cut after the request timeout", async () => {
  const u = new URL(gw.address);
  const socket = connect(Number(u.port), u.hostname);
  let text = "";
  let closed = false;
  socket.on("data", (d) => (text += d.toString()));
  socket.on("close", () => (closed = true));
  socket.on("error", () => {});
  // An anonymous connection: authenticated at once, so the body is awaited (and must arrive in time).
  socket.write(`POST /mcp/open HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 1000\r\n\r\n{"jsonrpc":`);
  const started = Date.now();
  const drip = setInterval(() => socket.writable && socket.write(" "), 200);
  try {
    await expect.poll(() => closed, { timeout: 10_000 }).toBe(true);
  } finally {
    clearInterval(drip);
  }
  console.log(`slow body cut after ${Date.now() - started} ms (request timeout 4000 ms): ${text.split("\r\n")[0] || "(closed)"}`);
  expect(text).toMatch(/^HTTP\/1\.1 408/);
});
