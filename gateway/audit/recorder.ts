// Records messages and events durably before they move on (invariant 1 in the architecture).
// Concurrent records are committed together: while one INSERT is in flight, new rows queue, and
// the next flush writes them all in one statement (group commit). A caller's promise resolves
// only when its row is committed; it rejects with CS_ERR_AUDIT_UNAVAILABLE when the store cannot
// commit in time, and the caller then fails closed.
import pg from "pg";
import type { Db } from "../db/client.js";
import { CountersignError } from "../errors.js";
import type { MessageKind } from "../mcp/jsonrpc.js";
import type { EventReason, EventType } from "./events.js";

export interface MessageRecord {
  sessionId: string | null;
  connection: string;
  direction: "in" | "out";
  origin: "client" | "upstream" | "gateway";
  kind: MessageKind;
  jsonrpcId: string | null;
  method: string | null;
  size: number;
  payload: unknown;
  /** The payload already serialised, when the caller has it (saves a second JSON.stringify). */
  payloadText?: string | undefined;
  /** Values masked in the payload, per type; null when nothing was masked. */
  maskHits?: Record<string, number> | null;
  subject: string | null;
  /** The HTTP request that carried or caused it (the log's reqId). */
  requestId?: string | null | undefined;
  at: Date;
}

export interface EventRecord<T extends EventType = EventType> {
  type: T;
  reason: EventReason<T>;
  sessionId?: string | null;
  connection?: string | null;
  subject?: string | null;
  detail?: Record<string, unknown>;
  /** The HTTP request that led to it, where there is one (the log's reqId). */
  requestId?: string | null | undefined;
}

interface Pending<T> {
  row: T;
  resolve: () => void;
  reject: (err: Error) => void;
}

export interface RecorderStatus {
  healthy: boolean;
  lastError?: string;
  unhealthySince?: Date;
  committedRows: number;
  batches: number;
  failedBatches: number;
}

export interface RecorderOptions {
  commitTimeoutMs: number;
  /** Rows per INSERT at most; the rest wait for the next flush. */
  maxBatch?: number;
  onStatusChange?: (status: RecorderStatus) => void;
  onBatch?: (rows: number, ms: number, ok: boolean) => void;
  /** Sees every committed batch (metrics). */
  onCommitted?: (messages: readonly MessageRecord[], events: readonly EventRecord[]) => void;
}

export class Recorder {
  #messages: Pending<MessageRecord>[] = [];
  #events: Pending<EventRecord>[] = [];
  #flushing = false;
  #status: RecorderStatus = { healthy: true, committedRows: 0, batches: 0, failedBatches: 0 };

  /**
   * `store`: a pg pool for the gateway's hot path, or a Prisma client (tools and tests). The pool
   * is preferred where traffic flows: Prisma copies every parameter (whole payloads) through its
   * query compiler's WebAssembly memory, which grows to the largest batch and never shrinks.
   */
  constructor(private readonly store: Db | pg.Pool, private readonly opts: RecorderOptions) {}

