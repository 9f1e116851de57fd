// Pins in Postgres, shared by every replica. One row per (connection, tool) holds the pinned
// definition (the accepted one) and the current one (the last the upstream sent). Each change
// from a pin to a new definition is reported once, whatever the number of sessions or replicas
// that see it: tool_pin_changes has one row per (connection, tool, pinned hash, new hash) and
// only the transaction that inserts it records the event. Pin rows and their events commit in
// the same transaction; the events join the tamper-evident chain (the events table's trigger).
// Every change is announced with NOTIFY so other replicas refresh their cache.
import pg from "pg";
import { diffDefinitions, summarizeChanges, type DefinitionChange } from "../pinning/diff.js";

export const PIN_NOTIFY_CHANNEL = "countersign_tool_pins";

export interface ToolPin {
  connection: string;
  tool: string;
  /** The pinned (accepted) definition's fingerprint. */
  hash: string;
  definition: unknown;
  pinnedAt: Date;
  /** "first_sight", or who re-pinned it. */
  pinnedBy: string;
  /** The definition the upstream sent last. */
  currentHash: string;
  currentDefinition: unknown;
  currentSeenAt: Date;
}

/** One tool as a tools/list response showed it: the fingerprint of the real definition, and the definition as stored (masked). */
export interface ObservedTool {
  tool: string;
  hash: string;
  definition: unknown;
}

export interface ObserveContext {
  sessionId?: string | null | undefined;
  subject?: string | null | undefined;
}

/** An event written in the same transaction as the pin change it records. */
export interface PinEvent {
  type: "tool_pinned" | "tool_definition_changed";
  reason: "first_sight" | "repinned" | "detected";
  sessionId: string | null;
  connection: string;
  subject: string | null;
  detail: Record<string, unknown>;
}

export interface ObserveResult {
  pinned: string[];
  /** Changes reported now (first seen by this call). */
  changed: Array<{ tool: string; pinnedHash: string; hash: string; changes: DefinitionChange[] }>;
  events: PinEvent[];
}

export interface RepinResult {
  repinned: Array<{ tool: string; previousHash: string; hash: string; changes: DefinitionChange[] }>;
  events: PinEvent[];
}

type Row = Record<string, unknown>;

function toPin(r: Row): ToolPin {
  return {
    connection: String(r.connection),
    tool: String(r.tool),
    hash: String(r.hash),
    definition: r.definition,
    pinnedAt: new Date(r.pinnedAt as string),
    pinnedBy: String(r.pinnedBy),
    currentHash: String(r.currentHash),
    currentDefinition: r.currentDefinition,
    currentSeenAt: new Date(r.currentSeenAt as string),
  };
}

const INSERT_EVENT = `INSERT INTO events (type, reason, "sessionId", connection, subject, detail) VALUES ($1, $2, $3, $4, $5, $6)`;

export class PinStore {
  constructor(readonly pool: pg.Pool) {}

  async list(connection?: string): Promise<ToolPin[]> {
    const r = connection === undefined
      ? await this.pool.query(`SELECT * FROM tool_pins ORDER BY connection, tool`)
      : await this.pool.query(`SELECT * FROM tool_pins WHERE connection = $1 ORDER BY tool`, [connection]);
    return r.rows.map((row) => toPin(row as Row));
  }

