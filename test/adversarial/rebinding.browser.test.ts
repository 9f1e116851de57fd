// DNS rebinding in a real browser (Debian's Chromium driven by playwright-core): a page served
// from a name the attacker controls, which then resolves to 127.0.0.1 (Chromium's
// --host-resolver-rules plays the attacker's DNS), is same-origin with the gateway as far as the
// browser knows. Its script tries to open a session on an anonymous loopback connection and run a
// tool. It must get 403 CS_ERR_HOST_NOT_ALLOWED, no session may exist, the upstream must receive
// nothing, and the refusal is recorded with the page's Host and Origin. The same script on a page
// of the gateway's own origin does get a session and its tool answer (the control: the browser
// path works, so the refusal is the gateway's doing).
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { freePort } from "../helpers/upstreams.js";

const SERVER = new URL("../fixtures/logging-server.mjs", import.meta.url).pathname;
const CHROMIUM = "/usr/bin/chromium";
const FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const ATTACKER = "rebind.attacker.test";
// Chromium's own private-network checks would stop the page before it reached the gateway; Firefox
// and Safari have none, and Chromium's have been rolled back before. The gateway must hold alone.
const NO_PRIVATE_NETWORK_CHECKS = "BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights,PrivateNetworkAccessRespectPreflightResults,LocalNetworkAccessChecks";

let db: TestDatabase;
let gw: TestGateway;
let browser: Browser;
let scratch: string;
let upstreamLog: string;
let port: number;

const upstreamMethods = () =>
  existsSync(upstreamLog)
    ? readFileSync(upstreamLog, "utf8").split("\n").filter(Boolean).map((l) => (JSON.parse(l) as { msg?: { method?: string } }).msg?.method).filter(Boolean)
    : [];

beforeAll(async () => {
  db = await createTestDatabase();
  scratch = mkdtempSync(join(tmpdir(), "cs-rebinding-"));
  upstreamLog = join(scratch, "upstream.log");
  port = await freePort();
  gw = await startTestGateway(db.url, {
    server: { host: "127.0.0.1", port },
    publicUrl: `http://127.0.0.1:${port}`,
    connections: [{ name: "open", upstream: { type: "stdio", command: process.execPath, args: [SERVER], env: { MCP_MESSAGE_LOG: upstreamLog } }, access: { anonymous: true } }],
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...FLAGS, `--host-resolver-rules=MAP ${ATTACKER} 127.0.0.1`, `--disable-features=${NO_PRIVATE_NETWORK_CHECKS}`] });
});
afterAll(async () => {
  await browser?.close();
  await gw?.stop();
  await db?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** The attacker's script: initialize, then tools/call, on its own origin's /mcp/open. */
async function attackFrom(origin: string): Promise<{ init: number; code?: string; sessionId: string | null; call?: string }> {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    // The page itself is the attacker's (served before the name re-resolved); everything else goes to the network.
    await page.route(`${origin}/attack.html`, (route) => route.fulfill({ contentType: "text/html", body: "<!doctype html><title>cats</title>" }));
    await page.goto(`${origin}/attack.html`);
    return await page.evaluate(async () => {
      const headers = { "content-type": "application/json", accept: "application/json, text/event-stream;q=0.1" };
      const init = await fetch("/mcp/open", {
        method: "POST",
        headers,
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "page", version: "1" } } }),
      });
      const body = (await init.json()) as { error?: { data?: { code?: string } } };
      const sessionId = init.headers.get("mcp-session-id");
      if (!sessionId) return { init: init.status, code: body.error?.data?.code, sessionId };
      const h = { ...headers, "mcp-session-id": sessionId, "mcp-protocol-version": "2025-06-18" };
      await fetch("/mcp/open", { method: "POST", headers: h, body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) });
      const call = await fetch("/mcp/open", { method: "POST", headers: h, body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "echo", arguments: { message: "pwned" } } }) });
      return { init: init.status, sessionId, call: await call.text() };
    });
  } finally {
    await context.close();
  }
}

it("a rebinding page cannot open a session or run a tool; the refusal is recorded", async () => {
  const origin = `http://${ATTACKER}:${port}`;
  const result = await attackFrom(origin);
  expect(result).toEqual({ init: 403, code: "CS_ERR_HOST_NOT_ALLOWED", sessionId: null });
  expect(await gw.db.session.count()).toBe(0);
  expect(upstreamMethods()).toEqual([]);
  await expect
    .poll(async () => (await gw.db.event.findMany({ where: { type: "message_rejected", reason: "host_not_allowed" } })).map((e) => e.detail))
    .toEqual([expect.objectContaining({ host: `${ATTACKER}:${port}`, origin, httpMethod: "POST", path: "/mcp/open" })]);
});

it("the same script on the gateway's own origin works (the browser path is sound)", async () => {
  const result = await attackFrom(`http://127.0.0.1:${port}`);
  expect(result.init).toBe(200);
  expect(result.call).toContain("Echo: pwned");
  expect(upstreamMethods()).toContain("tools/call");
});
