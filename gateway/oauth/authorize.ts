// GET /oauth/authorize: the start of an MCP client's browser login. The request is checked here
// (client, exact redirect URI, PKCE S256, a resource that is one of the gateway's connections),
// then the browser goes to the console's consent page, which needs the console's login first.
// Until the redirect URI is known good, errors are shown to the person, never sent anywhere.
import type { FastifyInstance, FastifyReply } from "fastify";
import { renderPage } from "../console/render.js";
import { CONSOLE_PREFIX } from "../console/paths.js";
import { redirectBack, type AuthorizationRequest } from "./authorization-request.js";
import type { OAuthContext } from "./context.js";
import { OAUTH_PATHS } from "./metadata.js";
import { redirectUriMatches } from "./redirect-uri.js";
import { OAuthRefusal } from "./refusal.js";

export const CONSENT_PATH = `${CONSOLE_PREFIX}/oauth/consent`;
const CSP = "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

type Query = Record<string, string | string[] | undefined>;

export function registerAuthorize(app: FastifyInstance, ctx: OAuthContext): void {
  app.get<{ Querystring: Query }>(OAUTH_PATHS.authorize, async (req, reply) => {
    const q = req.query;
    const one = (name: string): string | undefined => {
      const v = q[name];
      if (Array.isArray(v)) throw new OAuthRefusal("invalid_request", `${name} is given more than once`, "authorize_refused");
      return v;
    };
    // Step 1: who asks, and where the answer may go. Refusals here are shown, not redirected.
    let clientId: string | undefined;
    let redirectUri: string | undefined;
    let client;
    try {
      clientId = one("client_id");
      redirectUri = one("redirect_uri");
      client = await ctx.client(clientId);
      if (!redirectUri) throw new OAuthRefusal("invalid_request", "redirect_uri is required", "authorize_refused");
      if (!redirectUriMatches(client.redirectUris, redirectUri)) throw new OAuthRefusal("invalid_request", "redirect_uri is not one the client registered", "authorize_refused");
    } catch (err) {
      if (!(err instanceof OAuthRefusal)) throw err;
      ctx.refused(req, err, { clientId: clientId?.slice(0, 200) ?? null, redirectUri: redirectUri?.slice(0, 300) ?? null });
      return errorPage(reply, err);
    }
    // Step 2: the rest of the request; refusals go back to the client's redirect URI.
    const state = q.state;
    if (Array.isArray(state) || (state !== undefined && state.length > 1000)) {
      return errorPage(reply, ctx.refused(req, new OAuthRefusal("invalid_request", "state is repeated or too long", "authorize_refused"), { clientId }));
    }
    const back = (refusal: OAuthRefusal, detail: Record<string, unknown> = {}) => {
      ctx.refused(req, refusal, { clientId, ...detail });
      return reply.redirect(redirectBack({ redirectUri: redirectUri!, state }, ctx.issuer, { error: refusal.error, error_description: refusal.description }));
    };
    try {
      if (one("response_type") !== "code") return back(new OAuthRefusal("unsupported_response_type", "response_type must be code", "authorize_refused"));
      const challenge = one("code_challenge");
      if (!challenge || !/^[A-Za-z0-9_-]{43}$/.test(challenge)) return back(new OAuthRefusal("invalid_request", "PKCE is required: code_challenge (S256, 43 characters) is missing or malformed", "authorize_refused"));
      if (one("code_challenge_method") !== "S256") return back(new OAuthRefusal("invalid_request", "PKCE code_challenge_method must be S256", "authorize_refused"));
      const resource = one("resource");
      const connection = ctx.connectionOf(resource);
      if (!connection) return back(new OAuthRefusal("invalid_target", "resource must be one of this gateway's connections (<publicUrl>/mcp/<connection>)", "authorize_refused"), { resource: resource?.slice(0, 300) ?? null });
      const scope = one("scope");
      if (scope !== undefined && scope.length > 1000) return back(new OAuthRefusal("invalid_request", "scope is too long", "authorize_refused"));
      if ((await ctx.store.pendingCodeCount()) >= ctx.deps.config.oauth.maxCodes) {
        return back(new OAuthRefusal("temporarily_unavailable", "too many logins in progress (oauth.maxCodes); try again shortly", "authorize_refused", 503));
      }
      const request: AuthorizationRequest = { clientId: client.clientId, clientName: client.clientName, redirectUri, codeChallenge: challenge, resource: resource!, state, scope };
      return reply.redirect(`${CONSENT_PATH}?request=${ctx.sealer.seal(request)}`);
    } catch (err) {
      if (err instanceof OAuthRefusal) return back(err);
      throw err;
    }
  });
}

function errorPage(reply: FastifyReply, refusal: OAuthRefusal): FastifyReply {
  return reply
    .code(refusal.status)
    .headers({ "content-security-policy": CSP, "x-frame-options": "DENY", "x-content-type-options": "nosniff", "cache-control": "no-store" })
    .type("text/html; charset=utf-8")
    .send(renderPage("error", { title: "Login refused", csrf: "" }, { heading: "This application's login request was refused", message: `${refusal.error}: ${refusal.description}` }));
}