  /**
   * Records what a tools/list showed: tools never seen are pinned (first sight), a definition that
   * differs from its pin becomes the tool's current one, and a change not reported before is
   * reported (with the diff) exactly once. One transaction; rows locked in tool order.
   */
  async observe(connection: string, tools: readonly ObservedTool[], ctx: ObserveContext): Promise<ObserveResult> {
    const sorted = [...tools].sort((a, b) => (a.tool < b.tool ? -1 : a.tool > b.tool ? 1 : 0));
    const sessionId = ctx.sessionId ?? null;
    const subject = ctx.subject ?? null;
    const result: ObserveResult = { pinned: [], changed: [], events: [] };
    const pinnedNow: Array<{ tool: string; hash: string }> = [];
    let wrote = false;
    await this.#transaction(async (c) => {
      for (const t of sorted) {
        const definition = JSON.stringify(t.definition);
        // Concurrent first sight from two sessions: one insert wins, the other waits and does nothing.
        const inserted = await c.query(
          `INSERT INTO tool_pins (connection, tool, hash, definition, "pinnedBy", "currentHash", "currentDefinition", "currentSessionId")
           VALUES ($1, $2, $3, $4::jsonb, 'first_sight', $3, $4::jsonb, $5)
           ON CONFLICT (connection, tool) DO NOTHING RETURNING tool`,
          [connection, t.tool, t.hash, definition, sessionId],
        );
        if (inserted.rowCount === 1) {
          pinnedNow.push({ tool: t.tool, hash: t.hash });
          continue;
        }
        const row = (await c.query(`SELECT * FROM tool_pins WHERE connection = $1 AND tool = $2 FOR UPDATE`, [connection, t.tool])).rows[0] as Row;
        const pin = toPin(row);
        if (pin.currentHash !== t.hash) {
          wrote = true;
          await c.query(
            `UPDATE tool_pins SET "currentHash" = $3, "currentDefinition" = $4::jsonb, "currentSeenAt" = now(), "currentSessionId" = $5
             WHERE connection = $1 AND tool = $2`,
            [connection, t.tool, t.hash, definition, sessionId],
          );
        }
        if (pin.hash === t.hash) continue;
        const reported = await c.query(
          `INSERT INTO tool_pin_changes (connection, tool, "pinnedHash", hash, "sessionId") VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT DO NOTHING RETURNING tool`,
          [connection, t.tool, pin.hash, t.hash, sessionId],
        );
        if (reported.rowCount !== 1) continue;
        const changes = diffDefinitions(pin.definition, t.definition);
        result.changed.push({ tool: t.tool, pinnedHash: pin.hash, hash: t.hash, changes });
        result.events.push({
          type: "tool_definition_changed",
          reason: "detected",
          sessionId,
          connection,
          subject,
          detail: {
            tool: t.tool,
            oldHash: pin.hash,
            newHash: t.hash,
            pinnedAt: pin.pinnedAt.toISOString(),
            pinnedBy: pin.pinnedBy,
            summary: summarizeChanges(changes),
            diff: changes,
            definition: t.definition,
          },
        });
      }
      if (pinnedNow.length > 0) {
        result.pinned = pinnedNow.map((p) => p.tool);
        result.events.unshift({ type: "tool_pinned", reason: "first_sight", sessionId, connection, subject, detail: { by: "first_sight", tools: pinnedNow } });
      }
      for (const e of result.events) await c.query(INSERT_EVENT, [e.type, e.reason, e.sessionId, e.connection, e.subject, JSON.stringify(e.detail)]);
      if (wrote || pinnedNow.length > 0) await c.query(`SELECT pg_notify($1, $2)`, [PIN_NOTIFY_CHANNEL, connection]);
    });
    return result;
  }

  /**
   * Accepts the current definitions as the new pins (all the connection's changed tools, or one
   * tool), recorded as tool_pinned/repinned events naming who did it, in the same transaction.
   */
  async repin(connection: string, by: string, tool?: string): Promise<RepinResult> {
    const result: RepinResult = { repinned: [], events: [] };
    await this.#transaction(async (c) => {
      const rows = (
        await c.query(
          `SELECT * FROM tool_pins WHERE connection = $1 AND ($2::text IS NULL OR tool = $2) AND hash <> "currentHash" ORDER BY tool FOR UPDATE`,
          [connection, tool ?? null],
        )
      ).rows.map((r) => toPin(r as Row));
      for (const pin of rows) {
        await c.query(
          `UPDATE tool_pins SET hash = "currentHash", definition = "currentDefinition", "pinnedAt" = now(), "pinnedBy" = $3 WHERE connection = $1 AND tool = $2`,
          [connection, pin.tool, by],
        );
        const changes = diffDefinitions(pin.definition, pin.currentDefinition);
        result.repinned.push({ tool: pin.tool, previousHash: pin.hash, hash: pin.currentHash, changes });
        result.events.push({
          type: "tool_pinned",
          reason: "repinned",
          sessionId: null,
          connection,
          subject: by,
          detail: { by, tool: pin.tool, oldHash: pin.hash, newHash: pin.currentHash, summary: summarizeChanges(changes), diff: changes },
        });
      }
      for (const e of result.events) await c.query(INSERT_EVENT, [e.type, e.reason, e.sessionId, e.connection, e.subject, JSON.stringify(e.detail)]);
      if (rows.length > 0) await c.query(`SELECT pg_notify($1, $2)`, [PIN_NOTIFY_CHANNEL, connection]);
    });
    return result;
  }

  async #transaction(fn: (c: pg.PoolClient) => Promise<void>): Promise<void> {
    const c = await this.pool.connect();
    try {
      await c.query("BEGIN");
      await fn(c);
      await c.query("COMMIT");
    } catch (err) {
      await c.query("ROLLBACK").catch(() => {});
      throw err;
    } finally {
      c.release();
    }
  }
}
