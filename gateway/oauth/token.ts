// POST /oauth/token: the code exchange (PKCE verified, redirect URI, client and resource as
// authorized; codes single use) and the refresh grant (rotated, single use, bound to its client
// and resource; presenting a used one revokes every token of that login). Issues the gateway's
// short-lived access tokens.
import { createHash, timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { signAccessToken } from "./access-token.js";
import type { OAuthContext } from "./context.js";
import type { Grant } from "./grant.js";
import { OAUTH_PATHS } from "./metadata.js";
import { OAuthRefusal } from "./refusal.js";

type Form = Record<string, string>;

const refusal = (error: ConstructorParameters<typeof OAuthRefusal>[0], why: string, status = 400) => new OAuthRefusal(error, why, "token_refused", status);

export function registerToken(app: FastifyInstance, ctx: OAuthContext): void {
  const o = ctx.deps.config.oauth;

  const tokens = async (req: FastifyRequest, grant: Grant, family: string, familyEnds: Date, withinGrace = false) => {
    const refreshToken = await ctx.store.addRefreshToken(grant, family, familyEnds);
    const accessToken = await signAccessToken(ctx.deps.key, ctx.issuer, grant, o.accessTokenTtlSeconds);
    await ctx.granted(req, "token_issued", { clientId: grant.clientId, resource: grant.resource, issuer: grant.identity.issuer, grantType: (req.body as Form).grant_type, ...(withinGrace ? { reuseWithinGrace: true } : {}) }, { subject: grant.identity.subject, connection: ctx.connectionOf(grant.resource)?.name ?? null });
    return { access_token: accessToken, token_type: "Bearer", expires_in: o.accessTokenTtlSeconds, refresh_token: refreshToken, ...(grant.scope ? { scope: grant.scope } : {}) };
  };

  const authorizationCode = async (req: FastifyRequest, f: Form) => {
    if (!f.code || !f.client_id || !f.redirect_uri) throw refusal("invalid_request", "code, client_id and redirect_uri are required");
    if (!f.code_verifier || !/^[A-Za-z0-9._~-]{43,128}$/.test(f.code_verifier)) throw refusal("invalid_grant", "PKCE code_verifier is missing or malformed");
    const used = await ctx.store.consumeCode(f.code);
    if (!used) throw refusal("invalid_grant", "the code is unknown or expired");
    if ("reused" in used) {
      // A code presented twice: someone else has it too. Whatever it gave is withdrawn.
      const revoked = await ctx.store.revokeFamily(used.family);
      throw ctx.refused(req, refusal("invalid_grant", "the code was already used; the tokens it gave are revoked"), { clientId: f.client_id, revokedRefreshTokens: revoked, codeReused: true });
    }
    const { grant } = used;
    if (grant.clientId !== f.client_id) throw refusal("invalid_grant", "the code was issued to another client");
    if (used.redirectUri !== f.redirect_uri) throw refusal("invalid_grant", "redirect_uri differs from the authorization request's");
    if (f.resource !== undefined && f.resource !== grant.resource) throw new OAuthRefusal("invalid_target", "resource differs from the one authorized", "token_refused");
    const challenge = createHash("sha256").update(f.code_verifier).digest("base64url");
    if (!safeEqual(challenge, used.codeChallenge)) throw refusal("invalid_grant", "PKCE verification failed: code_verifier does not match code_challenge");
    if ((await ctx.store.liveRefreshTokenCount()) >= o.maxRefreshTokens) throw refusal("temporarily_unavailable", "the gateway holds as many logins as it may (oauth.maxRefreshTokens)", 503);
    return tokens(req, grant, used.family, new Date(Date.now() + o.refreshTokenTtlMs));
  };

  const refresh = async (req: FastifyRequest, f: Form) => {
    if (!f.refresh_token || !f.client_id) throw refusal("invalid_request", "refresh_token and client_id are required");
    const used = await ctx.store.consumeRefreshToken(f.refresh_token, o.refreshReuseGraceMs);
    if (!used) throw refusal("invalid_grant", "the refresh token is unknown or expired");
    if ("reused" in used) {
      const revoked = await ctx.store.revokeFamily(used.family);
      ctx.refused(req, new OAuthRefusal("invalid_grant", "a used refresh token was presented again: every token of that login is revoked", "refresh_reuse_detected"), { clientId: f.client_id, boundClientId: used.clientId, revokedRefreshTokens: revoked });
      throw refusal("invalid_grant", "the refresh token was already used; this login is revoked: log in again");
    }
    if (used.grant.clientId !== f.client_id) {
      // A client presenting another client's token: the token is out of its owner's hands.
      await ctx.store.revokeFamily(used.family);
      throw refusal("invalid_grant", "the refresh token was issued to another client; this login is revoked");
    }
    if (f.resource !== undefined && f.resource !== used.grant.resource) throw new OAuthRefusal("invalid_target", "resource differs from the one authorized", "token_refused");
    return tokens(req, used.grant, used.family, used.expiresAt, used.withinGrace);
  };

  app.post(OAUTH_PATHS.token, async (req, reply) => {
    const f = (req.body ?? {}) as Form;
    try {
      if (typeof f !== "object") throw refusal("invalid_request", "send the parameters as application/x-www-form-urlencoded");
      if (f.grant_type !== "authorization_code" && f.grant_type !== "refresh_token") throw refusal("unsupported_grant_type", "grant_type must be authorization_code or refresh_token");
      const body = f.grant_type === "authorization_code" ? await authorizationCode(req, f) : await refresh(req, f);
      return reply.header("cache-control", "no-store").header("pragma", "no-cache").send(body);
    } catch (err) {
      if (!(err instanceof OAuthRefusal)) throw err;
      ctx.refused(req, err, { clientId: f.client_id?.slice(0, 200) ?? null, grantType: f.grant_type?.slice(0, 50) ?? null });
      return ctx.sendError(reply, err);
    }
  });
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
