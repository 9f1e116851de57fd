// Sessions and replay, for auditors and admins: a searchable, paged list of recorded sessions,
// one session as a timeline (messages and events interleaved, identity at the top, payloads as
// stored, i.e. masked), and its export as JSON, the same document as `countersign replay --json`.
//
//   GET /console/sessions?who=&group=&connection=&client=&since=&until=&method=&decision=&page=
//   GET /console/sessions/:id?page=N
//   GET /console/sessions/:id/export.json
import type { FastifyInstance } from "fastify";
import { listSessions, loadExchange, type SessionFilter } from "../audit/replay.js";
import { findSession, sessionEvents, sessionMessages } from "../store/sessions.js";
import { EVENT_TYPES } from "../audit/events.js";
import type { ConsoleContext } from "./context.js";
import { foldedJson, timeView } from "./render.js";

const PAGE_SIZE = 25;
/** Messages per timeline page: a long session is read a window at a time. */
const TIMELINE_PAGE = 200;
const FIELD_MAX = 200;

type Query = Partial<Record<"who" | "group" | "connection" | "client" | "since" | "until" | "method" | "decision" | "page", string>>;

const str = (v: string | undefined) => (v && v.trim() ? v.trim().slice(0, FIELD_MAX) : undefined);
const date = (v: string | undefined) => {
  const s = str(v);
  if (!s) return undefined;
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? "invalid" : d;
};

/** Events a reader should notice in a timeline. */
const MARKED: Record<string, string> = {
  "policy_decision/block": "blocked",
  "policy_decision/require_approval": "held",
  "approval/requested": "held",
  "approval/approved": "approved",
  "approval/denied": "denied",
  "approval/expired": "expired",
  "approval/forwarded": "approved",
  "access_denied/tool_denied": "blocked",
};

