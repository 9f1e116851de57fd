// The tables whose rows join the audit chain. A table becomes a source through one trigger line
// in its migration (see prisma/migrations/20261125000000_audit_chain): the trigger queues each
// inserted row for the sealer. This list lets start-up and tests check that every source has
// its trigger; the sealer itself seals whatever the trigger queued.
export const AUDITED_SOURCES = ["messages", "events", "sessions", "approval_requests", "approval_votes"] as const;

/**
 * Sources whose rows legitimately change after they are written (a session closes, a request is
 * decided, its Slack message posted): the chain seals only the columns fixed when the row is
 * written (who, what, when), so a later change of those is found and the others may move. The
 * changes themselves are chained as events and votes. Rows of these sources are kept by
 * retention (other records point at them) and sealed again at the head when their old entries
 * are cut (gateway/store/chain/retention.ts). Sources not listed are sealed whole.
 */
export const SEALED_COLUMNS: Readonly<Record<string, readonly string[]>> = {
  sessions: ["id", "connection", "frontTransport", "upstreamKind", "ownerInstanceId", "remoteAddress", "userAgent", "subject", "issuer", "email", "name", "groups", "clientId", "createdAt"],
  approval_requests: [
    "id", "sessionId", "connection", "method", "tool", "argumentsHash", "maskedArguments", "requesterSubject", "requesterIssuer", "requesterKind",
    "requesterEmail", "requesterName", "requesterGroups", "ruleId", "ruleDescription", "approverGroup", "approvalsNeeded", "justification", "createdAt", "expiresAt",
  ],
};

/** Sources whose rows retention keeps (and re-seals) rather than deletes: rows other records point at. */
export const KEPT_BY_RETENTION: ReadonlySet<string> = new Set(["sessions", "approval_requests", "approval_votes"]);

/** The part of a row the chain seals (SEALED_COLUMNS), or the row itself. */
export function sealedPart(source: string, row: Record<string, unknown>): Record<string, unknown> {
  const columns = Object.hasOwn(SEALED_COLUMNS, source) ? SEALED_COLUMNS[source] : undefined;
  if (!columns) return row;
  const out: Record<string, unknown> = {};
  for (const c of columns) if (Object.hasOwn(row, c)) out[c] = row[c];
  return out;
}

export type AuditedSource = (typeof AUDITED_SOURCES)[number];

/** Quotes a table name read from the queue or the chain for use in SQL. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
