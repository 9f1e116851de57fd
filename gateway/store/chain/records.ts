// Reads audited rows as the chain hashes them: to_jsonb(row) on a UTC session (see canonical.ts),
// cut to the columns the chain seals for sources whose rows change later (sources.ts).
import type pg from "pg";
import { idType } from "./pg.js";
import { quoteIdent, sealedPart } from "../../audit/chain/sources.js";

export interface SourceRef {
  source: string;
  sourceId: string;
}

/** Rows by source and id; a key absent from the result is a row that does not exist. */
export async function fetchRecords(client: pg.Client, refs: SourceRef[]): Promise<Map<string, Record<string, unknown>>> {
  const bySource = new Map<string, string[]>();
  for (const r of refs) {
    const ids = bySource.get(r.source);
    if (ids) ids.push(r.sourceId);
    else bySource.set(r.source, [r.sourceId]);
  }
  const out = new Map<string, Record<string, unknown>>();
  for (const [source, ids] of bySource) {
    let type: string;
    try {
      type = await idType(client, source);
    } catch {
      continue; // a dropped table: every row of it is missing
    }
    const res = await client.query<{ id: string; row: Record<string, unknown> }>(
      `SELECT t."id"::text AS id, to_jsonb(t) AS row FROM ${quoteIdent(source)} t WHERE t."id" = ANY($1::${type}[])`,
      [ids],
    );
    for (const r of res.rows) out.set(recordKey(source, r.id), sealedPart(source, r.row));
  }
  return out;
}

export function recordKey(source: string, sourceId: string): string {
  return `${source}#${sourceId}`;
}
