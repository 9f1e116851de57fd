// Hostile browsers against the console's login, over HTTP against a real gateway with the dev
// issuer's one-click logins and a real OpenID provider (oidc-provider on loopback): login CSRF and
// OIDC state mismatches, open redirects through `next`, altered, forged, expired and logged-out
// cookies, and session fixation. Each is refused and each refusal is a console event in the
// audit store.
import { createHmac } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Provider from "oidc-provider";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { freePort } from "../helpers/upstreams.js";

const SERVER = new URL("../fixtures/logging-server.mjs", import.meta.url).pathname;
const SESSION_KEY = `console-key-${"k".repeat(40)}`;
const CLIENT = { id: "countersign-console", secret: "console-secret-0123456789abcdef" };

let db: TestDatabase;
let gw: TestGateway;
let idp: Server;
let scratch: string;
let base: string;
/** Every request the identity provider received (method and path): a refused callback must not reach its token endpoint. */
const idpRequests: string[] = [];

/** oidc-provider on loopback: a real authorization server the console's login can discover. */
async function startIdentityProvider(gatewayUrl: string): Promise<{ server: Server; issuer: string }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  const issuer = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
  const provider = new Provider(issuer, {
    clients: [{ client_id: CLIENT.id, client_secret: CLIENT.secret, redirect_uris: [`${gatewayUrl}/console/login/callback`], grant_types: ["authorization_code"], response_types: ["code"], token_endpoint_auth_method: "client_secret_post" }],
    findAccount: async (_ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    cookies: { keys: ["test-cookie-key-0123456789abcdef"] },
  });
  const handle = provider.callback();
  server.on("request", (req) => idpRequests.push(`${req.method} ${(req.url ?? "").split("?")[0]}`));
  server.on("request", (req, res) => void Promise.resolve(handle(req, res)).catch((err: unknown) => res.destroy(err as Error)));
  return { server, issuer };
}

/** A browser's cookies, kept by name as the gateway sets and clears them. */
class Browser {
  readonly jar = new Map<string, string>();
  cookieHeader(): string {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join("; ");
  }
  async request(path: string, init: { method?: string; form?: Record<string, string> } = {}): Promise<{ status: number; location: string | null; text: string; setCookies: string[] }> {
    const res = await fetch(`${base}${path}`, {
      method: init.method ?? (init.form ? "POST" : "GET"),
      redirect: "manual",
      headers: { cookie: this.cookieHeader(), ...(init.form ? { "content-type": "application/x-www-form-urlencoded" } : {}) },
      ...(init.form ? { body: new URLSearchParams(init.form).toString() } : {}),
    });
    const setCookies = res.headers.getSetCookie();
    for (const c of setCookies) {
      const [pair, ...attrs] = c.split(";");
      const [name, value] = [pair!.slice(0, pair!.indexOf("=")), pair!.slice(pair!.indexOf("=") + 1)];
      if (attrs.some((a) => a.trim() === "Max-Age=0") || value === "") this.jar.delete(name);
      else this.jar.set(name, value);
    }
    return { status: res.status, location: res.headers.get("location"), text: await res.text(), setCookies };
  }
  /** The login page's CSRF token (and this browser's cs_csrf cookie with it). */
  async csrf(path = "/console/login"): Promise<string> {
    const page = await this.request(path);
    return /name="_csrf" value="([^"]+)"/.exec(page.text)![1]!;
  }
  async loginAs(subject: string, next?: string) {
    const token = await this.csrf();
    return this.request("/console/login/dev", { form: { subject, _csrf: token, ...(next === undefined ? {} : { next }) } });
  }
}

const mac = (text: string, key = SESSION_KEY) => createHmac("sha256", Buffer.from(key)).update(text).digest("base64url");
function mintLogin(fields: Record<string, unknown>, key = SESSION_KEY): string {
  const body = Buffer.from(JSON.stringify(fields)).toString("base64url");
  return `${body}.${mac(`login:${body}`, key)}`;
}
const decode = (cookie: string) => JSON.parse(Buffer.from(cookie.slice(0, cookie.indexOf(".")), "base64url").toString("utf8")) as Record<string, unknown>;

