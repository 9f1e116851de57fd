// What a browser login grants an MCP client: the person's identity (from the IdP login), the
// client, and the one connection resource. Carried by codes and refresh tokens, and into the
// access tokens the gateway signs.
export interface GrantIdentity {
  /** The issuer the person logged in with (the IdP, or the dev issuer in the quick start). */
  issuer: string;
  subject: string;
  email?: string | undefined;
  name?: string | undefined;
  groups: string[];
}

export interface Grant {
  clientId: string;
  resource: string;
  scope?: string | undefined;
  identity: GrantIdentity;
}

/** Reads a stored identity back, dropping anything that is not the expected shape. */
export function grantIdentityOf(value: unknown): GrantIdentity {
  const v = (value ?? {}) as Record<string, unknown>;
  const str = (x: unknown) => (typeof x === "string" && x !== "" ? x : undefined);
  return {
    issuer: str(v.issuer) ?? "unknown",
    subject: str(v.subject) ?? "unknown",
    email: str(v.email),
    name: str(v.name),
    groups: Array.isArray(v.groups) ? v.groups.filter((g): g is string => typeof g === "string").slice(0, 200) : [],
  };
}
