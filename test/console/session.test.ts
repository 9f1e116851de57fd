// Console login cookies and CSRF tokens, through real Fastify requests: the cookie's attributes,
// idle and absolute timeouts, tampering, and a form token bound to one browser and one login.
import { randomBytes } from "node:crypto";
import Fastify, { type FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConsoleSessions, type ConsoleLogin } from "../../gateway/console/session.js";

const MIN = 60_000;
const user = { kind: "user" as const, subject: "bob", issuer: "https://idp.example.com", email: "bob@example.com", groups: ["oncall"], via: "okta" };

function appWith(sessions: ConsoleSessions): FastifyInstance {
  const app = Fastify();
  app.get("/start", async (_req, reply) => {
    sessions.start(reply, user);
    return "ok";
  });
  app.get<{ Querystring: { at: string } }>("/read", async (req) => sessions.read(req, Number(req.query.at)));
  app.get("/touch", async (req, reply) => {
    const { login } = sessions.read(req);
    login!.seenAt = Date.now();
    sessions.write(reply, login!);
    return "ok";
  });
  app.get("/token", async (req, reply) => sessions.csrfToken(req, reply, sessions.read(req).login));
  app.get<{ Querystring: { token: string } }>("/check", async (req) => sessions.csrfValid(req, req.query.token, sessions.read(req).login));
  return app;
}

const cookieOf = (setCookie: string | string[] | undefined, name: string) => {
  const all = Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : [];
  return all.find((c) => c.startsWith(`${name}=`))!;
};
const pair = (c: string) => c.split(";")[0]!;

let app: FastifyInstance;
const sessions = new ConsoleSessions(randomBytes(32), { secure: false, idleTimeoutMs: 30 * MIN, absoluteTimeoutMs: 12 * 60 * MIN });
beforeAll(async () => {
  app = appWith(sessions);
  await app.ready();
});
afterAll(() => app.close());

async function login(): Promise<{ cookie: string; started: number }> {
  const started = Date.now();
  const res = await app.inject({ url: "/start" });
  return { cookie: pair(cookieOf(res.headers["set-cookie"], "cs_console")), started };
}

describe("console logins", () => {
  it("sets an HttpOnly, SameSite=Lax cookie for /console, Secure when the public URL is https", async () => {
    const res = await app.inject({ url: "/start" });
    const c = cookieOf(res.headers["set-cookie"], "cs_console");
    expect(c).toMatch(/; Path=\/console; HttpOnly; SameSite=Lax; Max-Age=\d+$/);
    const secure = appWith(new ConsoleSessions(randomBytes(32), { secure: true, idleTimeoutMs: MIN, absoluteTimeoutMs: 60 * MIN }));
    const s = await secure.inject({ url: "/start" });
    expect(cookieOf(s.headers["set-cookie"], "cs_console")).toContain("; Secure;");
    await secure.close();
  });

  it("ends after the idle timeout, and after the absolute timeout however active", async () => {
    const { cookie, started } = await login();
    const at = async (t: number, c = cookie) => (await app.inject({ url: `/read?at=${t}`, headers: { cookie: c } })).json() as { login?: ConsoleLogin; expired?: string };
    expect((await at(started + 29 * MIN)).login?.email).toBe("bob@example.com");
    expect(await at(started + 31 * MIN)).toEqual({ expired: "idle" });
    // Activity moves the idle clock on (the cookie is rewritten), never the absolute one.
    const touched = pair(cookieOf((await app.inject({ url: "/touch", headers: { cookie } })).headers["set-cookie"], "cs_console"));
    expect(touched).not.toBe(cookie);
    expect(await at(started + 12 * 60 * MIN + 1000, touched)).toEqual({ expired: "absolute" });
  });

  it("ignores a cookie whose content was changed, or signed with another key", async () => {
    const { cookie, started } = await login();
    const [body, mac] = cookie.slice("cs_console=".length).split(".");
    const changed = JSON.parse(Buffer.from(body!, "base64url").toString()) as ConsoleLogin;
    changed.groups.push("admins");
    const forged = `cs_console=${Buffer.from(JSON.stringify(changed)).toString("base64url")}.${mac}`;
    expect((await app.inject({ url: `/read?at=${started}`, headers: { cookie: forged } })).json()).toEqual({ rejected: "bad_signature" });
    const other = appWith(new ConsoleSessions(randomBytes(32), { secure: false, idleTimeoutMs: MIN, absoluteTimeoutMs: 60 * MIN }));
    expect((await other.inject({ url: `/read?at=${started}`, headers: { cookie } })).json()).toEqual({ rejected: "bad_signature" });
    await other.close();
  });
});

describe("CSRF tokens", () => {
  it("are valid only with the browser's own CSRF cookie and the login they were issued for", async () => {
    const { cookie } = await login();
    const first = await app.inject({ url: "/token", headers: { cookie } });
    const csrf = pair(cookieOf(first.headers["set-cookie"], "cs_csrf"));
    const token = first.body;
    const check = async (t: string, cookies: string) => (await app.inject({ url: `/check?token=${encodeURIComponent(t)}`, headers: { cookie: cookies } })).json() as boolean;
    expect(await check(token, `${cookie}; ${csrf}`)).toBe(true);
    expect(await check("", `${cookie}; ${csrf}`)).toBe(false);
    // Another browser (another CSRF cookie) cannot reuse the token.
    expect(await check(token, `${cookie}; cs_csrf=${randomBytes(24).toString("base64url")}`)).toBe(false);
    // Nor can another login in the same browser (the token is bound to the login's id).
    const { cookie: second } = await login();
    expect(await check(token, `${second}; ${csrf}`)).toBe(false);
  });
});
