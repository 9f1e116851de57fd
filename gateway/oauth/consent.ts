// The console's consent page: the person, logged in through the console's own login (the IdP,
// or the quick start's one-click login), sees which application asks for which connection and
// allows or denies it. Allowing issues a single-use authorization code to the client's
// registered redirect URI. The console's CSRF token guards the form.
//
//   GET  /console/oauth/consent?request=<signed request>
//   POST /console/oauth/consent   {request, decision: allow | deny, _csrf}
import { randomBytes } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { mayUseConnection } from "../auth/access.js";
import type { ConsoleContext } from "../console/context.js";
import { redirectBack, type AuthorizationRequest } from "./authorization-request.js";
import type { OAuthContext } from "./context.js";
import type { GrantIdentity } from "./grant.js";
import { OAuthRefusal } from "./refusal.js";

const CONSENT_CSP = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

export function registerConsent(app: FastifyInstance, page: ConsoleContext, ctx: OAuthContext): void {
  const { config } = ctx.deps;

  const invalid = (req: FastifyRequest, reply: FastifyReply) => {
    ctx.refused(req, new OAuthRefusal("invalid_request", "the signed authorization request is missing, altered or older than 10 minutes", "consent_refused"), {}, { subject: page.state(req).login?.subject ?? null });
    return page.page(req, reply, "error", { title: "Login expired" }, { heading: "This login request is no longer valid", message: "It took too long or was altered. Start the login again from the application." }, 400);
  };

  app.get<{ Querystring: { request?: string } }>("/oauth/consent", async (req, reply) => {
    const r = ctx.sealer.unseal(req.query.request);
    if (!r) return invalid(req, reply);
    const c = ctx.connectionOf(r.resource);
    if (!c) return invalid(req, reply);
    const redirect = new URL(r.redirectUri);
    // Browsers hold a form's redirect to the page's form-action too: the client's redirect URI
    // (its origin, or its private-use scheme) is added for this page only.
    const target = redirect.protocol === "http:" || redirect.protocol === "https:" ? redirect.origin : redirect.protocol;
    reply.header("content-security-policy", `${CONSENT_CSP} ${target}`);
    return page.page(req, reply, "consent", { title: "Allow access" }, {
      request: req.query.request,
      clientName: r.clientName ?? "An application",
      clientId: r.clientId,
      redirectHost: redirect.protocol === "http:" || redirect.protocol === "https:" ? redirect.host : redirect.protocol,
      connection: c.name,
      resource: r.resource,
      description: c.description,
      lasts: durationText(config.oauth.refreshTokenTtlMs),
    });
  });

  app.post<{ Body: { request?: string; decision?: string } }>("/oauth/consent", async (req, reply) => {
    const r = ctx.sealer.unseal(req.body?.request);
    if (!r) return invalid(req, reply);
    const login = page.state(req).login!;
    const c = ctx.connectionOf(r.resource);
    if (!c) return invalid(req, reply);
    const connection = c.name;
    const who = { subject: login.subject, connection };
    if (req.body?.decision !== "allow") {
      ctx.refused(req, new OAuthRefusal("access_denied", "the person denied the request", "consent_refused"), { clientId: r.clientId }, who);
      return reply.redirect(redirectBack(r, ctx.issuer, { error: "access_denied", error_description: "the person denied the request" }));
    }
    const identity: GrantIdentity = { issuer: login.issuer, subject: login.subject, email: login.email, name: login.name, groups: login.groups };
    if (!mayUseConnection(c.access, { kind: "user", ...identity })) {
      ctx.refused(req, new OAuthRefusal("access_denied", `your groups do not grant the connection '${connection}'`, "consent_refused"), { clientId: r.clientId, groups: identity.groups }, who);
      return page.page(req, reply, "error", { title: "Not allowed" }, { heading: "Not allowed", message: `Your groups do not grant the connection '${connection}', so no application can use it on your behalf.` }, 403);
    }
    return issueCode(req, reply, ctx, r, identity, connection);
  });
}

/** "7 days", "12 hours", "30 minutes". */
function durationText(ms: number): string {
  const [n, unit] = ms >= 2 * 86_400_000 ? [ms / 86_400_000, "days"] : ms >= 2 * 3_600_000 ? [ms / 3_600_000, "hours"] : [ms / 60_000, "minutes"];
  return `${Math.floor(n)} ${unit}`;
}

async function issueCode(req: FastifyRequest, reply: FastifyReply, ctx: OAuthContext, r: AuthorizationRequest, identity: GrantIdentity, connection: string) {
  const code = randomBytes(32).toString("base64url");
  await ctx.store.addCode(code, { clientId: r.clientId, resource: r.resource, scope: r.scope, identity }, r.redirectUri, r.codeChallenge, ctx.deps.config.oauth.codeTtlMs);
  // Fail closed: a grant the audit store cannot record is not given (the code stays unusable: its client never learns it).
  await ctx.granted(req, "consent_granted", { clientId: r.clientId, clientName: r.clientName ?? null, resource: r.resource, issuer: identity.issuer, email: identity.email ?? null }, { subject: identity.subject, connection });
  return reply.redirect(redirectBack(r, ctx.issuer, { code }));
}
