// Reading the record back: recent sessions, and one session's exchange in order, for a person
// (one line per message) or for machines (JSON).
import { loadExchange } from "../store/sessions.js";

export { listSessions, loadExchange, type SessionFilter } from "../store/sessions.js";

export type Exchange = NonNullable<Awaited<ReturnType<typeof loadExchange>>>;

export type TimelineEntry =
  | ({ entry: "message" } & Exchange["messages"][number])
  | ({ entry: "event" } & Exchange["events"][number]);

/** Messages and events in one sequence, by time (a message before an event of the same instant). */
export function timeline(x: Pick<Exchange, "messages" | "events">): TimelineEntry[] {
  const all: TimelineEntry[] = [...x.messages.map((m) => ({ entry: "message" as const, ...m })), ...x.events.map((e) => ({ entry: "event" as const, ...e }))];
  return all.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.entry === b.entry ? Number(BigInt(a.id) - BigInt(b.id)) : a.entry === "message" ? -1 : 1));
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
