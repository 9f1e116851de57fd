// The authorization server's state in PostgreSQL: registered clients, authorization codes and
// refresh tokens. Codes and refresh tokens are stored as SHA-256 hashes (a database reader gets
// nothing usable). Each table is bounded (a limit checked before insertion) and swept by TTL.
import { createHash, randomBytes } from "node:crypto";
import type { Db } from "./client.js";
import { grantIdentityOf, type Grant } from "../oauth/grant.js";

export const hashOf = (secret: string) => createHash("sha256").update(secret).digest("hex");
export const newSecret = () => randomBytes(32).toString("base64url");

export interface RegisteredClient {
  clientId: string;
  clientName?: string | undefined;
  redirectUris: string[];
}

export class OAuthStore {
  constructor(private readonly db: Db) {}

  async clientCount(): Promise<number> {
    return this.db.oAuthClient.count();
  }

  async addClient(c: RegisteredClient, registeredBy: string): Promise<void> {
    await this.db.oAuthClient.create({ data: { clientId: c.clientId, clientName: c.clientName ?? null, redirectUris: c.redirectUris, registeredBy } });
  }

  /** The registered client, its last use moved on (unused clients are swept). */
  async useClient(clientId: string): Promise<RegisteredClient | undefined> {
    const row = await this.db.oAuthClient.findUnique({ where: { clientId } });
    if (!row) return undefined;
    if (Date.now() - row.lastUsedAt.getTime() > 3_600_000) await this.db.oAuthClient.update({ where: { clientId }, data: { lastUsedAt: new Date() } });
    return { clientId: row.clientId, clientName: row.clientName ?? undefined, redirectUris: row.redirectUris };
  }

  async pendingCodeCount(): Promise<number> {
    return this.db.oAuthCode.count({ where: { usedAt: null, expiresAt: { gt: new Date() } } });
  }

  async addCode(code: string, grant: Grant, redirectUri: string, codeChallenge: string, ttlMs: number): Promise<void> {
    await this.db.oAuthCode.create({
      data: {
        codeHash: hashOf(code),
        clientId: grant.clientId,
        redirectUri,
        codeChallenge,
        resource: grant.resource,
        scope: grant.scope ?? null,
        identity: { ...grant.identity },
        expiresAt: new Date(Date.now() + ttlMs),
      },
    });
  }

  /**
   * Marks the code used, once: concurrent exchanges of one code cannot both win. `reused` when the
   * code was already exchanged (its tokens are then revoked by the caller).
   */
  async consumeCode(code: string): Promise<{ grant: Grant; redirectUri: string; codeChallenge: string; family: string } | { reused: true; family: string } | undefined> {
    const codeHash = hashOf(code);
    const won = await this.db.oAuthCode.updateMany({ where: { codeHash, usedAt: null, expiresAt: { gt: new Date() } }, data: { usedAt: new Date() } });
    const row = await this.db.oAuthCode.findUnique({ where: { codeHash } });
    if (!row) return undefined;
    if (won.count !== 1) return row.usedAt ? { reused: true, family: codeHash } : undefined;
    return {
      grant: { clientId: row.clientId, resource: row.resource, scope: row.scope ?? undefined, identity: grantIdentityOf(row.identity) },
      redirectUri: row.redirectUri,
      codeChallenge: row.codeChallenge,
      family: codeHash,
    };
  }

  async liveRefreshTokenCount(): Promise<number> {
    return this.db.oAuthRefreshToken.count({ where: { usedAt: null, revokedAt: null, expiresAt: { gt: new Date() } } });
  }

  /** A new refresh token of `family`, valid until `expiresAt` (the family's end: rotation does not extend a login). */
  async addRefreshToken(grant: Grant, family: string, expiresAt: Date): Promise<string> {
    const token = newSecret();
    await this.db.oAuthRefreshToken.create({
      data: { tokenHash: hashOf(token), family, clientId: grant.clientId, resource: grant.resource, scope: grant.scope ?? null, identity: { ...grant.identity }, expiresAt },
    });
    return token;
  }

  /**
   * Marks the refresh token used, once. `reused` when it was already used or revoked: the caller
   * revokes the family (a stolen token and its rightful owner cannot both go on).
   */
  async consumeRefreshToken(token: string, graceMs = 0): Promise<{ grant: Grant; family: string; expiresAt: Date; withinGrace?: boolean } | { reused: true; family: string; clientId: string } | undefined> {
    const tokenHash = hashOf(token);
    const now = new Date();
    const won = await this.db.oAuthRefreshToken.updateMany({ where: { tokenHash, usedAt: null, revokedAt: null, expiresAt: { gt: now } }, data: { usedAt: now } });
    const row = await this.db.oAuthRefreshToken.findUnique({ where: { tokenHash } });
    if (!row) return undefined;
    const grant = (): Grant => ({ clientId: row.clientId, resource: row.resource, scope: row.scope ?? undefined, identity: grantIdentityOf(row.identity) });
    if (won.count !== 1) {
      // A client's own concurrent refreshes (two requests that met the same expired token) come
      // within moments of each other: within the grace they are not taken for theft.
      if (row.usedAt && !row.revokedAt && row.expiresAt > now && now.getTime() - row.usedAt.getTime() < graceMs) return { grant: grant(), family: row.family, expiresAt: row.expiresAt, withinGrace: true };
      return row.usedAt || row.revokedAt ? { reused: true, family: row.family, clientId: row.clientId } : undefined;
    }
    // Used tokens are kept a day for reuse detection; older ones of the family go now (bounded growth).
    await this.db.oAuthRefreshToken.deleteMany({ where: { family: row.family, usedAt: { lt: new Date(Date.now() - 86_400_000) } } });
    return { grant: grant(), family: row.family, expiresAt: row.expiresAt };
  }

  async revokeFamily(family: string): Promise<number> {
    const r = await this.db.oAuthRefreshToken.updateMany({ where: { family, revokedAt: null }, data: { revokedAt: new Date() } });
    return r.count;
  }

  /** TTL sweep: expired codes and refresh tokens, clients unused for `unusedClientMs`. */
  async sweep(unusedClientMs: number): Promise<void> {
    const now = new Date();
    await this.db.oAuthCode.deleteMany({ where: { expiresAt: { lt: now } } });
    await this.db.oAuthRefreshToken.deleteMany({ where: { expiresAt: { lt: now } } });
    await this.db.oAuthClient.deleteMany({ where: { lastUsedAt: { lt: new Date(now.getTime() - unusedClientMs) } } });
  }
}
