// DNS rebinding and foreign origins, over plain HTTP against a real gateway on loopback with an
// anonymous connection: every spelling of a Host that names the gateway passes, every other one
// (another name, the loopback name as a suffix, user info, bad ports, unbracketed IPv6…) is refused
// with 403 CS_ERR_HOST_NOT_ALLOWED before any session exists, and recorded; the same for Origin.
// A client that sends no Origin (every non-browser client) is unaffected.
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostOriginCheck, normaliseOrigin, parseHostHeader } from "../../gateway/mcp/front/host-origin.js";
import { startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { freePort } from "../helpers/upstreams.js";

const SERVER = new URL("../fixtures/logging-server.mjs", import.meta.url).pathname;
const INIT = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } } });

let db: TestDatabase;
let gw: TestGateway;
let port: number;

/** A POST with exactly these Host and Origin headers (fetch would not let a test choose Host). */
function post(path: string, headers: Record<string, string>, body = INIT): Promise<{ status: number; text: string; sessionId?: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, path, method: "POST", setHost: false, headers: { "content-type": "application/json", accept: "application/json, text/event-stream", "content-length": Buffer.byteLength(body), ...headers } },
      (res) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text, ...(typeof res.headers["mcp-session-id"] === "string" ? { sessionId: res.headers["mcp-session-id"] } : {}) }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** Refusals recorded for a reason, counting the aggregated events of a flood. */
async function recorded(reason: string): Promise<number> {
  const rows = await gw.db.event.findMany({ where: { type: "message_rejected", reason } });
  return rows.reduce((n, r) => n + ((r.detail as { count?: number }).count ?? 1), 0);
}

beforeAll(async () => {
  db = await createTestDatabase();
  port = await freePort();
  gw = await startTestGateway(db.url, {
    server: { host: "127.0.0.1", port, allowedOrigins: ["https://app.example.com"] },
    publicUrl: `http://127.0.0.1:${port}`,
    connections: [{ name: "open", upstream: { type: "stdio", command: process.execPath, args: [SERVER] }, access: { anonymous: true } }],
  });
});
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
});

describe("Host on a loopback bind", () => {
  const allowed = () => [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, `LocalHost.:${port}`, `[::1]:${port}`, "localhost", "127.0.0.2:1"];
  const refused = () => [
    `evil.test:${port}`, "EVIL.test", "evil.test.", `localhost.evil.test:${port}`, `127.0.0.1.nip.io:${port}`, `evil.localhost:${port}`,
    `localhost:${port}@evil.test`, "localhost:abc", `localhost:${port}:1`, "localhost:99999", `[::1`, "::1", `[::1]x`, `[::ffff:7f00:1]:${port}`,
    "localhost%2e", "local host", `evil.test, localhost:${port}`, "0x7f.0.0.1", "2130706433", `127.0.0.1/..:${port}`,
  ];

  it("each spelling of a loopback name opens a session", async () => {
    for (const host of allowed()) {
      const res = await post("/mcp/open", { host });
      expect(res.status, host).toBe(200);
      expect(res.sessionId, host).toBeTruthy();
    }
  });

  it("every other Host is refused 403 before a session exists, and recorded", async () => {
    const before = await gw.db.session.count();
    const hosts = refused();
    for (const host of hosts) {
      const res = await post("/mcp/open", { host });
      expect(res.status, host).toBe(403);
      expect(JSON.parse(res.text).error.data.code, host).toBe("CS_ERR_HOST_NOT_ALLOWED");
    }
    // The other MCP routes too: the legacy SSE stream and its message endpoint, an unknown connection.
    expect((await post("/sse/open/message?sessionId=x", { host: "evil.test" })).status).toBe(403);
    expect((await post("/mcp/nope", { host: "evil.test" })).status).toBe(403);
    // Escaped or doubled spellings of the path either are the route (and checked) or are no route.
    let refusedPaths = 0;
    for (const path of ["/%6Dcp/open", "/mcp/%6Fpen", "//mcp/open", "/mcp//open", "/mcp/open?x=/", "/./mcp/open", "/mcp/open/"]) {
      const res = await post(path, { host: "evil.test" });
      expect([403, 404], `${path}: ${res.status}`).toContain(res.status);
      expect(res.sessionId, path).toBeUndefined();
      if (res.status === 403) refusedPaths++;
    }
    expect(await gw.db.session.count()).toBe(before);
    await expect.poll(() => recorded("host_not_allowed")).toBe(hosts.length + 2 + refusedPaths);
  });

  it("health and metrics endpoints are not affected (probes use the pod's address)", async () => {
    const res = await new Promise<number>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port, path: "/healthz", setHost: false, headers: { host: "10.0.0.7:8080" } }, (r) => (r.resume(), resolve(r.statusCode ?? 0)));
      req.on("error", reject).end();
    });
    expect(res).toBe(200);
  });
});

