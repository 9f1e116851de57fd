// Reading the record back: recent sessions, and one session's exchange in order, for a person
// (one line per message) or for machines (JSON).
import { restoreStored } from "./storable.js";
import type { Db } from "../db/client.js";

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

export type Exchange = NonNullable<Awaited<ReturnType<typeof loadExchange>>>;

function clientName(info: unknown): string | null {
  const i = info as { name?: string; version?: string } | null;
  return i?.name ? `${i.name}${i.version ? ` ${i.version}` : ""}` : null;
}

/** One line per message: time, direction, kind, method and id, and a short summary. */
export function formatExchange(x: Exchange, width = 160): string {
  const lines = [
    `session ${x.session.id}  connection ${x.session.connection}  ${x.session.front} → ${x.session.upstream}  protocol ${x.session.protocolVersion ?? "?"}`,
    `opened ${x.session.createdAt}${x.session.closedAt ? `  closed ${x.session.closedAt} (${x.session.closeReason})` : "  (open)"}  ${x.messages.length} messages`,
    "",
  ];
  for (const m of x.messages) {
    const arrow = m.direction === "in" ? "client → server" : "client ← server";
    const who = m.origin === "gateway" ? " [gateway]" : "";
    const head = `${m.at.slice(11, 23)}  ${arrow}${who}  ${m.kind.padEnd(12)} ${m.method ?? ""}${m.jsonrpcId !== null ? ` #${m.jsonrpcId}` : ""}${m.requestId ? `  [req ${m.requestId}]` : ""}`;
    const room = Math.max(20, width - head.length - 2);
    lines.push(`${head}  ${summarise(m.payload, room)}`);
  }
  if (x.events.length > 0) {
    lines.push("", "events:");
    for (const e of x.events) lines.push(`${e.at.slice(11, 23)}  ${e.type}/${e.reason}${e.detail ? `  ${summarise(e.detail, width - 40)}` : ""}`);
  }
  return lines.join("\n");
}

/** The interesting part of a message, flattened to one line. */
export function summarise(payload: unknown, max: number): string {
  const p = payload as Record<string, unknown>;
  const part = p && typeof p === "object" ? (p.params ?? p.result ?? p.error ?? p) : p;
  const text = JSON.stringify(part) ?? "";
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
