// Reading the record back: recent sessions, and one session's exchange in order, for a person
// (one line per message) or for machines (JSON).
import { restoreStored } from "./storable.js";
import type { Db } from "../store/client.js";

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

export type Exchange = NonNullable<Awaited<ReturnType<typeof loadExchange>>>;

export type TimelineEntry =
  | ({ entry: "message" } & Exchange["messages"][number])
  | ({ entry: "event" } & Exchange["events"][number]);

/** Messages and events in one sequence, by time (a message before an event of the same instant). */
export function timeline(x: Pick<Exchange, "messages" | "events">): TimelineEntry[] {
  const all: TimelineEntry[] = [...x.messages.map((m) => ({ entry: "message" as const, ...m })), ...x.events.map((e) => ({ entry: "event" as const, ...e }))];
  return all.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.entry === b.entry ? Number(BigInt(a.id) - BigInt(b.id)) : a.entry === "message" ? -1 : 1));
}

function clientName(info: unknown): string | null {
  const i = info as { name?: string; version?: string } | null;
  return i?.name ? `${i.name}${i.version ? ` ${i.version}` : ""}` : null;
}

/** Lines a folded summary may take before the rest is left to --json. */
const MAX_FOLDED_LINES = 12;

/**
 * The caller, then messages and events interleaved by time. With a width (a terminal), a long
 * summary folds onto indented lines of that width (at most MAX_FOLDED_LINES, then a count of what
 * was left out); without one (a pipe, a file), every summary is printed whole on its line.
 */
export function formatExchange(x: Exchange, width?: number): string {
  const c = x.session.caller;
  const who = c.subject
    ? `${c.email ?? c.subject}${c.name ? ` (${c.name})` : ""}  subject ${c.subject}${c.issuer ? `  issuer ${c.issuer}` : ""}${c.groups.length ? `  groups ${c.groups.join(",")}` : ""}${c.clientId ? `  client-id ${c.clientId}` : ""}`
    : "anonymous (no token)";
  const lines = [
    `session ${x.session.id}  connection ${x.session.connection}  ${x.session.front} → ${x.session.upstream}  protocol ${x.session.protocolVersion ?? "?"}`,
    `caller ${who}${c.remoteAddress ? `  from ${c.remoteAddress}` : ""}`,
    `opened ${x.session.createdAt}${x.session.closedAt ? `  closed ${x.session.closedAt} (${x.session.closeReason})` : "  (open)"}  ${x.messages.length} messages, ${x.events.length} events`,
    "",
  ];
  for (const t of timeline(x)) {
    const head =
      t.entry === "message"
        ? `${t.at.slice(11, 23)}  ${t.direction === "in" ? "client → server" : "client ← server"}${t.origin === "gateway" ? " [gateway]" : ""}  ${t.kind.padEnd(12)} ${t.method ?? ""}${t.jsonrpcId !== null ? ` #${t.jsonrpcId}` : ""}${t.requestId ? `  [req ${t.requestId}]` : ""}`
        : `${t.at.slice(11, 23)}  event  ${t.type}/${t.reason}${t.requestId ? `  [req ${t.requestId}]` : ""}`;
    const body = t.entry === "message" ? summarise(t.payload) : t.detail ? JSON.stringify(t.detail) : "";
    lines.push(...fold(head, body, width));
  }
  return lines.join("\n");
}

function fold(head: string, body: string, width: number | undefined): string[] {
  if (!body) return [head];
  const first = `${head}  ${body}`;
  if (!width || first.length <= width) return [first];
  const indent = "    ";
  const room = Math.max(20, width - indent.length);
  const out = [head];
  let rest = body;
  while (rest.length > 0 && out.length <= MAX_FOLDED_LINES) {
    out.push(indent + rest.slice(0, room));
    rest = rest.slice(room);
  }
  if (rest.length > 0) out.push(`${indent}… ${rest.length} more characters (--json prints everything)`);
  return out;
}

/** The interesting part of a message, flattened to one line (whole: the caller decides how to fit it). */
export function summarise(payload: unknown): string {
  const p = payload as Record<string, unknown>;
  const part = p && typeof p === "object" ? (p.params ?? p.result ?? p.error ?? p) : p;
  return JSON.stringify(part) ?? "";
}
