// What approvers see of the session a held call came from: the client (name and version it
// announced), the source address and the session id. Read from the sessions table, which the
// data path fills when a session opens; every value is caller-supplied: shown escaped, clipped.
import type pg from "pg";
import type { ApprovalRequest } from "../approvals/types.js";

export interface SessionContext {
  sessionId: string;
  clientName?: string | undefined;
  clientVersion?: string | undefined;
  remoteAddress?: string | undefined;
  userAgent?: string | undefined;
}

const text = (v: unknown, max: number): string | undefined => (typeof v === "string" && v.trim() ? v.trim().slice(0, max) : undefined);

export async function sessionContext(pool: pg.Pool, sessionId: string | null): Promise<SessionContext | undefined> {
  if (!sessionId) return undefined;
  const r = await pool.query<{ clientInfo: unknown; remoteAddress: string | null; userAgent: string | null }>(
    `SELECT "clientInfo", "remoteAddress", "userAgent" FROM sessions WHERE id = $1`,
    [sessionId],
  );
  const row = r.rows[0];
  if (!row) return { sessionId };
  const info = (row.clientInfo && typeof row.clientInfo === "object" ? row.clientInfo : {}) as { name?: unknown; version?: unknown };
  return { sessionId, clientName: text(info.name, 100), clientVersion: text(info.version, 40), remoteAddress: text(row.remoteAddress, 64), userAgent: text(row.userAgent, 200) };
}

/**
 * The request's own client wins over its session's row: a 2026-07-28 caller's bridge session is
 * the gateway's, and each request names its client and comes from its own address.
 */
export function withClient(session: SessionContext | undefined, req: Pick<ApprovalRequest, "sessionId" | "client">): SessionContext | undefined {
  const c = req.client;
  if (!c) return session;
  return {
    sessionId: session?.sessionId ?? req.sessionId ?? "",
    clientName: c.name,
    clientVersion: c.name ? c.version : undefined,
    remoteAddress: c.remoteAddress ?? session?.remoteAddress,
    userAgent: c.userAgent,
  };
}
