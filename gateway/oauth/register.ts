// POST /oauth/register: dynamic client registration (RFC 7591) for public clients (PKCE, no
// secret). Rate-limited per source address, bounded in number; every refusal recorded.
import { randomUUID } from "node:crypto";
import type { FastifyInstance } from "fastify";
import type { OAuthContext } from "./context.js";
import { OAUTH_PATHS } from "./metadata.js";
import { PerAddressLimit } from "./rate-limit.js";
import { redirectUriProblem } from "./redirect-uri.js";
import { OAuthRefusal } from "./refusal.js";

const MAX_BODY = 16 * 1024;

export function registerRegistration(app: FastifyInstance, ctx: OAuthContext): void {
  const settings = ctx.deps.config.oauth.registration;
  const limit = new PerAddressLimit(settings.perMinutePerAddress);

  app.post(OAUTH_PATHS.register, { bodyLimit: MAX_BODY }, async (req, reply) => {
    try {
      const wait = limit.take(req.ip);
      if (wait > 0) throw new OAuthRefusal("slow_down", `too many registrations from this address: retry in ${wait} s`, "registration_rate_limited", 429, { "retry-after": String(wait) });
      const meta = parseMetadata(req.body);
      if ((await ctx.store.clientCount()) >= settings.maxClients) {
        await ctx.store.sweep(settings.unusedClientMs);
        if ((await ctx.store.clientCount()) >= settings.maxClients) throw new OAuthRefusal("temporarily_unavailable", "the gateway holds as many registered clients as it may (oauth.registration.maxClients)", "registration_refused", 503);
      }
      const clientId = `cs-${randomUUID()}`;
      await ctx.store.addClient({ clientId, clientName: meta.clientName, redirectUris: meta.redirectUris }, req.ip);
      await ctx.granted(req, "client_registered", { clientId, clientName: meta.clientName ?? null, redirectUris: meta.redirectUris });
      return reply.code(201).header("cache-control", "no-store").send({
        client_id: clientId,
        client_id_issued_at: Math.floor(Date.now() / 1000),
        ...(meta.clientName ? { client_name: meta.clientName } : {}),
        redirect_uris: meta.redirectUris,
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
        // Public clients only: PKCE protects the code; a secret in a desktop app protects nothing.
        token_endpoint_auth_method: "none",
      });
    } catch (err) {
      if (!(err instanceof OAuthRefusal)) throw err;
      return ctx.sendError(reply, ctx.refused(req, err));
    }
  });
}

function parseMetadata(body: unknown): { clientName?: string | undefined; redirectUris: string[] } {
  const bad = (why: string) => new OAuthRefusal("invalid_client_metadata", why, "registration_refused");
  let doc: unknown;
  try {
    doc = typeof body === "string" ? JSON.parse(body) : body;
  } catch {
    throw bad("the body is not JSON");
  }
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) throw bad("the body must be a JSON object of client metadata");
  const d = doc as Record<string, unknown>;
  if (!Array.isArray(d.redirect_uris) || d.redirect_uris.length === 0 || d.redirect_uris.length > 10) {
    throw new OAuthRefusal("invalid_redirect_uri", "redirect_uris must list 1 to 10 URIs", "registration_refused");
  }
  for (const uri of d.redirect_uris) {
    const problem = redirectUriProblem(uri);
    if (problem) throw new OAuthRefusal("invalid_redirect_uri", problem, "registration_refused");
  }
  if (d.grant_types !== undefined && !(Array.isArray(d.grant_types) && d.grant_types.every((g) => g === "authorization_code" || g === "refresh_token"))) {
    throw bad("grant_types may hold only authorization_code and refresh_token");
  }
  if (d.response_types !== undefined && !(Array.isArray(d.response_types) && d.response_types.every((t) => t === "code"))) throw bad("response_types may hold only code");
  if (d.client_name !== undefined && (typeof d.client_name !== "string" || d.client_name.length > 100)) throw bad("client_name must be a string of at most 100 characters");
  return { clientName: typeof d.client_name === "string" && d.client_name.trim() ? d.client_name.trim() : undefined, redirectUris: [...new Set(d.redirect_uris as string[])] };
}
