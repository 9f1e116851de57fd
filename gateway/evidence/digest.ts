// The weekly evidence digest: one section per SOC 2 criterion, each with its population, counts,
// exceptions, and the text of the queries that produced it (gateway/store/digest-queries.ts). The
// result is plain JSON: what is signed, stored, rendered and posted.
import type { ChainClient } from "../store/pools.js";
import { EVENT_TYPES } from "../audit/events.js";
import type { VerifierKey } from "../audit/chain/keys.js";
import { verifyChain } from "../audit/chain/verify.js";
import { REDACTED, redactConfigValue } from "../config/redact.js";
import { QUERIES, runDigestQuery, type DigestQuery } from "../store/digest-queries.js";
import { localTime, type IsoWeek } from "./week.js";

export type Cell = string | number | null;

export interface DigestCount {
  key: string;
  label: string;
  value: number | string | null;
}

export interface DigestTable {
  key: string;
  title: string;
  columns: string[];
  rows: Cell[][];
}

export interface DigestSection {
  id: string;
  criteria: string;
  title: string;
  /** What was counted, in words. */
  population: string;
  /** ok | exceptions | no_data (nothing recorded, or the source is not recorded yet). */
  status: "ok" | "exceptions" | "no_data";
  /** Why there is nothing to show, when status is no_data. */
  noData: string | null;
  counts: DigestCount[];
  tables: DigestTable[];
  exceptions: string[];
  /** Definitions the figures rely on (e.g. what "unusual volume" means). */
  notes: string[];
  queries: DigestQuery[];
}

/** The series the charts draw (days are local days of the digest's time zone). */
export interface DigestCharts {
  dailyCalls: Array<{ day: string; allowed: number; blocked: number; held: number }>;
  decisionTimes: Array<{ bucket: string; requests: number }>;
  failuresPerDay: Array<{ day: string; reason: string; failures: number }>;
  maskingByType: Array<{ type: string; values: number }>;
}

export interface DigestContent {
  format: "countersign-digest/1";
  /** The week was not over when this was computed: rendered, never stored or signed. Absent on older digests. */
  partial?: boolean;
  week: string;
  timeZone: string;
  period: { start: string; end: string; firstDay: string; lastDay: string; startLocal: string; endLocal: string };
  generatedAt: string;
  generatedBy: string | null;
  summary: { sections: number; exceptions: number; noData: number };
  sections: DigestSection[];
  /** Absent on digests stored before charts existed. */
  charts?: DigestCharts;
}

export interface ComputeOptions {
  week: IsoWeek;
  /** Public keys for checking checkpoint signatures during verification. */
  verifiers: Map<string, VerifierKey>;
  generatedBy?: string | null;
  now?: Date;
  onProgress?: (done: number, total: number) => void;
}

/** A flood: this many authentication failures, or access refusals, in one week is an exception. */
export const REFUSAL_FLOOD = 1000;

/** Unusual volume: at least this many calls in the week… */
export const UNUSUAL_MIN_CALLS = 50;
/** …and more than this multiple of the median of the four 7-day periods before it. */
export const UNUSUAL_FACTOR = 3;

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Math.round(Number(v) * 1000) / 1000);
const iso = (v: unknown): string | null => (v instanceof Date ? v.toISOString() : v === null || v === undefined ? null : String(v));

type Row = Record<string, unknown>;

