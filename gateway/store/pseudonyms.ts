// The pseudonym map (table masking_pseudonyms) for gateway/masking/restore: sealed originals by
// keyed scope digest and pseudonym; the sealing, digests and bounds are the restorer's.
import pg from "pg";

export interface PseudonymRow {
  scopeHash: string;
  pseudonym: string;
  type: string;
  sealed: Buffer;
  valueHash: string;
  keyId: string;
  expiresAt: Date;
}

export interface StoredPseudonym {
  pseudonym: string;
  sealed: Buffer;
  keyId: string;
  ambiguous: boolean;
}

/** Rows per INSERT (7 parameters each; PostgreSQL takes at most 65,535). */
const INSERT_CHUNK = 1_000;

export class PseudonymStore {
  readonly #pool: pg.Pool;
  readonly #ownsPool: boolean;

  /** A pool of the store's (never ended here), or a connection string (a small pool owned here). */
  constructor(pool: pg.Pool | string) {
    this.#ownsPool = typeof pool === "string";
    this.#pool = typeof pool === "string" ? new pg.Pool({ connectionString: pool, max: 2 }) : pool;
  }

  /** Re-issuing refreshes the TTL; a second original for the same pseudonym makes it ambiguous for good. */
  async upsert(rows: readonly PseudonymRow[]): Promise<void> {
    // In chunks: one INSERT takes at most 65,535 parameters.
    for (let from = 0; from < rows.length; from += INSERT_CHUNK) {
      const values: unknown[] = [];
      const tuples = rows.slice(from, from + INSERT_CHUNK).map((r, i) => {
        values.push(r.scopeHash, r.pseudonym, r.type, r.sealed, r.valueHash, r.keyId, r.expiresAt);
        const b = i * 7;
        return `($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5}, $${b + 6}, $${b + 7})`;
      });
      await this.#pool.query(
        `INSERT INTO masking_pseudonyms ("scopeHash", pseudonym, type, sealed, "valueHash", "keyId", "expiresAt")
         VALUES ${tuples.join(", ")}
         ON CONFLICT ("scopeHash", pseudonym) DO UPDATE SET
           "expiresAt" = EXCLUDED."expiresAt",
           ambiguous = masking_pseudonyms.ambiguous OR masking_pseudonyms."valueHash" <> EXCLUDED."valueHash",
           sealed = CASE WHEN masking_pseudonyms."keyId" = EXCLUDED."keyId" THEN masking_pseudonyms.sealed ELSE EXCLUDED.sealed END,
           "keyId" = EXCLUDED."keyId"`,
        values,
      );
    }
  }

  /** The bound: expired rows of this scope, then everything beyond `maxPerScope`, oldest first. */
  async trimScope(scopeHash: string, maxPerScope: number): Promise<void> {
    await this.#pool.query(
      `DELETE FROM masking_pseudonyms WHERE "scopeHash" = $1 AND ("expiresAt" < now() OR pseudonym IN (
         SELECT pseudonym FROM masking_pseudonyms WHERE "scopeHash" = $1 ORDER BY "createdAt" DESC, pseudonym OFFSET $2))`,
      [scopeHash, maxPerScope],
    );
  }

  /** The unexpired rows of a scope among `pseudonyms`. */
  async lookup(scopeHash: string, pseudonyms: string[]): Promise<StoredPseudonym[]> {
    const { rows } = await this.#pool.query<StoredPseudonym>(
      `SELECT pseudonym, sealed, "keyId", ambiguous FROM masking_pseudonyms WHERE "scopeHash" = $1 AND pseudonym = ANY($2) AND "expiresAt" > now()`,
      [scopeHash, pseudonyms],
    );
    return rows;
  }

  /** Deletes expired rows (all scopes); returns how many. */
  async sweep(): Promise<number> {
    const r = await this.#pool.query(`DELETE FROM masking_pseudonyms WHERE "expiresAt" < now()`);
    return r.rowCount ?? 0;
  }

  async close(): Promise<void> {
    if (this.#ownsPool) await this.#pool.end();
  }
}
