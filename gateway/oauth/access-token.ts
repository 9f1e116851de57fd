// Signs the gateway's access tokens: short-lived JWTs whose audience is one connection's
// resource, whose subject, e-mail, name and groups are the person's from the browser login, and
// whose `idp_iss` names the issuer that person logged in with (the data path records it).
import { SignJWT } from "jose";
import type { Grant } from "./grant.js";
import { OAUTH_ALG, type OAuthSigningKey } from "./signing-key.js";

/** The claim carrying the person's own issuer; the authenticator reads it from the gateway's tokens only. */
export const IDP_ISSUER_CLAIM = "idp_iss";

export async function signAccessToken(key: OAuthSigningKey, issuer: string, grant: Grant, ttlSeconds: number): Promise<string> {
  const { identity } = grant;
  const claims: Record<string, unknown> = { client_id: grant.clientId, groups: identity.groups, [IDP_ISSUER_CLAIM]: identity.issuer };
  if (identity.email) claims.email = identity.email;
  if (identity.name) claims.name = identity.name;
  if (grant.scope) claims.scope = grant.scope;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: OAUTH_ALG, kid: key.kid, typ: "at+jwt" })
    .setIssuer(issuer)
    .setSubject(identity.subject)
    .setAudience(grant.resource)
    .setIssuedAt()
    .setJti(crypto.randomUUID())
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
    .sign(key.privateKey);
}
