// The authorization server's configuration as the gateway uses it: durations in milliseconds,
// secrets resolved, and the default (on only in the quick start: the dev issuer on a loopback
// bind, where the console's one-click login is the person's login).
import type { ParsedConfig, SecretRef } from "../config/schema.js";
import type { Secret } from "../config/secret.js";
import { parseDuration } from "../policy/schema.js";

export interface OAuthConfig {
  enabled: boolean;
  accessTokenTtlSeconds: number;
  refreshTokenTtlMs: number;
  refreshReuseGraceMs: number;
  codeTtlMs: number;
  signingKey?: Secret | undefined;
  maxCodes: number;
  maxRefreshTokens: number;
  registration: { enabled: boolean; perMinutePerAddress: number; maxClients: number; unusedClientMs: number };
  clientMetadataDocuments: { allowedHosts: string[]; maxBytes: number; timeoutMs: number; allowPrivateAddresses: boolean; ca?: Secret | undefined };
}

const LOOPBACK = (host: string) => host === "localhost" || host === "::1" || host.startsWith("127.");

export function oauthConfig(p: ParsedConfig, secret: (ref: SecretRef, path: string) => Secret | undefined, problems: string[]): OAuthConfig {
  const o = p.oauth;
  const quickstart = p.auth.devIssuer.enabled && LOOPBACK(p.server.host);
  // Several replicas need a shared signing key: without one, the default stays off.
  const enabled = o.enabled ?? (quickstart && p.console.enabled && (p.cluster.internalPort === 0 || Boolean(o.signingKey)));
  if (enabled && !p.console.enabled) problems.push("oauth.enabled: MCP clients log in through the console's login: set console.enabled: true (or oauth.enabled: false)");
  if (enabled && !quickstart && p.console.login.length === 0) {
    problems.push("oauth.enabled: nobody could log in: configure console.login (an issuer people log in with), or oauth.enabled: false");
  }
  // Several replicas must sign with one key, or a token from one is refused by the others.
  if (enabled && p.cluster.internalPort > 0 && !o.signingKey) problems.push("oauth.signingKey: several replicas (cluster.internalPort) need one signing key for the gateway's tokens: set oauth.signingKey ({ env | file }, a PKCS#8 PEM EC P-256 key)");
  const signingKey = o.signingKey ? secret(o.signingKey, "oauth.signingKey") : undefined;
  const ca = o.clientMetadataDocuments.ca ? secret(o.clientMetadataDocuments.ca, "oauth.clientMetadataDocuments.ca") : undefined;
  return {
    enabled,
    accessTokenTtlSeconds: Math.max(1, Math.round(parseDuration(o.accessTokenTtl) / 1000)),
    refreshTokenTtlMs: parseDuration(o.refreshTokenTtl),
    refreshReuseGraceMs: o.refreshReuseGraceSeconds * 1000,
    codeTtlMs: o.codeTtlSeconds * 1000,
    ...(signingKey ? { signingKey } : {}),
    maxCodes: o.maxCodes,
    maxRefreshTokens: o.maxRefreshTokens,
    registration: {
      enabled: o.registration.enabled,
      perMinutePerAddress: o.registration.perMinutePerAddress,
      maxClients: o.registration.maxClients,
      unusedClientMs: o.registration.unusedClientDays * 86_400_000,
    },
    clientMetadataDocuments: {
      allowedHosts: o.clientMetadataDocuments.allowedHosts.map((h) => h.toLowerCase()),
      maxBytes: o.clientMetadataDocuments.maxBytes,
      timeoutMs: o.clientMetadataDocuments.timeoutMs,
      allowPrivateAddresses: o.clientMetadataDocuments.allowPrivateAddresses,
      ...(ca ? { ca } : {}),
    },
  };
}