export async function computeDigest(client: ChainClient, opts: ComputeOptions): Promise<DigestContent> {
  const { week } = opts;
  const params = [week.start, week.end];
  const run = async (query: DigestQuery, withParams = true): Promise<Row[]> => runDigestQuery<Row>(client, query, withParams ? params : []);

  const sections = [
    await logicalAccess(run),
    await authorization(run),
    await monitoring(run),
    await privacy(run),
    await changeManagement(run),
    await integrity(client, run, opts),
  ];
  const now = opts.now ?? new Date();
  const series = async (query: DigestQuery) => runDigestQuery<Row>(client, query, [week.start, week.end, week.timeZone]);
  const charts: DigestCharts = {
    dailyCalls: (await series(QUERIES.dailyCalls)).map((r) => {
      const blocked = num(r.blocked);
      const held = num(r.held);
      return { day: String(r.day), allowed: Math.max(0, num(r.calls) - blocked - held), blocked, held };
    }),
    decisionTimes: (await run(QUERIES.decisionTimes)).map((r) => ({ bucket: String(r.bucket), requests: num(r.requests) })),
    failuresPerDay: (await series(QUERIES.failuresPerDay)).map((r) => ({ day: String(r.day), reason: String(r.reason), failures: num(r.failures) })),
    maskingByType: (sections.find((x) => x.id === "cc7_2")!.tables.find((t) => t.key === "maskingByType")?.rows ?? []).map((r) => ({ type: String(r[0]), values: Number(r[1]) })),
  };
  return {
    format: "countersign-digest/1",
    partial: week.end > now,
    week: week.label,
    timeZone: week.timeZone,
    period: {
      start: week.start.toISOString(),
      end: week.end.toISOString(),
      firstDay: week.firstDay,
      lastDay: week.lastDay,
      startLocal: `${localTime(week.start, week.timeZone)} ${week.timeZone}`,
      endLocal: `${localTime(week.end, week.timeZone)} ${week.timeZone}`,
    },
    generatedAt: now.toISOString(),
    generatedBy: opts.generatedBy ?? null,
    summary: {
      sections: sections.length,
      exceptions: sections.reduce((n, s) => n + s.exceptions.length, 0),
      noData: sections.filter((s) => s.status === "no_data").length,
    },
    sections,
    charts,
  };
}

type Run = (q: DigestQuery, withParams?: boolean) => Promise<Row[]>;

function section(s: Omit<DigestSection, "status" | "noData" | "notes"> & { notes?: string[]; empty: boolean; emptyText: string }): DigestSection {
  const { empty, emptyText, ...rest } = s;
  return {
    ...rest,
    notes: s.notes ?? [],
    status: s.exceptions.length > 0 ? "exceptions" : empty ? "no_data" : "ok",
    noData: empty ? emptyText : null,
  };
}

async function logicalAccess(run: Run): Promise<DigestSection> {
  const perConnection = await run(QUERIES.identitiesPerConnection);
  const total = (await run(QUERIES.identitiesTotal))[0] ?? {};
  const failures = await run(QUERIES.authFailuresByReason);
  const denials = await run(QUERIES.accessDeniedByReason);
  const failureCount = failures.reduce((n, r) => n + num(r.failures), 0);
  const denialCount = denials.reduce((n, r) => n + num(r.denials), 0);
  const mismatches = num(denials.find((r) => r.reason === "session_identity_mismatch")?.denials);
  const exceptions = [
    ...(mismatches > 0 ? [`${mismatches} request(s) used a session opened by another identity (session_identity_mismatch): refused, but worth a look`] : []),
    ...(failureCount >= REFUSAL_FLOOD ? [`Flood of authentication failures: ${failureCount.toLocaleString("en-US")} in the week (an exception from ${REFUSAL_FLOOD.toLocaleString("en-US")}): someone is trying tokens, or a client is misconfigured`] : []),
    ...(denialCount >= REFUSAL_FLOOD ? [`Flood of access refusals: ${denialCount.toLocaleString("en-US")} in the week (an exception from ${REFUSAL_FLOOD.toLocaleString("en-US")})`] : []),
  ];
  return section({
    id: "cc6_1",
    criteria: "CC6.1",
    title: "Logical access",
    population: "Sessions opened in the week, and authentication and access refusals recorded in it",
    counts: [
      { key: "identities", label: "Distinct identities with a session", value: num(total.identities) },
      { key: "sessions", label: "Sessions opened", value: num(total.sessions) },
      { key: "authFailures", label: "Authentication failures", value: failureCount },
      { key: "accessDenied", label: "Access refusals (connection or tool not granted)", value: denialCount },
    ],
    tables: [
      {
        key: "identitiesPerConnection",
        title: "Identities active per connection",
        columns: ["connection", "identities", "sessions", "anonymous sessions"],
        rows: perConnection.map((r) => [String(r.connection), num(r.identities), num(r.sessions), num(r.anonymous_sessions)]),
      },
      { key: "authFailuresByReason", title: "Authentication failures by reason", columns: ["reason", "failures"], rows: failures.map((r) => [String(r.reason), num(r.failures)]) },
      { key: "accessDeniedByReason", title: "Access refusals by reason", columns: ["reason", "refusals"], rows: denials.map((r) => [String(r.reason), num(r.denials)]) },
    ],
    exceptions,
    notes: [`A flood: ${REFUSAL_FLOOD.toLocaleString("en-US")} or more authentication failures, or access refusals, in the week is an exception.`, "Refusals beyond 20 a second are recorded as one aggregated event per reason and second; the counts add up what those events stand for."],
    queries: [QUERIES.identitiesPerConnection, QUERIES.identitiesTotal, QUERIES.authFailuresByReason, QUERIES.accessDeniedByReason],
    empty: perConnection.length === 0 && failures.length === 0 && denials.length === 0,
    emptyText: "No sessions and no authentication or access refusals were recorded in this week.",
  });
}

