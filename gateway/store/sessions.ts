// Sessions: the row committed before anything reaches the upstream, its closing, and the reads of
// the replay (gateway/audit/replay.ts, the console's session page).
import { restoreStored } from "../audit/storable.js";
import type { Db } from "./client.js";

export interface NewSessionRow {
  id: string;
  connection: string;
  frontTransport: string;
  upstreamKind: string;
  ownerInstanceId: string;
  remoteAddress: string | null;
  userAgent: string | null;
  subject: string;
  issuer: string;
  email: string | null;
  name: string | null;
  groups: string[];
  clientId: string | null;
}

export async function createSession(db: Db, row: NewSessionRow): Promise<void> {
  await db.session.create({ data: row });
}

/** What the upstream answered to initialize (its serverInfo already masked by the caller). */
export async function noteSessionInitialized(db: Db, id: string, data: { protocolVersion: string | null; serverInfo: object | undefined; upstreamSessionId: string | null }): Promise<void> {
  await db.session.update({ where: { id }, data });
}

/** The client's info from its initialize request. */
export async function noteSessionClientInfo(db: Db, id: string, clientInfo: object): Promise<void> {
  await db.session.update({ where: { id }, data: { clientInfo } });
}

export async function closeSession(db: Db, id: string, closeReason: string): Promise<void> {
  await db.session.update({ where: { id }, data: { closedAt: new Date(), closeReason } });
}

export interface SessionFilter {
  connection?: string | undefined;
  since?: Date | undefined;
  method?: string | undefined;
  /** The caller: an e-mail address or a subject. */
  who?: string | undefined;
  /** Sessions of callers in this group. */
  group?: string | undefined;
  /** The session with a record of this HTTP request id (the log's reqId). */
  requestId?: string | undefined;
  /** Sessions opened before this time. */
  until?: Date | undefined;
  /** The client's name (clientInfo.name), exactly. */
  client?: string | undefined;
  /** Sessions with a policy decision of this kind (allow, block, require_approval, …). */
  decision?: string | undefined;
  /** Rows to skip (pagination). */
  skip?: number | undefined;
  limit?: number | undefined;
}

export async function listSessions(db: Db, f: SessionFilter) {
  const rows = await db.session.findMany({
    where: {
      ...(f.connection ? { connection: f.connection } : {}),
      ...(f.since || f.until ? { createdAt: { ...(f.since ? { gte: f.since } : {}), ...(f.until ? { lt: f.until } : {}) } } : {}),
      ...(f.client ? { clientInfo: { path: ["name"], equals: f.client } } : {}),
      ...(f.decision ? { events: { some: { type: "policy_decision", reason: f.decision } } } : {}),
      ...(f.method ? { messages: { some: { method: f.method } } } : {}),
      // E-mail addresses compare without case (IdPs differ in how they spell them); subjects exactly.
      ...(f.who ? { OR: [{ email: { equals: f.who, mode: "insensitive" as const } }, { subject: f.who }] } : {}),
      ...(f.group ? { groups: { has: f.group } } : {}),
      ...(f.requestId ? { AND: [{ OR: [{ messages: { some: { requestId: f.requestId } } }, { events: { some: { requestId: f.requestId } } }] }] } : {}),
    },
    orderBy: [{ createdAt: "desc" }, { id: "desc" }],
    ...(f.skip ? { skip: f.skip } : {}),
    take: f.limit ?? 50,
    include: { _count: { select: { messages: true } } },
  });
  return rows.map((s) => ({
    id: s.id,
    connection: s.connection,
    createdAt: s.createdAt.toISOString(),
    closedAt: s.closedAt?.toISOString() ?? null,
    closeReason: s.closeReason,
    front: s.frontTransport,
    upstream: s.upstreamKind,
    protocolVersion: s.protocolVersion,
    client: clientName(s.clientInfo),
    subject: s.subject,
    issuer: s.issuer,
    email: s.email,
    groups: s.groups,
    clientId: s.clientId,
    messages: s._count.messages,
  }));
}

export async function loadExchange(db: Db, sessionId: string) {
  const session = await db.session.findUnique({ where: { id: sessionId } });
  if (!session) return undefined;
  const [messages, events] = await Promise.all([
    db.message.findMany({ where: { sessionId }, orderBy: { id: "asc" } }),
    db.event.findMany({ where: { sessionId }, orderBy: { id: "asc" } }),
  ]);
  return {
    session: {
      id: session.id,
      connection: session.connection,
      createdAt: session.createdAt.toISOString(),
      closedAt: session.closedAt?.toISOString() ?? null,
      closeReason: session.closeReason,
      protocolVersion: session.protocolVersion,
      clientInfo: session.clientInfo,
      serverInfo: session.serverInfo,
      front: session.frontTransport,
      upstream: session.upstreamKind,
      // Who: the caller's identity as authenticated (null fields where none was configured).
      identity: { subject: session.subject, issuer: session.issuer, email: session.email, name: session.name, groups: session.groups, clientId: session.clientId, remoteAddress: session.remoteAddress },
      /** Who the caller was, as authenticated when the session opened. */
      caller: {
        subject: session.subject,
        issuer: session.issuer,
        email: session.email,
        name: session.name,
        groups: session.groups,
        clientId: session.clientId,
        remoteAddress: session.remoteAddress,
        userAgent: session.userAgent,
      },
    },
    messages: messages.map((m) => ({
      id: m.id.toString(),
      at: m.at.toISOString(),
      direction: m.direction as "in" | "out",
      origin: m.origin,
      kind: m.kind,
      // Text PostgreSQL cannot hold was stored escaped (see storable.ts): shown as it was sent.
      jsonrpcId: m.jsonrpcId === null ? null : restoreStored(m.jsonrpcId),
      method: m.method === null ? null : restoreStored(m.method),
      size: m.size,
      requestId: m.requestId,
      payload: restoreStored(m.payload),
    })),
    events: events.map((e) => ({ id: e.id.toString(), at: e.at.toISOString(), type: e.type, reason: e.reason, requestId: e.requestId, detail: e.detail })),
  };
}

function clientName(info: unknown): string | null {
  const i = info as { name?: string; version?: string } | null;
  return i?.name ? `${i.name}${i.version ? ` ${i.version}` : ""}` : null;
}

export function findSession(db: Db, id: string) {
  return db.session.findUnique({ where: { id } });
}

/** A window of a session's messages, in order. */
export function sessionMessages(db: Db, sessionId: string, skip: number, take: number) {
  return db.message.findMany({ where: { sessionId }, orderBy: { id: "asc" }, skip, take });
}

/** A session's events recorded in [from, to) (either end open when absent), in order, at most `take`. */
export function sessionEvents(db: Db, sessionId: string, from: Date | undefined, to: Date | undefined, take: number) {
  return db.event.findMany({
    where: { sessionId, ...(from || to ? { at: { ...(from ? { gte: from } : {}), ...(to ? { lt: to } : {}) } } : {}) },
    orderBy: { id: "asc" },
    take,
  });
}