  get status(): RecorderStatus {
    return { ...this.#status };
  }

  message(row: MessageRecord): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#messages.push({ row, resolve, reject });
      this.#schedule();
    });
  }

  event<T extends EventType>(row: EventRecord<T>): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#events.push({ row: row as EventRecord, resolve, reject });
      this.#schedule();
    });
  }

  /** Records an event whose loss must not stop the data path; a failure is left to the log. */
  eventBestEffort<T extends EventType>(row: EventRecord<T>): void {
    this.event(row).catch(() => {});
  }

  /** Resolves when everything queued so far has been attempted. */
  async drain(): Promise<void> {
    while (this.#flushing || this.#messages.length > 0 || this.#events.length > 0) {
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  #schedule(): void {
    if (this.#flushing) return;
    this.#flushing = true;
    // Let the current tick's records join this batch.
    queueMicrotask(() => void this.#flushLoop());
  }

  async #flushLoop(): Promise<void> {
    const max = this.opts.maxBatch ?? 500;
    while (this.#messages.length > 0 || this.#events.length > 0) {
      const messages = this.#messages.splice(0, max);
      const events = this.#events.splice(0, max);
      const started = performance.now();
      try {
        await this.#commit(messages.map((p) => p.row), events.map((p) => p.row));
        this.#status.committedRows += messages.length + events.length;
        this.#status.batches++;
        this.opts.onBatch?.(messages.length + events.length, performance.now() - started, true);
        this.opts.onCommitted?.(
          messages.map((p) => p.row),
          events.map((p) => p.row),
        );
        this.#setHealthy(true);
        for (const p of messages) p.resolve();
        for (const p of events) p.resolve();
      } catch (err) {
        this.#status.failedBatches++;
        this.opts.onBatch?.(messages.length + events.length, performance.now() - started, false);
        this.#setHealthy(false, err);
        const failure = new CountersignError("CS_ERR_AUDIT_UNAVAILABLE", describeDbError(err));
        for (const p of messages) p.reject(failure);
        for (const p of events) p.reject(failure);
      }
    }
    this.#flushing = false;
  }

  async #commit(messages: MessageRecord[], events: EventRecord[]): Promise<void> {
    // One autocommitted statement per batch, messages and events together: atomic without an
    // explicit transaction (no BEGIN/COMMIT round trips on the hot path).
    const work = [insertBatch(this.store, messages, events)];
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`commit did not finish within ${this.opts.commitTimeoutMs} ms`)), this.opts.commitTimeoutMs);
    });
    try {
      await Promise.race([Promise.all(work), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  #setHealthy(healthy: boolean, err?: unknown): void {
    const was = this.#status.healthy;
    if (healthy) {
      this.#status.healthy = true;
      delete this.#status.lastError;
      const since = this.#status.unhealthySince;
      delete this.#status.unhealthySince;
      if (!was) {
        this.opts.onStatusChange?.(this.status);
        // The outage itself could not be recorded while it lasted; record it now.
        this.eventBestEffort({
          type: "audit_store",
          reason: "recovered",
          detail: { unavailableSince: since?.toISOString(), recoveredAt: new Date().toISOString() },
        });
      }
    } else {
      this.#status.healthy = false;
      this.#status.lastError = describeDbError(err);
      this.#status.unhealthySince ??= new Date();
      if (was) this.opts.onStatusChange?.(this.status);
    }
  }
}

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

function messageArrays(rows: MessageRecord[]): unknown[] {
  return [
    rows.map((r) => r.sessionId),
    rows.map((r) => r.connection),
    rows.map((r) => r.direction),
    rows.map((r) => r.origin),
    rows.map((r) => r.kind),
    rows.map((r) => r.jsonrpcId),
    rows.map((r) => r.method),
    rows.map((r) => r.size),
    rows.map((r) => r.payloadText ?? JSON.stringify(r.payload)),
    rows.map((r) => r.subject),
    rows.map((r) => r.at),
    rows.map((r) => (r.maskHits ? JSON.stringify(r.maskHits) : null)),
    rows.map((r) => r.requestId ?? null),
  ];
}

function eventArrays(rows: EventRecord[]): unknown[] {
  return [
    rows.map((e) => e.type),
    rows.map((e) => e.reason),
    rows.map((e) => e.sessionId ?? null),
    rows.map((e) => e.connection ?? null),
    rows.map((e) => e.subject ?? null),
    rows.map((e) => (e.detail ? JSON.stringify(e.detail) : null)),
    rows.map((e) => e.requestId ?? null),
  ];
}

function insertBatch(store: Db | pg.Pool, messages: MessageRecord[], events: EventRecord[]): Promise<unknown> {
  const [sql, params] =
    events.length === 0
      ? [INSERT_MESSAGES, messageArrays(messages)]
      : messages.length === 0
        ? [INSERT_EVENTS, eventArrays(events)]
        : [INSERT_BOTH, [...messageArrays(messages), ...eventArrays(events)]];
  return store instanceof pg.Pool ? store.query(sql, params) : store.$executeRawUnsafe(sql, ...params);
}

export function describeDbError(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e?.cause?.code ?? e?.code;
  const msg = (e?.message ?? String(err)).split("\n").filter(Boolean).slice(-1)[0] ?? "unknown error";
  return code ? `${code}: ${msg}`.slice(0, 300) : msg.slice(0, 300);
}