async function authorization(run: Run): Promise<DigestSection> {
  const s = (await run(QUERIES.approvalSummary))[0] ?? {};
  const approvers = await run(QUERIES.approvers);
  const sod = (await run(QUERIES.segregationOfDuties))[0] ?? {};
  const granted = num(sod.granted);
  const glass = await run(QUERIES.breakGlass);
  const exceptions = [
    ...(granted > 0 ? [`${granted} approval(s) were granted by the requester on their own request: segregation of duties failed`] : []),
    ...glass.map((r) => `Break-glass ${String(r.decision)} by ${String(r.approver)} on ${String(r.connection)} / ${String(r.tool)} (request ${String(r.request)})${r.reason ? `: ${String(r.reason)}` : ": no reason given"}`),
  ];
  return section({
    id: "cc6_2",
    criteria: "CC6.2 / CC6.3",
    title: "Authorization and segregation of duties",
    population: "Approval requests created in the week (held calls), and the votes cast in it",
    counts: [
      { key: "requests", label: "Approval requests", value: num(s.requests) },
      { key: "approved", label: "Approved", value: num(s.approved) },
      { key: "denied", label: "Denied", value: num(s.denied) },
      { key: "expired", label: "Expired without a decision", value: num(s.expired) },
      { key: "pending", label: "Still pending", value: num(s.pending) },
      { key: "decidingApprovers", label: "Distinct deciding approvers", value: num(s.deciding_approvers) },
      { key: "medianSecondsToDecision", label: "Median time to decision (s)", value: numOrNull(s.median_seconds_to_decision) },
      { key: "p95SecondsToDecision", label: "95th percentile time to decision (s)", value: numOrNull(s.p95_seconds_to_decision) },
      { key: "selfApprovalRefused", label: "Self-approval attempts refused", value: num(sod.refused) },
      { key: "selfApprovalGranted", label: "Self-approvals granted (must be 0)", value: granted },
      { key: "unauthorizedClicks", label: "Votes refused from non-approvers", value: num(sod.unauthorized_clicks) },
      { key: "breakGlass", label: "Break-glass decisions (each one an exception)", value: glass.length },
    ],
    tables: [
      { key: "votesByApprover", title: "Votes by approver", columns: ["approver", "approvals", "denials"], rows: approvers.map((r) => [String(r.approver), num(r.approvals), num(r.denials)]) },
      {
        key: "breakGlass",
        title: "Break-glass decisions",
        columns: ["when", "approver", "decision", "connection / tool", "request", "reason"],
        rows: glass.map((r) => [iso(r.at), String(r.approver), String(r.decision), `${String(r.connection)} / ${String(r.tool)}`, String(r.request), r.reason === null ? "(none given)" : String(r.reason)]),
      },
    ],
    exceptions,
    notes: ["Time to decision: from the request's creation to its approval or denial (percentile_cont over decided requests)."],
    queries: [QUERIES.approvalSummary, QUERIES.approvers, QUERIES.segregationOfDuties, QUERIES.breakGlass],
    empty: num(s.requests) === 0 && approvers.length === 0 && num(sod.refused) === 0 && num(sod.unauthorized_clicks) === 0,
    emptyText: "No approval requests or votes were recorded in this week.",
  });
}

/** Whether the gateway records tool definition changes at all (the event type is in the catalogue). */
export function toolDefinitionChangesRecorded(): boolean {
  return Object.hasOwn(EVENT_TYPES, "tool_definition_changed");
}

