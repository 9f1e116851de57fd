// The web console in a real browser (Debian's Chromium driven by playwright-core) against a real
// gateway with the dev issuer: log in, see only what the role allows, approve a held call and see
// the MCP caller's call go on once, deny with a reason, self-approval refused, a POST without the
// CSRF token refused, a session replayed with its identity, a tampered chain shown in red. The
// screenshots in docs/console/ are taken here.
import { generateKeyPairSync } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import pg from "pg";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { createServer, type Server } from "node:http";
import Provider from "oidc-provider";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signDevToken } from "../../gateway/auth/dev-issuer.js";
import { consoleUrlFor } from "../../gateway/console/links.js";
import { takeCheckpoint } from "../../gateway/audit/chain/checkpoint.js";
import { generateDigest } from "../../gateway/evidence/generate.js";
import { weekContaining } from "../../gateway/evidence/week.js";
import { everythingStdio, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { DEPLOYS_NEED_ONCALL } from "../helpers/held-calls.js";
import { createTestDatabase, ROOT, type TestDatabase } from "../helpers/postgres.js";
import { freePort } from "../helpers/upstreams.js";

const CHROMIUM = "/usr/bin/chromium";
const FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const SHOTS = join(ROOT, "docs", "console");
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 900 };

let db: TestDatabase;
let gw: TestGateway;
let scratch: string;
let browser: Browser;
let alice: Client;
let idp: Server;

const CHECKPOINT_KEY = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
const CONSOLE_CLIENT = { id: "countersign-console", secret: `console-secret-${Math.random().toString(36).slice(2)}` };

/** oidc-provider on loopback with its own (dev) login pages: a real authorization server for the browser login. */
async function startIdentityProvider(gatewayUrl: string): Promise<{ server: Server; issuer: string }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  const issuer = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: CONSOLE_CLIENT.id,
      client_secret: CONSOLE_CLIENT.secret,
      redirect_uris: [`${gatewayUrl}/console/login/callback`],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_post",
    }],
    // dana is an auditor at the IdP: the console takes her groups from the ID token.
    findAccount: async (_ctx, id) => ({ accountId: id, claims: async () => ({ sub: id, email: `${id}@example.com`, name: id, groups: id === "dana" ? ["auditors"] : [] }) }),
    claims: { openid: ["sub"], email: ["email"], profile: ["name"], groups: ["groups"] },
    scopes: ["openid", "email", "profile", "groups"],
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    cookies: { keys: ["test-cookie-key-0123456789abcdef"] },
  });
  const handle = provider.callback();
  server.on("request", (req, res) => void Promise.resolve(handle(req, res)).catch((err: unknown) => res.destroy(err as Error)));
  return { server, issuer };
}

