// Countersign's own small issuer for the quick start: a real key pair, a real JWKS and real JWTs,
// so the two-command start works with no identity provider. It is off unless the configuration
// turns it on, and start-up warns loudly when it is on.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK, type CryptoKey } from "jose";

export const DEV_ISSUER_PATH = "/dev-issuer";
const ALG = "ES256";

export interface DevIssuerKey {
  privateKey: CryptoKey;
  publicJwk: JWK;
  kid: string;
}

/** Loads the issuer's key from `file`, creating it (mode 0600) on first use. */
export async function loadDevIssuerKey(file: string): Promise<DevIssuerKey> {
  let jwk: JWK;
  if (existsSync(file)) {
    try {
      jwk = JSON.parse(readFileSync(file, "utf8")) as JWK;
    } catch {
      throw new Error(`the dev issuer key ${file} is not valid JSON: delete it to make a new one (tokens signed with it stop working)`);
    }
  } else {
    const { privateKey } = await generateKeyPair(ALG, { extractable: true });
    jwk = { ...(await exportJWK(privateKey)), alg: ALG, kid: `dev-${Date.now().toString(36)}` };
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify(jwk), { mode: 0o600 });
    chmodSync(file, 0o600);
  }
  const privateKey = (await importJWK(jwk, ALG)) as CryptoKey;
  const { d: _private, ...publicJwk } = jwk;
  return { privateKey, publicJwk: { ...publicJwk, use: "sig" }, kid: jwk.kid ?? "dev" };
}

export function devIssuerUrl(publicUrl: string): string {
  return `${publicUrl}${DEV_ISSUER_PATH}`;
}

export interface DevTokenRequest {
  subject: string;
  email?: string | undefined;
  name?: string | undefined;
  groups: string[];
  audience: string[];
  ttlSeconds: number;
  clientId?: string | undefined;
}

export async function signDevToken(key: DevIssuerKey, issuer: string, req: DevTokenRequest): Promise<string> {
  const claims: Record<string, unknown> = { groups: req.groups };
  if (req.email) claims.email = req.email;
  if (req.name) claims.name = req.name;
  if (req.clientId) claims.client_id = req.clientId;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: ALG, kid: key.kid, typ: "at+jwt" })
    .setIssuer(issuer)
    .setSubject(req.subject)
    .setAudience(req.audience)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + req.ttlSeconds)
    .sign(key.privateKey);
}

/** "1h", "30m", "3600" → seconds. */
export function parseTtl(text: string): number {
  const m = /^(\d+)\s*([smhd]?)$/.exec(text.trim());
  if (!m) throw new Error(`--ttl: '${text}' is not a duration such as 15m, 1h, 3600`);
  return Number(m[1]) * { "": 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as ""];
}