async function monitoring(run: Run): Promise<DigestSection> {
  const blocked = await run(QUERIES.blockedByRule);
  const masking = await run(QUERIES.maskingByType);
  const toolsRecorded = toolDefinitionChangesRecorded();
  const tools = await run(QUERIES.toolDefinitionChanges);
  const shadow = await run(QUERIES.shadowWouldBlock);
  const volume = await run(QUERIES.volumePerIdentity);
  const unusual = volume.filter((r) => num(r.calls) >= UNUSUAL_MIN_CALLS && num(r.calls) > UNUSUAL_FACTOR * num(r.trailing_weekly_median));
  const toolChanges = tools.reduce((n, r) => n + num(r.changes), 0);
  const toolCalls = (k: string) => tools.reduce((n, r) => n + num(r[k]), 0);
  const exceptions = [
    ...unusual.map((r) => `Unusual volume: ${String(r.subject)}${r.email ? ` (${String(r.email)})` : ""} made ${num(r.calls)} calls (trailing weekly median ${num(r.trailing_weekly_median)})`),
    ...tools
      .filter((r) => num(r.changes) > 0 || num(r.calls_allowed) > 0)
      .map((r) =>
        num(r.changes) > 0
          ? `Tool definition changed: ${String(r.connection)} / ${String(r.tool)} (${num(r.changes)} time(s)${num(r.calls_allowed) > 0 ? `; ${num(r.calls_allowed)} call(s) allowed to the changed tool` : ""})`
          : `Calls allowed to a changed tool: ${String(r.connection)} / ${String(r.tool)} (${num(r.calls_allowed)})`,
      ),
  ];
  return section({
    id: "cc7_2",
    criteria: "CC7.2",
    title: "Monitoring",
    population: "Policy decisions, masked messages, tool definition changes and tools/call requests recorded in the week",
    counts: [
      { key: "blocked", label: "Calls blocked by policy", value: blocked.reduce((n, r) => n + num(r.blocked), 0) },
      { key: "valuesMasked", label: "Values masked", value: masking.reduce((n, r) => n + num(r.values_masked), 0) },
      { key: "toolDefinitionChanges", label: "Tool definition changes", value: toolsRecorded || tools.length > 0 ? toolChanges : "no data" },
      { key: "changedToolCallsHeldOrBlocked", label: "Calls to changed tools held or blocked", value: toolsRecorded || tools.length > 0 ? toolCalls("calls_held") + toolCalls("calls_blocked") : "no data" },
      { key: "shadowWouldBlock", label: "Shadow mode: calls that would have been blocked or held", value: shadow.reduce((n, r) => n + num(r.calls), 0) },
      { key: "identitiesCalling", label: "Identities making tools/call requests", value: volume.length },
      { key: "unusualVolume", label: "Identities with unusual volume", value: unusual.length },
    ],
    tables: [
      { key: "blockedByRule", title: "Blocked calls by rule", columns: ["rule", "connection", "blocked"], rows: blocked.map((r) => [String(r.rule), String(r.connection), num(r.blocked)]) },
      { key: "maskingByType", title: "Masking hits by type", columns: ["type", "values masked", "messages"], rows: masking.map((r) => [String(r.type), num(r.values_masked), num(r.messages)]) },
      {
        key: "toolDefinitionChanges",
        title: "Tool definition changes",
        columns: ["connection", "tool", "changes", "calls allowed", "calls held", "calls blocked", "last event"],
        rows: tools.map((r) => [String(r.connection), String(r.tool), num(r.changes), num(r.calls_allowed), num(r.calls_held), num(r.calls_blocked), iso(r.last_at)]),
      },
      {
        key: "shadowWouldBlock",
        title: "Shadow mode: would have blocked or held",
        columns: ["decision", "rule", "connection", "calls"],
        rows: shadow.map((r) => [String(r.reason), String(r.rule), String(r.connection), num(r.calls)]),
      },
      {
        key: "volumePerIdentity",
        title: "tools/call volume per identity (top 20)",
        columns: ["identity", "calls", "trailing weekly median", "unusual"],
        rows: volume.slice(0, 20).map((r) => [r.email ? `${String(r.subject)} (${String(r.email)})` : String(r.subject), num(r.calls), num(r.trailing_weekly_median), unusual.includes(r) ? "yes" : "no"]),
      },
    ],
    exceptions,
    notes: [
      `Unusual volume: an identity with at least ${UNUSUAL_MIN_CALLS} tools/call requests in the week and more than ${UNUSUAL_FACTOR}× the median of its weekly counts over the four 7-day periods before the week (periods without calls count as 0).`,
      ...(toolsRecorded || tools.length > 0 ? [] : ["Tool definition changes: no data: this gateway version does not record tool definition changes (event tool_definition_changed) yet."]),
    ],
    queries: [QUERIES.blockedByRule, QUERIES.maskingByType, QUERIES.toolDefinitionChanges, QUERIES.shadowWouldBlock, QUERIES.volumePerIdentity],
    empty: blocked.length === 0 && masking.length === 0 && tools.length === 0 && shadow.length === 0 && volume.length === 0,
    emptyText: "No blocked calls, masked values, tool definition changes, shadow decisions or tools/call requests were recorded in this week.",
  });
}