/** Console events of one reason recorded after `since`. */
async function consoleEvents(reason: string, since: bigint) {
  return gw.db.event.findMany({ where: { type: "console", reason, id: { gt: since } }, orderBy: { id: "asc" } });
}
const lastEventId = async () => (await gw.db.event.findFirst({ orderBy: { id: "desc" } }))?.id ?? 0n;

beforeAll(async () => {
  db = await createTestDatabase();
  scratch = mkdtempSync(join(tmpdir(), "cs-console-adv-"));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const provider = await startIdentityProvider(base);
  idp = provider.server;
  gw = await startTestGateway(
    db.url,
    {
      publicUrl: base,
      server: { host: "127.0.0.1", port },
      auth: { devIssuer: { enabled: true, keyFile: join(scratch, "dev.jwk") }, issuers: [{ issuer: provider.issuer, label: "testidp" }] },
      admin: { groups: ["admins"] },
      console: {
        sessionKey: { env: "CONSOLE_KEY" },
        login: [{ issuer: provider.issuer, label: "Test IdP", clientId: CLIENT.id, clientSecret: { env: "CONSOLE_CLIENT_SECRET" }, scopes: ["openid"] }],
        devUsers: [
          { subject: "alice", email: "alice@example.com", name: "Alice", groups: ["dev"] },
          { subject: "erin", email: "erin@example.com", name: "Erin", groups: ["admins"] },
        ],
      },
      connections: [{ name: "ops", upstream: { type: "stdio", command: process.execPath, args: [SERVER] } }],
    },
    { CONSOLE_KEY: SESSION_KEY, CONSOLE_CLIENT_SECRET: CLIENT.secret },
  );
});
afterAll(async () => {
  await gw?.stop();
  idp?.closeAllConnections();
  await new Promise((r) => (idp ? idp.close(r) : r(undefined)));
  await db?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe("login CSRF and OIDC state", () => {
  it("a one-click login posted without this browser's token (a forged form) is refused and recorded", async () => {
    const since = await lastEventId();
    const victim = new Browser();
    const other = new Browser();
    const othersToken = await other.csrf();
    const attempts: Array<Record<string, string>> = [{ subject: "erin" }, { subject: "erin", _csrf: "" }, { subject: "erin", _csrf: othersToken }, { subject: "erin", _csrf: mac("csrf:guess:") }];
    await victim.csrf(); // the victim has a cs_csrf cookie of its own
    for (const form of attempts) {
      const res = await victim.request("/console/login/dev", { form });
      expect(res.status, JSON.stringify(form)).toBe(403);
      expect(victim.jar.has("cs_console")).toBe(false);
    }
    // And a browser with no cookie at all (a cross-site POST that carries none).
    expect((await new Browser().request("/console/login/dev", { form: { subject: "erin", _csrf: othersToken } })).status).toBe(403);
    expect(await consoleEvents("csrf_refused", since)).toHaveLength(attempts.length + 1);
    expect(await consoleEvents("login", since)).toHaveLength(0);
  });

  it("a callback whose state is not this browser's login, or with no login started here, or with an altered login cookie, is refused and recorded", async () => {
    const since = await lastEventId();
    const start = async () => {
      const b = new Browser();
      const res = await b.request("/console/login/oidc/0");
      expect(res.status).toBe(302);
      const state = new URL(res.location!).searchParams.get("state")!;
      return { b, state };
    };
    // 1. State mismatch: the attacker's own callback URL (its code and state) opened in the victim's browser.
    const victim = await start();
    const attacker = await start();
    const tokenRequestsBefore = idpRequests.filter((r) => r.startsWith("POST /token")).length;
    const mismatch = await victim.b.request(`/console/login/callback?code=attackers-code&state=${attacker.state}&iss=${encodeURIComponent(gw.config.auth.issuers[0]!.issuer)}`);
    // Refused on the state alone: the code never went to the provider.
    expect(idpRequests.filter((r) => r.startsWith("POST /token")).length).toBe(tokenRequestsBefore);
    // 2. No login started in this browser at all.
    const none = await new Browser().request(`/console/login/callback?code=attackers-code&state=${attacker.state}`);
    // 3. The pending-login cookie altered (its next rewritten), signature kept.
    const third = await start();
    const sealed = third.b.jar.get("cs_oidc")!;
    const [body, sig] = [sealed.slice(0, sealed.indexOf(".")), sealed.slice(sealed.indexOf(".") + 1)];
    const payload = JSON.parse(Buffer.from(body, "base64url").toString()) as { v: { next: string } };
    payload.v.next = "https://evil.test/";
    third.b.jar.set("cs_oidc", `${Buffer.from(JSON.stringify(payload)).toString("base64url")}.${sig}`);
    const altered = await third.b.request(`/console/login/callback?code=x&state=${third.state}`);
    // 4. The right state with a code the provider never issued.
    const fourth = await start();
    const badCode = await fourth.b.request(`/console/login/callback?code=forged&state=${fourth.state}&iss=${encodeURIComponent(gw.config.auth.issuers[0]!.issuer)}`);
    // (The probe sees token requests: the forged code did go to the provider, and was refused there.)
    expect(idpRequests.filter((r) => r.startsWith("POST /token")).length).toBe(tokenRequestsBefore + 1);
    for (const [what, res, b] of [["mismatch", mismatch, victim.b], ["none", none, undefined], ["altered", altered, third.b], ["bad code", badCode, fourth.b]] as const) {
      expect(res.status, what).toBe(400);
      expect(res.location, what).toBeNull();
      if (b) expect(b.jar.has("cs_console"), what).toBe(false);
    }
    const refused = (await consoleEvents("login_refused", since)).map((e) => String((e.detail as { why?: string }).why));
    expect(refused).toHaveLength(4);
    expect(refused[0]).not.toMatch(/no login in progress/);
    expect(refused[1]).toMatch(/no login in progress/);
    expect(refused[2]).toMatch(/no login in progress/);
    expect(await consoleEvents("login", since)).toHaveLength(0);
  });
});

describe("open redirect through next", () => {
  const hostile = [
    "https://evil.test/", "//evil.test/", "/\\evil.test", "\\\\evil.test", "/%2F%2Fevil.test", "javascript:alert(1)", "https:evil.test",
    "//evil.test/console/", "/console@evil.test", " //evil.test", "/\t/evil.test", "http://127.0.0.1.evil.test/console/", "data:text/html,x", "/consolex//evil.test",
  ];
  const stays = (location: string | null) => {
    const u = new URL(location!, base);
    return u.origin === base && u.pathname.startsWith("/console/");
  };

  it("no `next` leads off the console, at login or once logged in; each attempt is recorded", async () => {
    const since = await lastEventId();
    for (const next of hostile) {
      const b = new Browser();
      const login = await b.loginAs("alice", next);
      expect(login.status, next).toBe(302);
      expect(stays(login.location), `${next} → ${login.location}`).toBe(true);
      const again = await b.request(`/console/login?next=${encodeURIComponent(next)}`);
      expect(again.status, next).toBe(302);
      expect(stays(again.location), `${next} → ${again.location}`).toBe(true);
      // The OIDC login seals its own next: it must be the safe one as well.
      const oidcStart = await new Browser().request(`/console/login/oidc/0?next=${encodeURIComponent(next)}`);
      const sealed = oidcStart.setCookies.find((c) => c.startsWith("cs_oidc="))!.split(";")[0]!.slice("cs_oidc=".length);
      expect(((decode(sealed).v as { next: string }).next)).toBe("/console/");
    }
    const recorded = (await consoleEvents("redirect_refused", since)).map((e) => (e.detail as { next: string }).next);
    for (const next of hostile) expect(recorded.filter((n) => n === next), next).toHaveLength(3);
  });
});

describe("login cookies", () => {
  const admin = "/console/evidence";

  it("an altered, forged or cross-purpose cookie is no login: refused, recorded, cleared", async () => {
    const alice = new Browser();
    await alice.loginAs("alice");
    const real = alice.jar.get("cs_console")!;
    const fields = decode(real);
    const [body, sig] = [real.slice(0, real.lastIndexOf(".")), real.slice(real.lastIndexOf(".") + 1)];
    const forged = [
      `${Buffer.from(JSON.stringify({ ...fields, groups: ["admins"] })).toString("base64url")}.${sig}`, // groups raised, signature kept
      `${Buffer.from(JSON.stringify({ ...fields, subject: "erin" })).toString("base64url")}.${sig}`,
      mintLogin({ ...fields, groups: ["admins"] }, "another-key-of-at-least-32-characters!!"), // signed with another key
      body, // no signature
      `${body}.`, `${body}.${sig.slice(0, -2)}`, `${body}.${sig}x`,
      `${body}.${mac(`cs_oidc:${body}`)}`, // our key, but the signature of another cookie kind
      `${Buffer.from("not json").toString("base64url")}.${mac(`login:${Buffer.from("not json").toString("base64url")}`)}`,
      mintLogin({ subject: "erin", groups: ["admins"] }), // signed, but no sid and no times
    ];
    const since = await lastEventId();
    for (const cookie of forged) {
      const b = new Browser();
      b.jar.set("cs_console", cookie);
      const res = await b.request(admin);
      expect(res.status, cookie).toBe(302);
      expect(res.location, cookie).toMatch(/^\/console\/login\?next=/);
      expect(b.jar.has("cs_console"), "the bad cookie is cleared").toBe(false);
    }
    const why = (await consoleEvents("login_refused", since)).map((e) => (e.detail as { why: string }).why);
    expect(why).toHaveLength(forged.length);
    expect(why.filter((w) => w === "cookie_bad_signature")).toHaveLength(8);
    expect(why.filter((w) => w === "cookie_malformed")).toHaveLength(2);
  });

  it("an expired or logged-out cookie is no login: refused, recorded, cleared", async () => {
    const now = Date.now();
    const person = { kind: "user", subject: "erin", issuer: "x", groups: ["admins"], via: "dev", sid: "s-expired" };
    const cookies = {
      absolute: mintLogin({ ...person, startedAt: now - 13 * 3600_000, seenAt: now - 1000 }),
      idle: mintLogin({ ...person, startedAt: now - 3600_000, seenAt: now - 31 * 60_000 }),
    };
    const since = await lastEventId();
    for (const [kind, cookie] of Object.entries(cookies)) {
      const b = new Browser();
      b.jar.set("cs_console", cookie);
      const res = await b.request(admin);
      expect(res.status, kind).toBe(302);
      expect(res.location, kind).toContain(`expired=${kind}`);
      expect(b.jar.has("cs_console"), kind).toBe(false);
    }
    // Logged out: the cookie copied before logout no longer works anywhere.
    const erin = new Browser();
    await erin.loginAs("erin");
    const copy = erin.jar.get("cs_console")!;
    expect((await erin.request(admin)).status).toBe(200);
    const token = await erin.csrf(admin);
    expect((await erin.request("/console/logout", { form: { _csrf: token } })).status).toBe(302);
    const thief = new Browser();
    thief.jar.set("cs_console", copy);
    expect((await thief.request(admin)).status).toBe(302);
    const why = (await consoleEvents("login_refused", since)).map((e) => (e.detail as { why: string }).why);
    expect(why).toEqual(["cookie_expired_absolute", "cookie_expired_idle", "cookie_logged_out"]);
  });

  it("fixation: a CSRF cookie planted before a login gives the planter no form token for the login that follows", async () => {
    const since = await lastEventId();
    // The attacker logs in itself and keeps its tokens: one for its own login, one from before any login.
    const attacker = new Browser();
    await attacker.loginAs("alice");
    const planted = attacker.jar.get("cs_csrf")!;
    const attackersLoginToken = await attacker.csrf("/console/approvals");
    const preLogin = new Browser();
    preLogin.jar.set("cs_csrf", planted);
    const preLoginToken = await preLogin.csrf();
    // It plants its CSRF cookie in the victim's browser; the victim logs in as erin.
    const victim = new Browser();
    victim.jar.set("cs_csrf", planted);
    const login = await victim.request("/console/login/dev", { form: { subject: "erin", _csrf: await victim.csrf() } });
    expect(login.status).toBe(302);
    const victimLogin = decode(victim.jar.get("cs_console")!);
    expect(victimLogin.subject).toBe("erin");
    expect(victimLogin.sid).not.toBe(decode(attacker.jar.get("cs_console")!).sid);
    // Forms posted into the victim's login with either of the attacker's tokens are refused.
    for (const token of [attackersLoginToken, preLoginToken]) {
      expect((await victim.request("/console/logout", { form: { _csrf: token } })).status).toBe(403);
    }
    expect((await victim.request(admin)).status).toBe(200);
    expect(await consoleEvents("csrf_refused", since)).toHaveLength(2);
    expect(await consoleEvents("logout", since)).toHaveLength(0);
  });
});
