// Logging in and out. Two ways in: the configured issuers, through the browser (OpenID Connect
// authorization code flow with PKCE, by openid-client), and, in the quick start only (the dev
// issuer on a loopback bind), a one-click login as one of the quick start's people.
//
//   GET  /console/login                 the choices
//   POST /console/login/dev             {subject, next}: the quick start's one-click login
//   GET  /console/login/oidc/:n         → the issuer's authorization endpoint (state, nonce, PKCE in a signed cookie)
//   GET  /console/login/callback        ← the issuer: code exchanged, ID token checked, login cookie set
//   POST /console/logout
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import * as oidc from "openid-client";
import { identityFromClaims } from "../auth/identity.js";
import type { GatewayConfig } from "../config/load.js";
import type { ConsoleLoginIssuer, DevUser } from "./config.js";
import type { ConsoleContext } from "./context.js";
import { safeNext } from "./paths.js";
import { rolesOf } from "./roles.js";
import type { ConsoleUser } from "./session.js";

const OIDC_COOKIE = "cs_oidc";
const OIDC_COOKIE_PATH = "/console/login";
const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

export function isLoopbackBind(config: GatewayConfig): boolean {
  return LOOPBACK.has(config.server.host) || config.server.host.startsWith("127.");
}

/** The one-click logins: offered only with the dev issuer on, on a loopback bind. */
export function devUsersOf(config: GatewayConfig, devIssuerOn: boolean): DevUser[] {
  if (!devIssuerOn || !isLoopbackBind(config)) return [];
  if (config.console.devUsers) return config.console.devUsers;
  const users: DevUser[] = [{ subject: "alice", email: "alice@example.com", name: "Alice", groups: ["dev"] }];
  const byEmail = new Map<string, string[]>();
  for (const [group, g] of Object.entries(config.approvals?.groups ?? {})) for (const e of g.emails) byEmail.set(e, [...(byEmail.get(e) ?? []), group]);
  for (const [email, groups] of byEmail) {
    const local = email.split("@")[0]!;
    if (local === "alice") users[0]!.groups.push(...groups);
    else users.push({ subject: local, email, name: local.charAt(0).toUpperCase() + local.slice(1), groups });
  }
  return users;
}

interface PendingLogin {
  n: number;
  verifier: string;
  state: string;
  nonce: string;
  next: string;
}

