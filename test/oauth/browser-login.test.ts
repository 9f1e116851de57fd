// An MCP client with no token logs in through the browser: the real TypeScript SDK client
// (StreamableHTTPClientTransport with an OAuthClientProvider) gets 401, discovers the gateway as
// the connection's authorization server, registers itself, and its authorization URL is followed
// by headless Chromium through the console's login at the company IdP (oidc-provider) and the
// consent page; the code goes to transport.finishAuth, a tool call succeeds and is recorded with
// the person's identity, and an expired access token is refreshed without the browser.
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { everythingStdio, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { createTestDatabase, ROOT, type TestDatabase } from "../helpers/postgres.js";
import { freePort } from "../helpers/upstreams.js";
import { CONSOLE_CLIENT, MemoryOAuthProvider, startCallbackServer, startIdentityProvider } from "./helpers.js";

const FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

let db: TestDatabase;
let gw: TestGateway;
let idp: Awaited<ReturnType<typeof startIdentityProvider>>;
let callback: Awaited<ReturnType<typeof startCallbackServer>>;
let browser: Browser;

beforeAll(async () => {
  db = await createTestDatabase();
  const port = await freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  idp = await startIdentityProvider(publicUrl);
  callback = await startCallbackServer();
  gw = await startTestGateway(db.url, {
    publicUrl,
    server: { host: "127.0.0.1", port },
    auth: { issuers: [{ issuer: idp.issuer, label: "testidp" }] },
    console: { login: [{ issuer: idp.issuer, label: "Test IdP", clientId: CONSOLE_CLIENT.id, clientSecret: { env: "CONSOLE_CLIENT_SECRET" }, scopes: ["openid", "email", "profile", "groups"] }] },
    oauth: { enabled: true },
    connections: [{ name: "ops", access: { groups: ["dev"] }, upstream: everythingStdio() }],
  }, { CONSOLE_CLIENT_SECRET: CONSOLE_CLIENT.secret });
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: FLAGS });
});

afterAll(async () => {
  await browser?.close();
  await gw?.stop();
  await idp?.close();
  await callback?.close();
  await db?.drop();
});

describe("an MCP client with no token", () => {
  it("logs in through the browser at the company IdP, calls a tool as the person, and refreshes its token", async () => {
    const provider = new MemoryOAuthProvider(callback.url, "Test Agent");
    const first = new StreamableHTTPClientTransport(gw.mcpUrl("ops"), { authProvider: provider });
    // 401 → protected resource metadata → the gateway's metadata → registration → a URL to open.
    await expect(new Client({ name: "test-agent", version: "1.0.0" }).connect(first)).rejects.toThrow(UnauthorizedError);
    expect(provider.client?.client_id).toMatch(/^cs-/);
    const authUrl = provider.authorizationUrl!;
    expect(authUrl.href.startsWith(`${gw.config.publicUrl}/oauth/authorize?`)).toBe(true);
    expect(authUrl.searchParams.get("resource")).toBe(`${gw.config.publicUrl}/mcp/ops`);
    expect(authUrl.searchParams.get("code_challenge_method")).toBe("S256");

    // The person, in a browser: the console's login at the IdP, then the consent page.
    const context = await browser.newContext();
    const page = await context.newPage();
    const redirected = callback.next();
    await page.goto(authUrl.href);
    await page.waitForURL(/\/console\/login/);
    await page.getByRole("link", { name: "Log in with Test IdP" }).click();
    await page.locator("input[name=login]").fill("alice");
    await page.locator("input[name=password]").fill("any");
    await page.getByRole("button", { name: "Sign-in" }).click();
    await page.getByRole("button", { name: "Continue" }).click();
    await page.waitForURL(/\/console\/oauth\/consent/);
    expect(await page.getByTestId("client-name").textContent()).toBe("Test Agent");
    expect(await page.getByTestId("client-id").textContent()).toBe(provider.client!.client_id);
    expect(await page.locator("h1").textContent()).toBe("Allow Test Agent to use ops?");
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(ROOT, "docs", "console", "consent-phone.png"), fullPage: true });
    await page.getByRole("button", { name: "Allow" }).click();
    const back = await redirected;
    await context.close();
    expect(back.searchParams.get("iss")).toBe(gw.config.publicUrl);
    const code = back.searchParams.get("code")!;
    expect(code).toBeTruthy();

    await first.finishAuth(code);
    expect(provider.saved?.refresh_token).toBeTruthy();
    const client = new Client({ name: "test-agent", version: "1.0.0" });
    await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl("ops"), { authProvider: provider }));
    const result = (await client.callTool({ name: "echo", arguments: { message: "hello through the browser login" } })) as { content: Array<{ text: string }> };
    expect(result.content[0]!.text).toContain("hello through the browser login");

    // Recorded with the person's identity from the IdP (not the gateway's), and the client.
    const session = await gw.db.session.findFirstOrThrow({ where: { connection: "ops", subject: "alice" } });
    expect(session).toMatchObject({ issuer: idp.issuer, email: "alice@example.com", groups: ["dev"], clientId: provider.client!.client_id });
    const call = await gw.db.message.findFirst({ where: { sessionId: session.id, method: "tools/call" } });
    expect(call).toBeTruthy();
    expect(await gw.db.event.count({ where: { type: "oauth", reason: "client_registered" } })).toBe(1);
    expect(await gw.db.event.count({ where: { type: "oauth", reason: "consent_granted", subject: "alice", connection: "ops" } })).toBe(1);

    // The access token runs out: the SDK refreshes it (rotated) and the call goes on, no browser.
    const firstRefresh = provider.saved!.refresh_token!;
    provider.saved = { ...provider.saved!, access_token: "expired.token.value" };
    const again = (await client.callTool({ name: "echo", arguments: { message: "after refresh" } })) as { content: Array<{ text: string }> };
    expect(again.content[0]!.text).toContain("after refresh");
    expect(provider.saved.refresh_token).toBeTruthy();
    expect(provider.saved.refresh_token).not.toBe(firstRefresh);
    const issued = await gw.db.event.findMany({ where: { type: "oauth", reason: "token_issued", subject: "alice" }, orderBy: { id: "asc" } });
    expect(issued.map((e) => (e.detail as { grantType: string }).grantType)).toEqual(["authorization_code", "refresh_token"]);
    await client.close();
  });
});