async function privacy(run: Run): Promise<DigestSection> {
  const rows = await run(QUERIES.unmaskedDeliveries);
  const withoutReason = rows.filter((r) => !String(r.reason ?? "").trim());
  const recipients = new Set(rows.map((r) => String(r.subject)));
  return section({
    id: "privacy",
    criteria: "Privacy / Confidentiality",
    title: "Unmasked personal data under a role exemption",
    population: "Responses delivered with masked types left visible to a caller exempted by role (unmasked_delivery events) in the week",
    counts: [
      { key: "deliveries", label: "Unmasked deliveries", value: rows.reduce((n, r) => n + num(r.deliveries), 0) },
      { key: "recipients", label: "Distinct recipients", value: recipients.size },
      { key: "withoutReason", label: "Deliveries without a stated reason", value: withoutReason.reduce((n, r) => n + num(r.deliveries), 0) },
    ],
    tables: [
      {
        key: "unmaskedDeliveries",
        title: "Who received unmasked data, how often, and why",
        columns: ["recipient", "connection", "reason given", "deliveries", "types"],
        rows: rows.map((r) => [String(r.subject), String(r.connection), String(r.reason ?? "") || "(none given)", num(r.deliveries), r.types === null ? "" : String(r.types)]),
      },
    ],
    exceptions: withoutReason.map((r) => `${String(r.subject)} received unmasked data ${num(r.deliveries)} time(s) on ${String(r.connection)} without stating a reason`),
    queries: [QUERIES.unmaskedDeliveries],
    empty: rows.length === 0,
    emptyText: "Nobody received unmasked personal data under a role exemption in this week.",
  });
}

async function changeManagement(run: Run): Promise<DigestSection> {
  const rows = await run(QUERIES.configChanges);
  const applied = rows.filter((r) => r.reason === "applied");
  const rejected = rows.filter((r) => r.reason === "rejected" || r.reason === "refused");
  const who = (r: Row) => {
    const by = (r.by ?? {}) as { kind?: string; subject?: string; email?: string; instance?: string };
    return [by.email ?? by.subject ?? r.subject ?? null, by.kind ? `(${by.kind})` : null].filter(Boolean).join(" ") || "(unknown)";
  };
  const changeText = (r: Row) => {
    const changes = Array.isArray(r.changes) ? (r.changes as Array<{ path: string; before: unknown; after: unknown }>) : [];
    if (r.reason === "rejected" || r.reason === "refused") return `refused: ${(Array.isArray(r.problems) ? (r.problems as string[]) : []).join("; ")}`;
    if (!r.previous_hash) return "configuration in force at start";
    return changes.map((c) => `${c.path}: ${shownValue(c.path, c.before)} → ${shownValue(c.path, c.after)}`).join("; ") || "(no differences)";
  };
  return section({
    id: "cc8_1",
    criteria: "CC8.1",
    title: "Change management",
    population: "Configuration (connections, access, policy rules, masking) applied or refused in the week (config_changed events)",
    counts: [
      { key: "applied", label: "Configurations applied", value: applied.length },
      { key: "rejected", label: "Reloads refused", value: rejected.length },
    ],
    tables: [
      {
        key: "configChanges",
        title: "Configuration and rule changes",
        columns: ["when", "outcome", "who", "hash", "previous hash", "diff"],
        rows: rows.map((r) => [iso(r.at), String(r.reason), who(r), r.hash ? String(r.hash).slice(0, 16) : "", r.previous_hash ? String(r.previous_hash).slice(0, 16) : "", changeText(r)]),
      },
    ],
    exceptions: rejected.map((r) => `A configuration reload was refused at ${iso(r.at)} by ${who(r)}`),
    notes: ["Diffs show the configuration file as written: secret references ({ env: NAME }, { file: path }), never secret values. Hashes are SHA-256 of the file (first 16 hex digits shown)."],
    queries: [QUERIES.configChanges],
    empty: rows.length === 0,
    emptyText: "No configuration was applied or refused in this week.",
  });
}