export function registerLogin(app: FastifyInstance, ctx: ConsoleContext): void {
  const { config } = ctx.deps;
  const devUsers = devUsersOf(config, Boolean(ctx.deps.devIssuer));
  const issuers = config.console.login;
  const redirectUri = `${config.publicUrl}/console/login/callback`;
  /** Discovery per issuer, once (bound: the configured issuers); a failure is retried on the next login. */
  const discovered = new Map<number, Promise<oidc.Configuration>>();
  const discover = (n: number, i: ConsoleLoginIssuer) => {
    let p = discovered.get(n);
    if (!p) {
      const url = new URL(i.issuer);
      // Plain http only for an issuer on this machine (a test provider, a local IdP).
      const insecure = url.protocol === "http:" && (LOOPBACK.has(url.hostname) || url.hostname.startsWith("127."));
      p = oidc.discovery(url, i.clientId, i.clientSecret ? i.clientSecret.reveal() : undefined, i.clientSecret ? undefined : oidc.None(), insecure ? { execute: [oidc.allowInsecureRequests], timeout: 10 } : { timeout: 10 });
      p.catch(() => discovered.delete(n));
      discovered.set(n, p);
    }
    return p;
  };

  const loginPage = (req: FastifyRequest, reply: FastifyReply, notice?: { text: string; error?: boolean }, status = 200) => {
    const q = req.query as { next?: string; expired?: string };
    const next = safeNext(q.next);
    const expired = q.expired === "idle" ? "You were away too long: log in again." : q.expired === "absolute" ? "Your login reached its time limit: log in again." : undefined;
    return ctx.page(req, reply, "login", { title: "Log in", notice: notice ?? (expired ? { text: expired } : undefined) }, {
      next,
      devUsers: devUsers.map((u) => ({ ...u, label: u.name ?? u.subject, groupsText: u.groups.join(", ") || "no groups" })),
      hasDev: devUsers.length > 0,
      issuers: issuers.map((i, n) => ({ n, label: i.label, href: `/console/login/oidc/${n}?next=${encodeURIComponent(next)}` })),
      none: devUsers.length === 0 && issuers.length === 0,
    }, status);
  };

  const finish = async (req: FastifyRequest, reply: FastifyReply, user: ConsoleUser, next: string) => {
    const { sessions } = ctx;
    let login;
    try {
      login = sessions.start(reply, user);
    } catch (err) {
      await ctx.record(req, "login_refused", { subjectTried: user.subject, issuer: user.issuer, why: (err as Error).message }).catch(() => {});
      return loginPage(req, reply, { text: `Login refused: ${(err as Error).message}.`, error: true }, 400);
    }
    const roles = rolesOf(user, ctx.deps.currentConfig?.() ?? config);
    (ctx.state(req) as { login?: typeof login }).login = login;
    // Fail closed: a login the audit store cannot record does not happen.
    try {
      await ctx.record(req, "login", { groups: user.groups, roles });
    } catch {
      ctx.sessions.end(reply, login);
      return loginPage(req, reply, { text: "The audit store is unavailable: logins are refused until it recovers.", error: true }, 503);
    }
    return reply.redirect(next);
  };

  /**
   * Where a login returns to: a console path, else the console's home. A `next` that leads off the
   * console (another site, `//host`, `javascript:`) is an open-redirect attempt or a bad link: recorded.
   */
  const nextOf = async (req: FastifyRequest, supplied: unknown): Promise<string> => {
    const next = safeNext(supplied);
    if (typeof supplied === "string" && supplied !== "" && next !== supplied && !supplied.startsWith("/console/")) {
      await ctx.record(req, "redirect_refused", { next: supplied.slice(0, 200) }).catch(() => {});
    }
    return next;
  };

  app.get("/login", async (req, reply) => {
    const next = await nextOf(req, (req.query as { next?: string }).next);
    if (ctx.state(req).login) return reply.redirect(next);
    return loginPage(req, reply);
  });

  app.post("/login/dev", async (req, reply) => {
    const body = req.body as { subject?: string; next?: string };
    const user = devUsers.find((u) => u.subject === body.subject);
    if (!user || !ctx.deps.devIssuer) {
      await ctx.record(req, "login_refused", { subjectTried: String(body.subject ?? "").slice(0, 100), why: "not a quick-start login" }).catch(() => {});
      return loginPage(req, reply, { text: "That one-click login is not offered here.", error: true }, 403);
    }
    return finish(req, reply, { kind: "user", subject: user.subject, issuer: ctx.deps.devIssuer.url, email: user.email, name: user.name, groups: [...user.groups], via: "dev" }, await nextOf(req, body.next));
  });

  app.get<{ Params: { n: string }; Querystring: { next?: string } }>("/login/oidc/:n", async (req, reply) => {
    const n = Number(req.params.n);
    const issuer = Number.isInteger(n) ? issuers[n] : undefined;
    if (!issuer) return loginPage(req, reply, { text: "No such login.", error: true }, 404);
    let cfg: oidc.Configuration;
    try {
      cfg = await discover(n, issuer);
    } catch (err) {
      req.log.warn({ issuer: issuer.issuer, err }, "console: issuer discovery failed");
      return loginPage(req, reply, { text: `${issuer.label} cannot be reached right now; try again shortly.`, error: true }, 502);
    }
    const pending: PendingLogin = { n, verifier: oidc.randomPKCECodeVerifier(), state: oidc.randomState(), nonce: oidc.randomNonce(), next: await nextOf(req, req.query.next) };
    ctx.sessions.seal(reply, OIDC_COOKIE, OIDC_COOKIE_PATH, pending, 600);
    const url = oidc.buildAuthorizationUrl(cfg, {
      redirect_uri: redirectUri,
      scope: issuer.scopes.join(" "),
      code_challenge: await oidc.calculatePKCECodeChallenge(pending.verifier),
      code_challenge_method: "S256",
      state: pending.state,
      nonce: pending.nonce,
    });
    return reply.redirect(url.href);
  });

  app.get("/login/callback", async (req, reply) => {
    const pending = ctx.sessions.unseal(req, reply, OIDC_COOKIE, OIDC_COOKIE_PATH) as PendingLogin | undefined;
    const issuer = pending ? issuers[pending.n] : undefined;
    if (!pending || !issuer) {
      await ctx.record(req, "login_refused", { why: "no login in progress in this browser (or it took over 10 minutes)" }).catch(() => {});
      return loginPage(req, reply, { text: "That login was not started here, or took too long: start again.", error: true }, 400);
    }
    try {
      const cfg = await discover(pending.n, issuer);
      const tokens = await oidc.authorizationCodeGrant(cfg, new URL(req.url, config.publicUrl), {
        pkceCodeVerifier: pending.verifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      });
      const claims = tokens.claims();
      if (!claims) throw new Error("the issuer returned no ID token");
      const id = identityFromClaims(claims, issuer);
      return await finish(req, reply, { kind: "user", subject: id.subject, issuer: issuer.issuer, email: id.email, name: id.name, groups: id.groups, via: issuer.label }, pending.next);
    } catch (err) {
      const why = err instanceof Error ? `${err.name}: ${err.message}`.slice(0, 300) : String(err);
      await ctx.record(req, "login_refused", { issuer: issuer.issuer, why }).catch(() => {});
      return loginPage(req, reply, { text: `${issuer.label} did not confirm the login (${why}).`, error: true }, 400);
    }
  });

  app.post("/logout", async (req, reply) => {
    const login = ctx.state(req).login;
    await ctx.record(req, "logout").catch(() => {});
    ctx.sessions.end(reply, login);
    return reply.redirect("/console/login");
  });
}