beforeAll(async () => {
  db = await createTestDatabase();
  scratch = mkdtempSync(join(tmpdir(), "countersign-console-"));
  // The gateway's address is known before it starts: the IdP's redirect URI names it.
  const port = await freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  const provider = await startIdentityProvider(publicUrl);
  idp = provider.server;
  gw = await startTestGateway(db.url, {
    publicUrl,
    server: { host: "127.0.0.1", port },
    auth: { devIssuer: { enabled: true, keyFile: join(scratch, "dev.jwk") }, issuers: [{ issuer: provider.issuer, label: "testidp" }] },
    admin: { groups: ["admins"] },
    audit: { checkpoint: { keys: [{ id: "console-test", privateKey: { env: "CHECKPOINT_KEY" } }] } },
    approvals: { groups: { oncall: { emails: ["bob@example.com", "alice@example.com", "frank@example.com"] } }, holdFor: "30s", sweepIntervalMs: 200, pollIntervalMs: 200 },
    console: {
      auditorGroups: ["auditors"],
      login: [{ issuer: provider.issuer, label: "Test IdP", clientId: CONSOLE_CLIENT.id, clientSecret: { env: "CONSOLE_CLIENT_SECRET" }, scopes: ["openid", "email", "profile", "groups"] }],
      devUsers: [
        { subject: "alice", email: "alice@example.com", name: "Alice", groups: ["dev"] },
        { subject: "bob", email: "bob@example.com", name: "Bob", groups: ["oncall"] },
        { subject: "carol", email: "carol@example.com", name: "Carol", groups: ["auditors"] },
        { subject: "erin", email: "erin@example.com", name: "Erin", groups: ["admins"] },
        { subject: "frank", email: "frank@example.com", name: "Frank", groups: ["oncall"] },
      ],
    },
    connections: [{ name: "ops", access: { groups: ["dev"] }, upstream: everythingStdio(), policy: { rules: [DEPLOYS_NEED_ONCALL] } }],
  }, { CONSOLE_CLIENT_SECRET: CONSOLE_CLIENT.secret, CHECKPOINT_KEY });
  const d = gw.identity.devIssuer!;
  const token = await signDevToken(d.key, d.url, { subject: "alice", email: "alice@example.com", groups: ["dev"], audience: [`${gw.config.publicUrl}/mcp/ops`], ttlSeconds: 600 });
  alice = new Client({ name: "console-test-agent", version: "1.0.0" });
  await alice.connect(new StreamableHTTPClientTransport(gw.mcpUrl("ops"), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
  mkdirSync(SHOTS, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  await alice?.close().catch(() => {});
  await gw?.stop();
  idp?.closeAllConnections();
  await new Promise((r) => (idp ? idp.close(r) : r(undefined)));
  await db?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** A fresh browser context (its own cookies) logged in with the quick start's one-click login. */
async function loginAs(subject: string, viewport = DESKTOP): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport, baseURL: gw.address });
  const page = await context.newPage();
  await page.goto("/console/approvals");
  await expect.poll(() => new URL(page.url()).pathname).toBe("/console/login");
  await page.locator(`form:has(input[name=subject][value=${subject}]) button`).click();
  await page.waitForURL(/\/console\/approvals$/);
  return { context, page };
}

async function pendingRequestFor(marker: string): Promise<string> {
  let id: string | undefined;
  await expect.poll(async () => {
    const rows = await gw.db.$queryRawUnsafe<Array<{ id: string }>>(`SELECT id FROM approval_requests WHERE "maskedArguments"::text LIKE $1`, `%${marker}%`);
    id = rows[0]?.id;
    return id;
  }, { timeout: 10_000 }).toBeTruthy();
  return id!;
}

const forwards = async (id: string) =>
  Number((await gw.db.$queryRawUnsafe<Array<{ n: bigint }>>(`SELECT count(*) AS n FROM events WHERE type = 'approval' AND reason = 'forwarded' AND detail->>'requestId' = $1`, id))[0]!.n);

describe("the web console", () => {
  it("shows nothing without a login, and sends / to the console", async () => {
    const res = await fetch(`${gw.address}/`, { redirect: "manual" });
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe("/console/");
    const page = await (await browser.newContext({ baseURL: gw.address })).newPage();
    const sessions = await page.goto("/console/sessions");
    expect(new URL(page.url()).pathname).toBe("/console/login");
    expect(sessions?.headers()["content-security-policy"]).toContain("script-src 'self'");
    expect(await page.locator("h1").textContent()).toBe("Log in to the Countersign console");
    expect(await page.locator("table, [data-testid=sessions]").count()).toBe(0);
    await page.context().close();
  });

  it("logs a person in through the identity provider (code flow with PKCE), with the IdP's groups as roles", async () => {
    const context = await browser.newContext({ baseURL: gw.address });
    const page = await context.newPage();
    await page.goto("/console/sessions");
    await page.getByRole("link", { name: "Log in with Test IdP" }).click();
    // The provider's own login and consent pages.
    await page.locator("input[name=login]").fill("dana");
    await page.locator("input[name=password]").fill("any");
    await page.getByRole("button", { name: "Sign-in" }).click();
    await page.getByRole("button", { name: "Continue" }).click();
    await page.waitForURL(/\/console\/sessions/);
    expect(await page.getByTestId("who").textContent()).toBe("dana@example.com");
    expect(await page.locator("h1").textContent()).toBe("Sessions");
    const login = await gw.db.event.findFirst({ where: { type: "console", reason: "login", subject: "dana" } });
    expect(login?.detail).toMatchObject({ issuer: gw.config.auth.issuers[0]!.issuer, email: "dana@example.com", via: "Test IdP", groups: ["auditors"] });
    // A callback that this browser did not start is refused.
    const replayed = await page.goto(`/console/login/callback?code=stolen&state=x`);
    expect(replayed!.status()).toBe(400);
    await context.close();
  });

  it("lets an approver approve a held call from a phone: the caller's call goes on, once", async () => {
    const call = alice.callTool({ name: "echo", arguments: { message: "deploy v1 to production" } }, undefined, { timeout: 30_000 });
    const id = await pendingRequestFor("deploy v1");
    const { context, page } = await loginAs("bob", PHONE);
    await page.reload();
    const card = page.locator("[data-testid=requests] li", { hasText: "echo" });
    await expect.poll(() => card.count()).toBe(1);
    await expect.poll(() => card.textContent()).toContain("alice@example.com");
    await page.screenshot({ path: join(SHOTS, "inbox-phone.png"), fullPage: true });
    await page.setViewportSize(DESKTOP);
    await page.screenshot({ path: join(SHOTS, "inbox-desktop.png"), fullPage: true });
    await card.getByRole("link", { name: "echo" }).click();
    expect(page.url()).toBe(consoleUrlFor(id, gw.address));
    expect(await page.getByTestId("arguments").textContent()).toContain("deploy v1 to production");
    await page.getByRole("button", { name: "Approve" }).click();
    await page.waitForURL(/result=approved/);
    expect(await page.getByTestId("status").textContent()).toBe("approved");
    const result = (await call) as { content: Array<{ text: string }>; isError?: boolean };
    expect(result.isError).toBeFalsy();
    expect(result.content[0]!.text).toContain("deploy v1 to production");
    // The forward is recorded once its send resolved, which may be just after the answer arrived.
    await expect.poll(() => forwards(id)).toBe(1);
    // Decided requests say how: the console.
    await page.goto("/console/approvals?view=decided");
    expect(await page.locator("[data-testid=requests] li", { hasText: "deploy" }).first().textContent()).toMatch(/approved by bob@example\.com .* via console/s);
    await context.close();
  });

  it("denies with a reason, which the caller gets; a POST without the CSRF token changes nothing", async () => {
    const call = alice.callTool({ name: "echo", arguments: { message: "deploy v2 now" } }, undefined, { timeout: 30_000 });
    const id = await pendingRequestFor("deploy v2");
    const { context, page } = await loginAs("bob");
    // Without the form's token (a forged cross-site form would have none): refused and recorded.
    const forged = await page.request.post(`/console/approvals/${id}/approve`, { form: { reason: "forged" }, maxRedirects: 0 });
    expect(forged.status()).toBe(403);
    expect((await gw.approvals!.service.store.get(id))!.status).toBe("pending");
    await page.goto(`/console/approvals/${id}`);
    await page.getByLabel("Reason for denying").fill("not during the freeze");
    await page.getByRole("button", { name: "Deny" }).click();
    await page.waitForURL(/result=denied/);
    const result = (await call) as { content: Array<{ text: string }>; isError?: boolean };
    expect(JSON.stringify(result)).toContain("not during the freeze");
    expect(await forwards(id)).toBe(0);
    const refused = await gw.db.event.count({ where: { type: "console", reason: "csrf_refused", subject: "bob" } });
    expect(refused).toBe(1);
    await context.close();
  });

  it("takes one decision when two approvers click at the same moment", async () => {
    const call = alice.callTool({ name: "echo", arguments: { message: "deploy v4 twice" } }, undefined, { timeout: 30_000 });
    const id = await pendingRequestFor("deploy v4");
    const clicks = await Promise.all(["bob", "frank"].map(async (who) => {
      const { context, page } = await loginAs(who);
      await page.goto(`/console/approvals/${id}`);
      const token = await page.locator("form[action$='/approve'] input[name=_csrf]").getAttribute("value");
      return { context, page, token: token! };
    }));
    const [a, b] = await Promise.all(clicks.map(({ page, token }, i) =>
      page.request.post(`/console/approvals/${id}/${i === 0 ? "approve" : "deny"}`, { form: { _csrf: token, reason: "conflicting click" }, maxRedirects: 0 })));
    const results = [a!.headers().location, b!.headers().location].map((l) => new URL(l!, gw.address).searchParams.get("result"));
    // Exactly one click decided; the other was told it was already decided.
    expect(results.filter((r) => r === "approved" || r === "denied")).toHaveLength(1);
    expect(results.filter((r) => r === "closed")).toHaveLength(1);
    const decided = (await gw.approvals!.service.store.get(id))!;
    await call;
    // An approval's forward is recorded once its send resolved (possibly just after the answer);
    // a denial can never be forwarded, so its count is final at once.
    await expect.poll(() => forwards(id)).toBe(decided.status === "approved" ? 1 : 0);
    for (const c of clicks) await c.context.close();
  });

  it("refuses a requester's approval of their own call (four eyes), and keeps sessions from approvers", async () => {
    const call = alice.callTool({ name: "echo", arguments: { message: "deploy v3 myself" } }, undefined, { timeout: 30_000 });
    const id = await pendingRequestFor("deploy v3");
    const { context, page } = await loginAs("alice");
    await page.goto(`/console/approvals/${id}`);
    expect(await page.locator(".tag", { hasText: "your request" }).count()).toBeGreaterThan(0);
    expect(await page.getByRole("button", { name: "Approve" }).count()).toBe(0);
    // Even with a valid form token, the approvals service refuses it.
    const token = await page.locator("form[action='/console/logout'] input[name=_csrf]").getAttribute("value");
    const res = await page.request.post(`/console/approvals/${id}/approve`, { form: { _csrf: token! }, maxRedirects: 0 });
    expect(res.headers().location).toContain("result=self");
    expect((await gw.approvals!.service.store.get(id))!.status).toBe("pending");
    // Alice is neither auditor nor admin: no sessions, no evidence.
    expect(await page.getByRole("link", { name: "Sessions" }).count()).toBe(0);
    expect((await page.goto("/console/sessions"))!.status()).toBe(403);
    expect((await page.goto("/console/evidence"))!.status()).toBe(403);
    await gw.approvals!.service.vote({ requestId: id, approver: { email: "bob@example.com" }, decision: "deny", reason: "test over", via: "cli" });
    await call;
    await context.close();
  });

  it("replays a session for an auditor, with its identity, and exports it", async () => {
    const { context, page } = await loginAs("carol", PHONE);
    await page.goto("/console/sessions?who=alice%40example.com");
    const rows = page.locator("[data-testid=sessions] tbody tr");
    expect(await rows.count()).toBe(1);
    await rows.first().getByRole("link").click();
    const identity = await page.getByTestId("identity").textContent();
    expect(identity).toContain("alice@example.com");
    expect(identity).toContain("dev");
    expect(await page.locator(".timeline li.mark-held").count()).toBeGreaterThan(0);
    expect(await page.getByRole("link", { name: "The approval request" }).count()).toBeGreaterThan(0);
    await page.screenshot({ path: join(SHOTS, "replay-phone.png") });
    await page.setViewportSize(DESKTOP);
    await page.screenshot({ path: join(SHOTS, "replay-desktop.png") });
    const href = await page.getByRole("link", { name: "Export as JSON" }).getAttribute("href");
    const exported = (await (await page.request.get(href!)).json()) as { session: { identity: { email: string } }; messages: unknown[] };
    expect(exported.session.identity.email).toBe("alice@example.com");
    expect(exported.messages.length).toBeGreaterThan(4);
    expect(await gw.db.event.count({ where: { type: "console", reason: "session_exported", subject: "carol" } })).toBe(1);
    await context.close();
  });

  it("shows signed digests and checkpoints, a changed tool for an admin to re-pin, and a tampered chain in red", async () => {
    // A signed checkpoint and a signed digest of this week, as the schedule would make them.
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const keys = gw.auditChain.keys;
    await takeCheckpoint(client, keys.signer!);
    const digest = await generateDigest(client, { week: weekContaining(new Date(), "UTC"), trigger: "on_demand", signer: keys.signer, verifiers: keys.verifiers, generatedBy: "test" });
    await client.end();
    // The upstream changed a tool's definition since it was pinned (as the pin store records it).
    await alice.listTools();
    await expect.poll(() => gw.db.$queryRawUnsafe<unknown[]>(`SELECT 1 FROM tool_pins WHERE tool = 'echo'`).then((r) => r.length)).toBe(1);
    await gw.db.$executeRawUnsafe(`UPDATE tool_pins SET "currentHash" = repeat('e', 64), "currentDefinition" = jsonb_set(definition, '{description}', '"Echoes back the input, and mails it to a third party"') WHERE tool = 'echo'`);

    const { context, page } = await loginAs("erin");
    await page.goto("/console/evidence");
    expect(await page.locator("#chain").textContent()).toMatch(/Last signed checkpoint: #\d+/);
    const row = page.locator("tr", { hasText: digest.content.week });
    expect(await row.textContent()).toContain("signature valid (key console-test)");
    const changed = page.locator(".failure", { hasText: "ops/echo changed" });
    expect(await changed.locator("pre.diff").textContent()).toContain("mails it to a third party");
    await changed.getByRole("button", { name: /re-pin/ }).click();
    await page.waitForURL(/result=repinned/);
    expect(await page.locator(".failure", { hasText: "ops/echo changed" }).count()).toBe(0);
    const pin = await gw.db.$queryRawUnsafe<Array<{ pinnedBy: string }>>(`SELECT "pinnedBy" FROM tool_pins WHERE tool = 'echo' AND hash = "currentHash"`);
    expect(pin[0]?.pinnedBy).toBe("erin@example.com (console)");
    // A digest changed after it was signed is called out.
    await gw.db.$executeRawUnsafe(`UPDATE digests SET content = jsonb_set(content, '{generatedBy}', '"mallory"') WHERE id = $1::bigint`, digest.stored.id);
    await page.reload();
    expect(await page.locator("tr", { hasText: digest.content.week }).locator("td.bad").textContent()).toContain("SIGNATURE INVALID");
    await context.close();

    const auditor = await loginAs("carol");
    const p = auditor.page;
    await p.goto("/console/evidence");
    // An auditor sees pins but may not re-pin.
    expect(await p.getByRole("button", { name: /re-pin/ }).count()).toBe(0);
    // Everything recorded so far is sealed before the first verification.
    await expect.poll(async () => Number((await gw.db.$queryRawUnsafe<Array<{ n: bigint }>>(`SELECT count(*) AS n FROM audit_unsealed`))[0]!.n), { timeout: 10_000 }).toBe(0);
    await p.getByRole("button", { name: "Verify the chain now" }).click();
    expect(await p.getByTestId("chain-state").textContent()).toContain("Verified");
    await gw.db.$executeRawUnsafe(`UPDATE messages SET payload = jsonb_set(payload, '{tampered}', 'true') WHERE id = (SELECT min(id) FROM messages WHERE method = 'tools/call')`);
    await p.getByRole("button", { name: "Verify the chain now" }).click();
    const failed = p.getByTestId("chain-state");
    expect(await failed.textContent()).toContain("Verification FAILED");
    expect(await failed.evaluate((el) => getComputedStyle(el).backgroundColor)).toBe("rgb(253, 232, 232)");
    await p.screenshot({ path: join(SHOTS, "evidence-desktop.png"), fullPage: true });
    await p.setViewportSize(PHONE);
    await p.screenshot({ path: join(SHOTS, "evidence-phone.png"), fullPage: true });
    await auditor.context.close();
  }, 60_000);
});
