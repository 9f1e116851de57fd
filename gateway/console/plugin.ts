// The web console: a Fastify plugin under /console, pages rendered on the server. Every page
// but the login page needs a login; every POST needs the CSRF token; every response carries a
// strict Content-Security-Policy (no inline script or style) and is never cached.
//
//   onRequest: security headers ─▶ preHandler: login cookie, timeouts, roles, CSRF ─▶ route
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { createContext, setState, type ConsoleDeps } from "./context.js";
import { registerEvidence } from "./evidence.js";
import { registerInbox } from "./inbox.js";
import { buildKeyring } from "../keys/keyring.js";
import { registerLogin } from "./login.js";
import { CONSOLE_TEMPLATE_DIR } from "./render.js";
import { registerReplay } from "./replay.js";
import { rolesOf } from "./roles.js";
import { ConsoleSessions } from "./session.js";

export { CONSOLE_PREFIX, safeNext } from "./paths.js";
import { CONSOLE_PREFIX } from "./paths.js";
/** Paths served without a login. */
const PUBLIC = [/^\/console\/login(\/|$|\?)/, /^\/console\/static\//];

const CSP = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export function registerConsole(app: FastifyInstance, deps: ConsoleDeps): void {
  const c = deps.config.console;
  if (!c.enabled) return;
  const sessions = new ConsoleSessions(deps.keys ?? buildKeyring(deps.config).console, {
    secure: deps.config.publicUrl.startsWith("https://"),
    idleTimeoutMs: c.idleTimeoutMs,
    absoluteTimeoutMs: c.absoluteTimeoutMs,
  });
  const prune = setInterval(() => sessions.prune(), 60_000);
  prune.unref();
  app.addHook("onClose", async () => clearInterval(prune));
  const ctx = createContext(deps, sessions);

  app.get("/", async (_req, reply) => reply.redirect(`${CONSOLE_PREFIX}/`));

  void app.register(
    async (scope) => {
      // Forms only; bounded like every body (a reason is short).
      scope.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string", bodyLimit: 64 * 1024 }, (_req, body, done) => {
        done(null, Object.fromEntries(new URLSearchParams(body as string)));
      });

      scope.addHook("onRequest", async (_req, reply) => {
        reply.header("content-security-policy", CSP);
        reply.header("x-frame-options", "DENY");
        reply.header("x-content-type-options", "nosniff");
        reply.header("referrer-policy", "same-origin");
        reply.header("cache-control", "no-store");
      });

      scope.addHook("preHandler", async (req, reply) => {
        const path = req.url;
        const isPublic = PUBLIC.some((p) => p.test(path));
        const { login, expired, rejected } = sessions.read(req);
        const roles = login ? rolesOf(login, deps.currentConfig?.() ?? deps.config) : undefined;
        setState(req, { login, roles, csrf: "" });
        if (rejected || expired) {
          // A cookie that is no login (altered, forged, logged out, timed out) is recorded once and
          // cleared, so the browser stops sending it.
          await ctx.record(req, "login_refused", { why: rejected ? `cookie_${rejected}` : `cookie_expired_${expired}`, path: path.split("?")[0] }).catch(() => {});
          sessions.end(reply, undefined);
        }
        if (!login && !isPublic) {
          if (req.method !== "GET") return reply.code(401).type("text/plain").send("log in first");
          const next = encodeURIComponent(path);
          return reply.redirect(`${CONSOLE_PREFIX}/login?next=${next}${expired ? `&expired=${expired}` : ""}`);
        }
        if (login && !isPublic) {
          // Idle timeout: each request moves the login's last-seen time on.
          login.seenAt = Date.now();
          sessions.write(reply, login);
        }
        setState(req, { login, roles, csrf: sessions.csrfToken(req, reply, login) });
        if (req.method === "POST" && !sessions.csrfValid(req, (req.body as Record<string, unknown> | undefined)?._csrf, login)) {
          await ctx.record(req, "csrf_refused", { path: path.split("?")[0] }).catch(() => {});
          return ctx.page(req, reply, "error", { title: "Form expired" }, { heading: "This form is no longer valid", message: "The page was open too long or came from elsewhere. Go back, reload the page, and try again." }, 403);
        }
      });

      scope.setNotFoundHandler((req, reply) => ctx.page(req, reply, "error", { title: "Not found" }, { heading: "Not found", message: "There is no such page." }, 404));
      scope.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
        const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
        if (status === 500) req.log.error({ err }, "console: page failed");
        return ctx.page(req, reply, "error", { title: "Error" }, { heading: status === 500 ? "Something went wrong" : "Bad request", message: status === 500 ? `The page could not be shown (request ${req.id}).` : err.message }, status);
      });

      const assets: Record<string, [string, string]> = {
        "console.css": ["text/css; charset=utf-8", readFileSync(join(CONSOLE_TEMPLATE_DIR, "console.css"), "utf8")],
        "console.js": ["text/javascript; charset=utf-8", readFileSync(join(CONSOLE_TEMPLATE_DIR, "console.js"), "utf8")],
      };
      scope.get<{ Params: { file: string } }>("/static/:file", async (req, reply) => {
        const a = assets[req.params.file];
        if (!a) return reply.code(404).type("text/plain").send("not found");
        return reply.type(a[0]).header("cache-control", "public, max-age=300").send(a[1]);
      });

      registerLogin(scope, ctx);
      registerInbox(scope, ctx);
      registerReplay(scope, ctx);
      registerEvidence(scope, ctx);
      for (const pages of deps.pages ?? []) pages(scope, ctx);
    },
    { prefix: CONSOLE_PREFIX },
  );
}

export type { FastifyRequest };
