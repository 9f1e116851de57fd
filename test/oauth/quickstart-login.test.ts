// The quick start: the dev issuer on a loopback bind turns the authorization server on by
// default, and an MCP client with no token logs in with the console's one-click login.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { everythingStdio, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { freePort } from "../helpers/upstreams.js";
import { MemoryOAuthProvider, startCallbackServer } from "./helpers.js";

const FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

let db: TestDatabase;
let gw: TestGateway;
let scratch: string;
let callback: Awaited<ReturnType<typeof startCallbackServer>>;
let browser: Browser;

beforeAll(async () => {
  db = await createTestDatabase();
  scratch = mkdtempSync(join(tmpdir(), "countersign-oauth-"));
  callback = await startCallbackServer();
  const port = await freePort();
  gw = await startTestGateway(db.url, {
    server: { host: "127.0.0.1", port },
    auth: { devIssuer: { enabled: true, keyFile: join(scratch, "dev.jwk") } },
    connections: [{ name: "everything", access: { groups: ["dev"] }, upstream: everythingStdio() }],
  });
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: FLAGS });
});

afterAll(async () => {
  await browser?.close();
  await gw?.stop();
  await callback?.close();
  await db?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe("the quick start", () => {
  it("names the gateway as authorization server, and alice logs an MCP client in with one click", async () => {
    expect(gw.config.oauth.enabled).toBe(true);
    const prm = (await (await fetch(`${gw.address}/.well-known/oauth-protected-resource/mcp/everything`)).json()) as { authorization_servers: string[] };
    expect(prm.authorization_servers).toEqual([gw.config.publicUrl]);

    const provider = new MemoryOAuthProvider(callback.url, "Quick Agent");
    const transport = new StreamableHTTPClientTransport(gw.mcpUrl("everything"), { authProvider: provider });
    await expect(new Client({ name: "quick", version: "1.0.0" }).connect(transport)).rejects.toThrow(UnauthorizedError);
    const page = await (await browser.newContext()).newPage();
    const redirected = callback.next();
    await page.goto(provider.authorizationUrl!.href);
    await page.locator("form:has(input[name=subject][value=alice]) button").click();
    await page.waitForURL(/\/console\/oauth\/consent/);
    await page.getByRole("button", { name: "Allow" }).click();
    const code = (await redirected).searchParams.get("code")!;
    await page.context().close();
    await transport.finishAuth(code);

    const client = new Client({ name: "quick", version: "1.0.0" });
    await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl("everything"), { authProvider: provider }));
    const result = (await client.callTool({ name: "echo", arguments: { message: "quick start" } })) as { content: Array<{ text: string }> };
    expect(result.content[0]!.text).toContain("quick start");
    const session = await gw.db.session.findFirstOrThrow({ where: { connection: "everything", subject: "alice" } });
    expect(session.issuer).toBe(gw.identity.devIssuer!.url);
    await client.close();
  });
});
