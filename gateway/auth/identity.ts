// Who is calling: the identity every session and record carries.
import type { JWTPayload } from "jose";

export interface Identity {
  kind: "user" | "service" | "anonymous";
  subject: string;
  /** The token's issuer; "anonymous" for callers admitted without a token. */
  issuer: string;
  email?: string | undefined;
  name?: string | undefined;
  groups: string[];
  /** The OAuth client of a service account (client_id or azp). */
  clientId?: string | undefined;
  /** The caller's address, kept for anonymous callers. */
  address?: string | undefined;
}

export interface ClaimNames {
  groupsClaim: string;
  emailClaim: string;
  nameClaim: string;
}

/**
 * Reads `realm_access.roles` style dotted paths. Keys may themselves hold dots (Kubernetes puts
 * claims under `kubernetes.io`), so at each level the longest key that matches wins.
 */
export function readClaim(payload: JWTPayload, path: string): unknown {
  const walk = (node: unknown, parts: string[]): unknown => {
    if (parts.length === 0) return node;
    if (node === null || typeof node !== "object") return undefined;
    for (let i = parts.length; i > 0; i--) {
      const key = parts.slice(0, i).join(".");
      if (key in (node as Record<string, unknown>)) return walk((node as Record<string, unknown>)[key], parts.slice(i));
    }
    return undefined;
  };
  return walk(payload, path.split("."));
}

function groupsFrom(value: unknown): string[] {
  if (Array.isArray(value)) return value.filter((g): g is string => typeof g === "string");
  // Some providers send one space- or comma-separated string.
  if (typeof value === "string") return value.split(/[\s,]+/).filter(Boolean);
  return [];
}

export function identityFromClaims(payload: JWTPayload, claims: ClaimNames): Identity {
  const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
  const email = str(readClaim(payload, claims.emailClaim));
  const clientId = str(payload.client_id) ?? str(payload.azp);
  // A client_credentials token names the client as its subject (or carries no person at all).
  const service = clientId !== undefined && (payload.sub === clientId || (email === undefined && payload.sub === undefined));
  return {
    kind: service ? "service" : "user",
    subject: str(payload.sub) ?? clientId ?? "unknown",
    issuer: str(payload.iss) ?? "unknown",
    email,
    name: str(readClaim(payload, claims.nameClaim)),
    groups: groupsFrom(readClaim(payload, claims.groupsClaim)),
    clientId,
  };
}

export function anonymousIdentity(address: string): Identity {
  return { kind: "anonymous", subject: "anonymous", issuer: "anonymous", groups: [], address };
}

/** Same caller, for binding sessions: the same subject from the same issuer. */
export function sameCaller(a: Identity, b: Identity): boolean {
  return a.issuer === b.issuer && a.subject === b.subject;
}

/** How a caller is shown in messages: e-mail, else subject, with the client for service accounts. */
export function describeIdentity(id: Identity): string {
  if (id.kind === "anonymous") return `anonymous (${id.address ?? "unknown address"})`;
  const who = id.email ?? id.subject;
  return id.kind === "service" ? `service account ${id.clientId ?? who}` : who;
}
