// Messages and events: the recorder's batches (gateway/audit/recorder.ts builds the column arrays).
import pg from "pg";
import type { Db } from "./client.js";

/** The hot pool (the gateway), or a Prisma client (tools and tests). */
export type RecordStore = Db | pg.Pool;

// The hot path's one statement per batch. Prisma's createMany costs three round trips (BEGIN,
// INSERT, COMMIT) and a query compilation per call; unnest() takes the whole batch as one array
// per column in a single autocommitted INSERT, and a data-modifying CTE adds the events to the same
// statement. Keep the columns in step with models Message and Event in prisma/schema.prisma.
const MESSAGE_COLUMNS = `"sessionId", "connection", "direction", "origin", "kind", "jsonrpcId", "method", "size", "payload", "subject", "at", "maskHits", "requestId"`;
const MESSAGE_ARRAYS = (p: number) =>
  `unnest($${p}::text[], $${p + 1}::text[], $${p + 2}::text[], $${p + 3}::text[], $${p + 4}::text[], $${p + 5}::text[], $${p + 6}::text[], $${p + 7}::int[], $${p + 8}::jsonb[], $${p + 9}::text[], $${p + 10}::timestamptz[], $${p + 11}::jsonb[], $${p + 12}::text[])`;
const EVENT_COLUMNS = `"type", "reason", "sessionId", "connection", "subject", "detail", "requestId"`;
const EVENT_ARRAYS = (p: number) => `unnest($${p}::text[], $${p + 1}::text[], $${p + 2}::text[], $${p + 3}::text[], $${p + 4}::text[], $${p + 5}::jsonb[], $${p + 6}::text[])`;

const INSERT_MESSAGES = `INSERT INTO "messages" (${MESSAGE_COLUMNS}) SELECT * FROM ${MESSAGE_ARRAYS(1)}`;
const INSERT_EVENTS = `INSERT INTO "events" (${EVENT_COLUMNS}) SELECT * FROM ${EVENT_ARRAYS(1)}`;
const INSERT_BOTH = `WITH m AS (INSERT INTO "messages" (${MESSAGE_COLUMNS}) SELECT * FROM ${MESSAGE_ARRAYS(1)})
INSERT INTO "events" (${EVENT_COLUMNS}) SELECT * FROM ${EVENT_ARRAYS(14)}`;

/** One autocommitted INSERT of a batch: the message columns, the event columns, or both. */
export function insertRecords(store: RecordStore, messageColumns: unknown[] | null, eventColumns: unknown[] | null): Promise<unknown> {
  const [sql, params] =
    eventColumns === null
      ? [INSERT_MESSAGES, messageColumns ?? []]
      : messageColumns === null
        ? [INSERT_EVENTS, eventColumns]
        : [INSERT_BOTH, [...messageColumns, ...eventColumns]];
  return store instanceof pg.Pool ? store.query(sql, params) : store.$executeRawUnsafe(sql, ...params);
}
