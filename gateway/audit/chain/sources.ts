// The tables whose rows join the audit chain. A table becomes a source through one trigger line
// in its migration (see prisma/migrations/20261125000000_audit_chain): the trigger queues each
// inserted row for the sealer. This list lets start-up and tests check that every source has
// its trigger; the sealer itself seals whatever the trigger queued.
export const AUDITED_SOURCES = ["messages", "events"] as const;

export type AuditedSource = (typeof AUDITED_SOURCES)[number];

/** Quotes a table name read from the queue or the chain for use in SQL. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