export function registerReplay(app: FastifyInstance, ctx: ConsoleContext): void {
  const { db } = ctx.deps;

  app.get<{ Querystring: Query }>("/sessions", async (req, reply) => {
    if (!ctx.state(req).roles?.auditor) return ctx.forbidden(req, reply, "reading recorded sessions");
    const q = req.query;
    const page = Math.max(1, Math.min(1000, Number(q.page) || 1));
    const since = date(q.since);
    const until = date(q.until);
    const decisions = EVENT_TYPES.policy_decision as readonly string[];
    const decision = str(q.decision);
    const problems = [
      ...(since === "invalid" ? ["'from' is not a date"] : []),
      ...(until === "invalid" ? ["'to' is not a date"] : []),
      ...(decision && !decisions.includes(decision) ? [`decision must be one of ${decisions.join(", ")}`] : []),
    ];
    const filter: SessionFilter = {
      who: str(q.who),
      group: str(q.group),
      connection: str(q.connection),
      client: str(q.client),
      method: str(q.method),
      decision: problems.length ? undefined : decision,
      since: since instanceof Date ? since : undefined,
      until: until instanceof Date ? until : undefined,
      skip: (page - 1) * PAGE_SIZE,
      limit: PAGE_SIZE + 1,
    };
    const rows = problems.length ? [] : await listSessions(db, filter);
    const keep = Object.entries(q).filter(([k, v]) => k !== "page" && v);
    const link = (p: number) => `/console/sessions?${new URLSearchParams([...keep, ["page", String(p)]] as [string, string][]).toString()}`;
    return ctx.page(req, reply, "sessions", { title: "Sessions", nav: "sessions", notice: problems.length ? { text: problems.join("; "), error: true } : undefined }, {
      q: { ...q },
      decisions: decisions.map((d) => ({ value: d, selected: d === decision })),
      items: rows.slice(0, PAGE_SIZE).map((s) => ({
        ...s,
        href: `/console/sessions/${encodeURIComponent(s.id)}`,
        who: s.email ?? s.subject ?? "(no identity)",
        groupsText: s.groups.join(", "),
        created: timeView(s.createdAt),
      })),
      empty: rows.length === 0,
      prev: page > 1 ? link(page - 1) : null,
      next: rows.length > PAGE_SIZE ? link(page + 1) : null,
      page,
    });
  });

  app.get<{ Params: { id: string }; Querystring: { page?: string } }>("/sessions/:id", async (req, reply) => {
    if (!ctx.state(req).roles?.auditor) return ctx.forbidden(req, reply, "reading recorded sessions");
    const id = req.params.id.slice(0, FIELD_MAX);
    const s = await findSession(db, id);
    if (!s) return ctx.page(req, reply, "error", { title: "Not found", nav: "sessions" }, { heading: "No such session", message: "Nothing was recorded under that id." }, 404);
    const page = Math.max(1, Math.min(100_000, Number(req.query.page) || 1));
    // A window of messages, and the events between its first message and the next window's.
    const messages = await sessionMessages(db, id, (page - 1) * TIMELINE_PAGE, TIMELINE_PAGE + 1);
    const more = messages.length > TIMELINE_PAGE;
    const shown = messages.slice(0, TIMELINE_PAGE);
    const from = page === 1 ? undefined : shown[0]?.at;
    const to = more ? messages[TIMELINE_PAGE]!.at : undefined;
    const events = page > 1 && shown.length === 0 ? [] : await sessionEvents(db, id, from, to, 2000);
    const items = [
      ...shown.map((m) => {
        const body = foldedJson(m.payload);
        return {
          message: true,
          at: timeView(m.at),
          sort: m.at.getTime(),
          order: 0,
          inbound: m.direction === "in",
          arrow: m.direction === "in" ? "client → server" : "client ← server",
          gateway: m.origin === "gateway",
          kind: m.kind,
          method: m.method,
          jsonrpcId: m.jsonrpcId,
          size: m.size,
          payload: body.text,
          open: body.text.length < 600,
        };
      }),
      ...events.map((e) => {
        const key = `${e.type}/${e.reason}`;
        const detail = (e.detail ?? {}) as Record<string, unknown>;
        const approvalId = typeof detail.requestId === "string" && detail.requestId.startsWith("apr_") ? detail.requestId : undefined;
        return {
          event: true,
          at: timeView(e.at),
          sort: e.at.getTime(),
          order: 1,
          type: e.type,
          reason: e.reason,
          mark: MARKED[key] ?? null,
          rule: typeof detail.ruleId === "string" ? detail.ruleId : null,
          approvalHref: approvalId ? `/console/approvals/${encodeURIComponent(approvalId)}` : null,
          detail: e.detail ? JSON.stringify(e.detail, null, 2) : null,
        };
      }),
    ].sort((a, b) => a.sort - b.sort || a.order - b.order);
    await ctx.record(req, "session_viewed", { page }, { sessionId: id, connection: s.connection }).catch(() => {});
    const base = `/console/sessions/${encodeURIComponent(id)}`;
    return ctx.page(req, reply, "session", { title: `Session ${id}`, nav: "sessions" }, {
      s: {
        id: s.id,
        connection: s.connection,
        who: s.email ?? s.subject ?? "(no identity)",
        subject: s.subject,
        issuer: s.issuer,
        name: s.name,
        groupsText: s.groups.join(", ") || "none",
        clientId: s.clientId,
        client: clientName(s.clientInfo),
        protocolVersion: s.protocolVersion,
        transport: `${s.frontTransport} → ${s.upstreamKind}`,
        remoteAddress: s.remoteAddress,
        opened: timeView(s.createdAt),
        closed: timeView(s.closedAt),
        closeReason: s.closeReason,
      },
      items,
      empty: items.length === 0,
      exportHref: `${base}/export.json`,
      prev: page > 1 ? `${base}?page=${page - 1}` : null,
      next: more ? `${base}?page=${page + 1}` : null,
      page,
    });
  });

  app.get<{ Params: { id: string } }>("/sessions/:id/export.json", async (req, reply) => {
    if (!ctx.state(req).roles?.auditor) return ctx.forbidden(req, reply, "exporting recorded sessions");
    const x = await loadExchange(db, req.params.id.slice(0, FIELD_MAX));
    if (!x) return reply.code(404).type("application/json").send({ error: "no such session" });
    await ctx.record(req, "session_exported", {}, { sessionId: x.session.id, connection: x.session.connection }).catch(() => {});
    return reply
      .type("application/json; charset=utf-8")
      .header("content-disposition", `attachment; filename="session-${x.session.id.replace(/[^A-Za-z0-9_-]/g, "_")}.json"`)
      .send(JSON.stringify(x, null, 2) + "\n");
  });
}

function clientName(info: unknown): string | null {
  const i = info as { name?: string; version?: string } | null;
  return i?.name ? `${i.name}${i.version ? ` ${i.version}` : ""}` : null;
}
