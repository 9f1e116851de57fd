// Prometheus metrics at /metrics. Most signals are counted where every message and event already
// passes: the recorder, once a row is committed (so the metrics agree with the audit store).
// Request latency is observed by the session.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { EventRecord, MessageRecord } from "./audit/recorder.js";

/**
 * Every JSON-RPC method any MCP revision defines (2024-11-05 through 2026-07-28). A method label
 * takes one of these or "other": the method name is chosen by a client or an upstream, and each
 * distinct label value is a series kept for the life of the process, so the set is the bound.
 */
export const KNOWN_METHODS: ReadonlySet<string> = new Set([
  "initialize", "ping", "notifications/initialized", "notifications/cancelled", "notifications/progress", "notifications/message",
  "tools/list", "tools/call", "notifications/tools/list_changed",
  "resources/list", "resources/templates/list", "resources/read", "resources/subscribe", "resources/unsubscribe",
  "notifications/resources/list_changed", "notifications/resources/updated",
  "prompts/list", "prompts/get", "notifications/prompts/list_changed",
  "completion/complete", "logging/setLevel",
  "roots/list", "notifications/roots/list_changed", "sampling/createMessage", "elicitation/create", "notifications/elicitation/complete",
  "tasks/get", "tasks/result", "tasks/list", "tasks/cancel", "notifications/tasks/status",
  // 2026-07-28
  "server/discover", "subscriptions/listen",
]);

/** The metric label for a method: itself when the protocol defines it, else "other" ("" for none: a response). */
export function methodLabel(method: string | null | undefined): string {
  if (method === null || method === undefined || method === "") return "";
  return KNOWN_METHODS.has(method) ? method : "other";
}

type MethodLabels = Partial<Record<string, string | number>> & { method?: string };
const withBoundedMethod = <T extends MethodLabels>(labels: T): T => ("method" in labels ? { ...labels, method: methodLabel(labels.method as string) } : labels);

/**
 * Makes a metric's `method` label bounded by KNOWN_METHODS, whoever records into it (prom-client
 * binds inc/observe per instance, so the instance's own function is wrapped).
 */
function boundMethodLabel<M extends Counter<string> | Histogram<string>>(metric: M): M {
  const target = metric as unknown as Record<"inc" | "observe", ((...a: unknown[]) => void) | undefined>;
  for (const fn of ["inc", "observe"] as const) {
    const original = target[fn];
    if (typeof original !== "function") continue;
    target[fn] = (...args: unknown[]) => {
      if (args[0] && typeof args[0] === "object") args[0] = withBoundedMethod(args[0] as MethodLabels);
      original.apply(metric, args);
    };
  }
  return metric;
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class Metrics {
  readonly registry = new Registry();

  readonly messages = boundMethodLabel(new Counter({
    name: "countersign_messages_total",
    help: "JSON-RPC messages recorded, by connection, direction (in: client to server), origin and method",
    labelNames: ["connection", "direction", "origin", "method"] as const,
    registers: [this.registry],
  }));
  readonly requests = boundMethodLabel(new Counter({
    name: "countersign_requests_total",
    help: "Client requests answered, by connection, method and outcome (ok, error, refused)",
    labelNames: ["connection", "method", "outcome"] as const,
    registers: [this.registry],
  }));
  readonly requestDuration = boundMethodLabel(new Histogram({
    name: "countersign_request_duration_seconds",
    help: "From a request reaching the gateway to its answer being delivered",
    labelNames: ["connection", "method"] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  }));
  readonly upstreamDuration = boundMethodLabel(new Histogram({
    name: "countersign_upstream_duration_seconds",
    help: "From a request being forwarded to the upstream's answer arriving",
    labelNames: ["connection", "method"] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  }));
  readonly events = new Counter({
    name: "countersign_events_total",
    help: "Recorded events (decisions and state changes) by type and reason",
    labelNames: ["type", "reason", "connection"] as const,
    registers: [this.registry],
  });
  readonly policyDecisions = new Counter({
    name: "countersign_policy_decisions_total",
    help: "Policy decisions by rule and action (blocks by rule: action=\"block\")",
    labelNames: ["connection", "rule", "action", "shadow"] as const,
    registers: [this.registry],
  });
  readonly maskingHits = new Counter({
    name: "countersign_masking_hits_total",
    help: "Values masked, by detector type",
    labelNames: ["connection", "type"] as const,
    registers: [this.registry],
  });
  readonly auditCommit = new Histogram({
    name: "countersign_audit_commit_seconds",
    help: "Time to commit one batch of audit records",
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly auditBatchRows = new Histogram({
    name: "countersign_audit_batch_rows",
    help: "Records committed together in one batch (group commit)",
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 500],
    registers: [this.registry],
  });
  readonly auditFailures = new Counter({
    name: "countersign_audit_commit_failures_total",
    help: "Batches the audit store could not commit (the gateway failed closed for them)",
    registers: [this.registry],
  });
  readonly unhandledRejections = new Counter({
    name: "countersign_unhandled_rejections_total",
    help: "Promise rejections nothing handled (each is logged at error level with its stack): a bug to report; the gateway keeps running",
    registers: [this.registry],
  });
  readonly auditHealthy = new Gauge({
    name: "countersign_audit_store_up",
    help: "1 while the audit store commits, 0 while it does not (traffic is refused)",
    registers: [this.registry],
  });
  readonly approvalsHeld = new Gauge({
    name: "countersign_approvals_held",
    help: "Calls this replica holds in a session while they wait for an approval decision",
    registers: [this.registry],
  });
  readonly approvalDecision = new Histogram({
    name: "countersign_approval_decision_seconds",
    help: "From an approval request to its decision (approved or denied; expiries are counted in countersign_events_total)",
    labelNames: ["connection", "outcome"] as const,
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600],
    registers: [this.registry],
  });
  readonly databasePool = new Gauge({
    name: "countersign_database_pool_connections",
    help: "Connections of the hot pool (the recorder's and the pseudonym map's), by state (total, idle, waiting: requests queued for a connection)",
    labelNames: ["state"] as const,
    registers: [this.registry],
  });
  readonly sessions = new Gauge({
    name: "countersign_sessions",
    help: "Open client sessions by connection",
    labelNames: ["connection"] as const,
    registers: [this.registry],
  });

  constructor() {
    this.auditHealthy.set(1);
    collectDefaultMetrics({ register: this.registry, prefix: "countersign_process_" });
  }

  /** Called with each committed batch. */
  committed(messages: readonly MessageRecord[], events: readonly EventRecord[]): void {
    for (const m of messages) {
      this.messages.inc({ connection: m.connection, direction: m.direction, origin: m.origin, method: methodLabel(m.method) });
      if (m.maskHits) for (const [type, n] of Object.entries(m.maskHits)) this.maskingHits.inc({ connection: m.connection, type }, n);
    }
    for (const e of events) {
      const connection = e.connection ?? "";
      this.events.inc({ type: e.type, reason: e.reason, connection });
      if (e.type === "approval" && (e.reason === "approved" || e.reason === "denied")) {
        const seconds = (e.detail as { secondsToDecision?: unknown } | undefined)?.secondsToDecision;
        if (typeof seconds === "number") this.approvalDecision.observe({ connection, outcome: e.reason }, seconds);
      }
      if (e.type === "policy_decision") {
        const d = (e.detail ?? {}) as { ruleId?: string | null; action?: string; shadow?: boolean };
        this.policyDecisions.inc({ connection, rule: d.ruleId ?? "(default)", action: d.action ?? String(e.reason), shadow: String(Boolean(d.shadow)) });
      }
    }
  }
}
