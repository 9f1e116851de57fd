// The gateway as the OAuth 2.1 authorization server of its own connections, so that MCP clients
// that follow the MCP authorization spec log in through the browser:
//
//   401 + resource_metadata ─▶ /.well-known/oauth-protected-resource/mcp/<c> (names this server)
//   ─▶ /.well-known/oauth-authorization-server ─▶ /oauth/register (or a client ID metadata document)
//   ─▶ /oauth/authorize ─▶ /console/oauth/consent (after the console's login) ─▶ code
//   ─▶ /oauth/token ─▶ the gateway's own access token (audience: the connection) + refresh token
import type { FastifyInstance } from "fastify";
import type { ConsoleContext } from "../console/context.js";
import { registerAuthorize } from "./authorize.js";
import { registerConsent } from "./consent.js";
import { createOAuthContext, type AuthorizationServerDeps } from "./context.js";
import { authorizationServerMetadata, OAUTH_PATHS } from "./metadata.js";
import { registerRegistration } from "./register.js";
import { OAuthRefusal } from "./refusal.js";
import { registerToken } from "./token.js";

const SWEEP_INTERVAL_MS = 60_000;

export interface AuthorizationServer {
  /** Mounted inside the console (its login, CSRF and pages). */
  registerConsentPages(scope: FastifyInstance, console: ConsoleContext): void;
}

export function registerAuthorizationServer(app: FastifyInstance, deps: AuthorizationServerDeps): AuthorizationServer {
  const ctx = createOAuthContext(deps);
  const o = deps.config.oauth;
  const sweep = setInterval(() => {
    ctx.store.sweep(o.registration.unusedClientMs).catch((err: unknown) => deps.log.warn({ err }, "oauth: sweep failed"));
  }, SWEEP_INTERVAL_MS);
  sweep.unref();
  app.addHook("onClose", async () => {
    clearInterval(sweep);
    ctx.stop();
  });

  const metadata = authorizationServerMetadata(deps.config.publicUrl, o);
  // Browser-based MCP clients read these across origins; no cookie is involved anywhere here.
  const cors = { "access-control-allow-origin": "*", "access-control-allow-headers": "content-type, mcp-protocol-version" };
  app.get("/.well-known/oauth-authorization-server", async (_req, reply) => reply.headers(cors).send(metadata));
  app.get(OAUTH_PATHS.jwks, async (_req, reply) => reply.headers(cors).send({ keys: [deps.key.publicJwk] }));

  void app.register(async (scope) => {
    scope.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string", bodyLimit: 16 * 1024 }, (_req, body, done) => {
      const params = new URLSearchParams(body as string);
      // A repeated parameter is ambiguous: refused rather than guessed.
      const repeated = [...new Set([...params.keys()].filter((k) => params.getAll(k).length > 1))];
      done(null, repeated.length > 0 ? { __repeated: repeated.join(",") } : Object.fromEntries(params));
    });
    scope.addHook("onRequest", async (req, reply) => {
      reply.headers(cors);
      if (req.method === "OPTIONS") return reply.code(204).header("access-control-allow-methods", "GET, POST").send();
    });
    scope.addHook("preHandler", async (req, reply) => {
      const repeated = (req.body as { __repeated?: string } | undefined)?.__repeated;
      if (repeated) return ctx.sendError(reply, ctx.refused(req, new OAuthRefusal("invalid_request", `parameters given more than once: ${repeated}`, "token_refused")));
    });
    scope.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
      const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
      if (status === 500) req.log.error({ err }, "oauth: request failed");
      const refusal = new OAuthRefusal(status === 500 ? "temporarily_unavailable" : "invalid_request", status === 500 ? `the request could not be completed (request ${req.id})` : err.message, req.url.startsWith(OAUTH_PATHS.register) ? "registration_refused" : "token_refused", status === 500 ? 503 : status);
      return ctx.sendError(reply, ctx.refused(req, refusal));
    });
    for (const path of [OAUTH_PATHS.token, OAUTH_PATHS.register]) scope.options(path, async () => undefined);
    registerToken(scope, ctx);
    if (o.registration.enabled) registerRegistration(scope, ctx);
  });
  registerAuthorize(app, ctx);

  return { registerConsentPages: (scope, console) => registerConsent(scope, console, ctx) };
}
