// The console's configuration as the gateway uses it: secrets resolved, durations in
// milliseconds, every login issuer checked against auth.issuers (a login through an issuer whose
// tokens the gateway does not trust would be a door nobody audits).
import type { ParsedConfig, SecretRef } from "../config/schema.js";
import type { Secret } from "../config/secret.js";

export interface ConsoleLoginIssuer {
  issuer: string;
  label: string;
  clientId: string;
  clientSecret?: Secret | undefined;
  scopes: string[];
  groupsClaim: string;
  emailClaim: string;
  nameClaim: string;
}

export interface DevUser {
  subject: string;
  email?: string | undefined;
  name?: string | undefined;
  groups: string[];
}

export interface ConsoleConfig {
  enabled: boolean;
  auditorGroups: string[];
  idleTimeoutMs: number;
  absoluteTimeoutMs: number;
  sessionKey?: Secret | undefined;
  login: ConsoleLoginIssuer[];
  devUsers?: DevUser[] | undefined;
}

export function consoleConfig(p: ParsedConfig, secret: (ref: SecretRef, path: string) => Secret | undefined, problems: string[]): ConsoleConfig {
  const c = p.console;
  const sessionKey = c.sessionKey ? secret(c.sessionKey, "console.sessionKey") : undefined;
  if (sessionKey && sessionKey.reveal().length < 32) problems.push("console.sessionKey: too short: use at least 32 random characters (e.g. openssl rand -base64 32)");
  const login = c.login.flatMap((l, i): ConsoleLoginIssuer[] => {
    const trusted = p.auth.issuers.find((x) => x.issuer.replace(/\/+$/, "") === l.issuer.replace(/\/+$/, ""));
    if (!trusted) {
      problems.push(`console.login[${i}].issuer: '${l.issuer}' is not one of auth.issuers: add it there first (its claims settings apply to console logins too)`);
      return [];
    }
    const clientSecret = l.clientSecret ? secret(l.clientSecret, `console.login[${i}].clientSecret`) : undefined;
    return [{
      issuer: trusted.issuer,
      label: l.label ?? trusted.label ?? new URL(trusted.issuer).host,
      clientId: l.clientId,
      ...(clientSecret ? { clientSecret } : {}),
      scopes: l.scopes.includes("openid") ? l.scopes : ["openid", ...l.scopes],
      groupsClaim: trusted.groupsClaim,
      emailClaim: trusted.emailClaim,
      nameClaim: trusted.nameClaim,
    }];
  });
  return {
    enabled: c.enabled,
    auditorGroups: c.auditorGroups,
    idleTimeoutMs: c.idleTimeoutMinutes * 60_000,
    absoluteTimeoutMs: c.absoluteTimeoutHours * 3_600_000,
    ...(sessionKey ? { sessionKey } : {}),
    login,
    ...(c.devUsers ? { devUsers: c.devUsers } : {}),
  };
}