describe("Origin", () => {
  const host = () => `127.0.0.1:${port}`;
  it("no Origin (a client that is not a browser), the gateway's own origin and allowedOrigins pass, in any spelling", async () => {
    for (const origin of [undefined, `http://127.0.0.1:${port}`, `HTTP://127.0.0.1:${port}`, "https://app.example.com", "https://APP.example.com", "https://app.example.com:443", "https://app.example.com.", "https://app.example.com/"]) {
      const res = await post("/mcp/open", { host: host(), ...(origin === undefined ? {} : { origin }) });
      expect(res.status, origin).toBe(200);
    }
  });

  it("every other Origin is refused 403 and recorded", async () => {
    const before = await gw.db.session.count();
    const origins = [
      "null", "http://evil.test", `http://evil.test:${port}`, "https://app.example.com:8443", "http://app.example.com", "https://app.example.com.evil.test",
      `http://127.0.0.1:${port + 1}`, `http://localhost:${port}`, `http://[::1]:${port}`, "https://app.example.com/page", "https://user@app.example.com",
      "file://", "chrome-extension://abcdef", "https://app.example.com, http://evil.test", "app.example.com", "",
    ];
    for (const origin of origins) {
      const res = await post("/mcp/open", { host: host(), origin });
      expect(res.status, origin).toBe(403);
      expect(JSON.parse(res.text).error.data.code, origin).toBe("CS_ERR_ORIGIN_NOT_ALLOWED");
    }
    expect(await gw.db.session.count()).toBe(before);
    await expect.poll(() => recorded("origin_not_allowed")).toBe(origins.length);
  });
});

describe("the check itself, off loopback", () => {
  const check = hostOriginCheck({ bindHost: "0.0.0.0", publicUrl: "https://mcp.example.com", allowedHosts: ["gw.internal:8080", "countersign.tools.svc"], allowedOrigins: ["https://app.example.com:8443"] });
  const code = (host: string, origin?: string) => check.refusal(host, origin)?.code ?? "ok";

  it("allows publicUrl's host (any port) and allowedHosts, and no loopback name", () => {
    for (const h of ["mcp.example.com", "MCP.Example.com", "mcp.example.com.", "mcp.example.com:443", "gw.internal:8080", "countersign.tools.svc:8080", "countersign.tools.svc"]) expect(code(h), h).toBe("ok");
    for (const h of ["localhost:8080", "127.0.0.1", "[::1]", "gw.internal", "gw.internal:9090", "mcp.example.com.evil.test", "evil.mcp.example.com"]) expect(code(h), h).toBe("CS_ERR_HOST_NOT_ALLOWED");
  });

  it("allows publicUrl's origin and allowedOrigins exactly (scheme, host and port)", () => {
    for (const o of ["https://mcp.example.com", "https://mcp.example.com:443", "https://app.example.com:8443"]) expect(code("mcp.example.com", o), o).toBe("ok");
    for (const o of ["http://mcp.example.com", "https://app.example.com", "https://mcp.example.com:8443"]) expect(code("mcp.example.com", o), o).toBe("CS_ERR_ORIGIN_NOT_ALLOWED");
  });

  it("with no publicUrl on a wildcard bind (the container's quick start), the loopback names are the gateway's names", () => {
    const quick = hostOriginCheck({ bindHost: "0.0.0.0", publicUrl: "http://0.0.0.0:8080" });
    for (const h of ["localhost:8080", "127.0.0.1:8080", "[::1]:8080"]) expect(quick.refusal(h, undefined)?.code ?? "ok", h).toBe("ok");
    for (const h of ["evil.test:8080", "192.168.1.20:8080"]) expect(quick.refusal(h, undefined)?.code, h).toBe("CS_ERR_HOST_NOT_ALLOWED");
  });

  it("parses only plain host[:port] and origins", () => {
    expect(parseHostHeader("[::1]:80")).toEqual({ name: "::1", port: "80" });
    expect(parseHostHeader("Example.COM.:0080")).toEqual({ name: "example.com", port: "80" });
    expect(parseHostHeader("a..b")).toBeUndefined();
    expect(normaliseOrigin("HTTPS://X.example:443")).toBe("https://x.example");
    expect(normaliseOrigin("null")).toBeUndefined();
  });
});