/**
 * A configuration value as the digest shows it: secret references as written ({ env: NAME }),
 * inline credentials as [redacted] and passwords in URLs as *** (events recorded before
 * config_changed redacted its diff may still hold them).
 */
export function shownValue(path: string, v: unknown): string {
  if (v === null || v === undefined) return "null";
  const shown = redactConfigValue(path, v);
  return shown === REDACTED ? REDACTED : JSON.stringify(shown);
}

async function integrity(client: ChainClient, run: Run, opts: ComputeOptions): Promise<DigestSection> {
  const range = (await run(QUERIES.chainRange))[0] ?? {};
  const head = (await run(QUERIES.chainHead, false))[0];
  const checkpoint = (await run(QUERIES.lastCheckpoint, false))[0];
  const entries = num(range.entries);
  const first = range.first_seq === null || range.first_seq === undefined ? null : num(range.first_seq);
  const last = range.last_seq === null || range.last_seq === undefined ? null : num(range.last_seq);
  const gaps = num(range.gaps);
  const result = await verifyChain(client, { since: opts.week.start, until: opts.week.end, keys: opts.verifiers, ...(opts.onProgress ? { onProgress: opts.onProgress } : {}) });
  const verification = result.ok ? "passed" : `failed${result.firstBad?.seq != null ? ` at seq ${result.firstBad.seq}` : ""}: ${result.firstBad?.kind}: ${result.firstBad?.detail}`;
  const exceptions = [
    ...(gaps > 0 ? [`${gaps} sequence number(s) missing between ${first ?? "?"} and ${last ?? "?"}`] : []),
    ...(result.ok ? [] : [`Verification ${verification}`]),
    ...(num(range.sealed_missing) > 0 ? [`${num(range.sealed_missing)} record(s) were already gone when sealed`] : []),
  ];
  return section({
    id: "integrity",
    criteria: "Integrity",
    title: "Integrity of the record",
    population: "Audit chain entries sealed in the week; the whole chain up to the week's end is recomputed",
    counts: [
      { key: "firstSeq", label: "First sequence number", value: first },
      { key: "lastSeq", label: "Last sequence number", value: last },
      { key: "entries", label: "Entries sealed", value: entries },
      { key: "gaps", label: "Gaps (must be 0)", value: gaps },
      { key: "chainHeadSeq", label: "Chain head at generation: sequence", value: head ? num(head.seq) : null },
      { key: "chainHead", label: "Chain head at generation: hash", value: head ? String(head.hash) : null },
      { key: "lastCheckpoint", label: "Last signed checkpoint", value: checkpoint ? `#${String(checkpoint.id)} at seq ${num(checkpoint.seq)}, ${iso(checkpoint.at)}, key ${String(checkpoint.keyId)}` : null },
      { key: "verification", label: "Verification at generation", value: verification },
      { key: "verifiedRange", label: "Range recomputed", value: result.range ? `${result.range.from}..${result.range.to}` : null },
    ],
    tables: [],
    exceptions,
    notes: [
      "Verification recomputes the hash chain from the last signed checkpoint at or before the week's start (or the chain's first kept entry) through the last entry sealed before the week's end, and checks every checkpoint's signature.",
      ...result.warnings.map((w) => `Verification warning: ${w}`),
    ],
    queries: [QUERIES.chainRange, QUERIES.chainHead, QUERIES.lastCheckpoint],
    empty: entries === 0,
    emptyText: "No audit records were sealed in this week (the verification below still ran).",
  });
}
