// What an answered request leaves behind besides its record: metrics (methods from a fixed set,
// see metrics.ts) and, unless turned off (log.requests), one info line a person can read. The line
// names who, where, what and how it ended; never arguments or results, which only the masked
// record holds.
import type { ExchangeContext } from "./context.js";
import type { PendingRequest } from "./exchange.js";

export type Outcome = "ok" | "error" | "refused";

export function observe(ctx: ExchangeContext, p: PendingRequest, outcome: Outcome): void {
  const now = performance.now();
  const m = ctx.deps.metrics;
  if (m) {
    const labels = { connection: ctx.connection.name, method: p.method };
    m.requests.inc({ ...labels, outcome });
    m.requestDuration.observe(labels, (now - p.receivedAt) / 1000);
    if (p.forwardedAt !== undefined && outcome !== "refused") m.upstreamDuration.observe(labels, (now - p.forwardedAt) / 1000);
  }
  if (ctx.deps.logRequests === false || p.task) return;
  ctx.deps.log.info(
    {
      who: ctx.identity.email ?? ctx.identity.subject,
      connection: ctx.connection.name,
      session: ctx.sessionId ?? undefined,
      method: p.method.slice(0, 100),
      // A resource URI can carry a credential or personal data: masked like any content.
      tool: p.target === undefined ? undefined : (ctx.connection.masker?.maskText(p.target.slice(0, 200)).masked ?? p.target.slice(0, 200)),
      decision: p.decision ?? "pass",
      status: outcome,
      ms: Math.round(now - p.receivedAt),
      httpRequestId: p.httpRequestId,
    },
    "mcp request",
  );
}
