// Records messages and events durably before they move on (invariant 1 in the architecture).
// Concurrent records are committed together: while one INSERT is in flight, new rows queue, and
// the next flush writes them all in one statement (group commit). A caller's promise resolves
// only when its row is committed; it rejects with CS_ERR_AUDIT_UNAVAILABLE when the store cannot
// commit in time, and the caller then fails closed.
import { insertRecords, type RecordStore } from "../store/records.js";
import { CountersignError } from "../errors.js";
import type { MessageKind } from "../mcp/jsonrpc.js";
import type { EventReason, EventType } from "./events.js";
import { storableJson, storableNullableText } from "./storable.js";
import { systemClock, type Clock, type ClockTimer } from "../clock.js";

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
  /** Approximate memory the queued row holds (its serialised payload and columns). */
  bytes: number;
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
  /** Records refused on arrival: the queue was at its bound, or the store was known down. */
  refused: number;
  /** Rows the store refused on their own (a poison row), each failed alone. */
  rejectedRows: number;
  queuedRows: number;
  queuedBytes: number;
}

/** Why a record was refused without being attempted. */
export type RecorderRefusal = "queue_full" | "store_down";

// Bounds of the queue (rows waiting and in flight). At either bound a new record is refused at
// once with CS_ERR_AUDIT_UNAVAILABLE: its caller fails closed instead of waiting in a queue that
// only grows while the store is slow.
export const MAX_QUEUED_ROWS = 5000;
export const MAX_QUEUED_BYTES = 64 * 1024 * 1024;
/** Per-row overhead counted on top of the payload (columns, promise, bookkeeping). */
const ROW_OVERHEAD_BYTES = 256;

export interface RecorderOptions {
  commitTimeoutMs: number;
  /** Rows per INSERT at most; the rest wait for the next flush. */
  maxBatch?: number;
  /** Bound on queued rows (default MAX_QUEUED_ROWS). */
  maxQueuedRows?: number;
  /** Bound on queued bytes (default MAX_QUEUED_BYTES). */
  maxQueuedBytes?: number;
  /** While the store is known down, how often a probe commit is tried (default min(1000, commitTimeoutMs)). */
  probeIntervalMs?: number;
  onStatusChange?: (status: RecorderStatus) => void;
  onBatch?: (rows: number, ms: number, ok: boolean) => void;
  /** Sees every committed batch (metrics). */
  onCommitted?: (messages: readonly MessageRecord[], events: readonly EventRecord[]) => void;
  /** A record refused on arrival (to log: the refusal itself cannot be recorded in the store). */
  onRefused?: (reason: RecorderRefusal, status: RecorderStatus) => void;
  /** A row the store refused on its own (the rest of its batch was committed). */
  onRowRejected?: (error: string) => void;
  /** Stamps the outage and recovery, and times the probe while the store is down (tests move it). */
  clock?: Clock | undefined;
}

export class Recorder {
  #messages: Pending<MessageRecord>[] = [];
  #events: Pending<EventRecord>[] = [];
  #flushing = false;
  #status: RecorderStatus = { healthy: true, committedRows: 0, batches: 0, failedBatches: 0, refused: 0, rejectedRows: 0, queuedRows: 0, queuedBytes: 0 };
  /** Circuit breaker: open while the store is known down; only a probe commit closes it. */
  #probe: ClockTimer | undefined;
  #closed = false;

  get #clock(): Clock {
    return this.opts.clock ?? systemClock;
  }

  /**
   * `store`: a pg pool for the gateway's hot path, or a Prisma client (tools and tests). The pool
   * is preferred where traffic flows: Prisma copies every parameter (whole payloads) through its
   * query compiler's WebAssembly memory, which grows to the largest batch and never shrinks.
   * Give the pool a statement and query timeout (the hot pool: store/pools.ts) so a stalled INSERT frees
   * its connection.
   */
  constructor(private readonly store: RecordStore, private readonly opts: RecorderOptions) {}

  get status(): RecorderStatus {
    return { ...this.#status };
  }

  message(row: MessageRecord): Promise<void> {
    return this.#enqueue(this.#messages, row, (row.payloadText?.length ?? row.size ?? 0) + ROW_OVERHEAD_BYTES);
  }

  event<T extends EventType>(row: EventRecord<T>): Promise<void> {
    return this.#enqueue(this.#events as Pending<EventRecord<T>>[], row, ROW_OVERHEAD_BYTES + (row.detail ? approximateSize(row.detail) : 0));
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

  /** Stops the probe timer (shutdown). */
  close(): void {
    this.#closed = true;
    this.#clock.clearTimeout(this.#probe);
  }

  #enqueue<R>(queue: Pending<R>[], row: R, bytes: number): Promise<void> {
    const refusal = this.#refusalFor(bytes);
    if (refusal) return Promise.reject(refusal);
    this.#status.queuedRows++;
    this.#status.queuedBytes += bytes;
    return new Promise((resolve, reject) => {
      queue.push({ row, bytes, resolve, reject });
      this.#schedule();
    });
  }

  #refusalFor(bytes: number): CountersignError | undefined {
    let reason: RecorderRefusal | undefined;
    let detail = "";
    if (this.#probe !== undefined) {
      reason = "store_down";
      detail = `the audit store is down since ${this.#status.unhealthySince?.toISOString()} (${this.#status.lastError}); new records are refused until a probe commit succeeds`;
    } else if (this.#status.queuedRows + 1 > (this.opts.maxQueuedRows ?? MAX_QUEUED_ROWS) || this.#status.queuedBytes + bytes > (this.opts.maxQueuedBytes ?? MAX_QUEUED_BYTES)) {
      reason = "queue_full";
      detail = `the audit queue is full (${this.#status.queuedRows} rows, ${this.#status.queuedBytes} bytes waiting for the store)`;
    }
    if (!reason) return undefined;
    this.#status.refused++;
    this.opts.onRefused?.(reason, this.status);
    return new CountersignError("CS_ERR_AUDIT_UNAVAILABLE", detail);
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
      if (this.#probe !== undefined) {
        // The store went down while these waited: they learn of it now, not one timeout each.
        this.#settle(messages, events, this.#downError());
        continue;
      }
      const started = performance.now();
      try {
        await this.#commit(messages.map((p) => p.row), events.map((p) => p.row));
        this.#committed(messages, events, started);
      } catch (err) {
        this.#status.failedBatches++;
        this.opts.onBatch?.(messages.length + events.length, performance.now() - started, false);
        if (isRowError(err)) {
          // The store is up and refused the data: find the row(s) it refuses, commit the others.
          await this.#commitSingly(messages, events);
        } else {
          this.#storeDown(err);
          this.#settle(messages, events, new CountersignError("CS_ERR_AUDIT_UNAVAILABLE", describeDbError(err)));
        }
      }
    }
    this.#flushing = false;
  }

  /** After a batch the store refused as data: each row alone, so one poison row fails only its own caller. */
  async #commitSingly(messages: Pending<MessageRecord>[], events: Pending<EventRecord>[]): Promise<void> {
    const singles: Array<[Pending<MessageRecord>[], Pending<EventRecord>[]]> = [...messages.map((m) => [[m], []] as [Pending<MessageRecord>[], Pending<EventRecord>[]]), ...events.map((e) => [[], [e]] as [Pending<MessageRecord>[], Pending<EventRecord>[]])];
    for (const [m, e] of singles) {
      if (this.#probe !== undefined) {
        this.#settle(m, e, this.#downError());
        continue;
      }
      const started = performance.now();
      try {
        await this.#commit(m.map((p) => p.row), e.map((p) => p.row));
        this.#committed(m, e, started);
      } catch (err) {
        if (isRowError(err)) {
          this.#status.rejectedRows++;
          this.opts.onRowRejected?.(describeDbError(err));
          this.#settle(m, e, new CountersignError("CS_ERR_AUDIT_UNAVAILABLE", `the audit store refused this record: ${describeDbError(err)}`));
        } else {
          this.#storeDown(err);
          this.#settle(m, e, new CountersignError("CS_ERR_AUDIT_UNAVAILABLE", describeDbError(err)));
        }
      }
    }
  }

  #committed(messages: Pending<MessageRecord>[], events: Pending<EventRecord>[], started: number): void {
    this.#status.committedRows += messages.length + events.length;
    this.#status.batches++;
    this.opts.onBatch?.(messages.length + events.length, performance.now() - started, true);
    this.opts.onCommitted?.(
      messages.map((p) => p.row),
      events.map((p) => p.row),
    );
    this.#setHealthy(true);
    this.#settle(messages, events);
  }

  /** Resolves (or, with an error, rejects) rows and releases their share of the queue bound. */
  #settle(messages: Pending<MessageRecord>[], events: Pending<EventRecord>[], error?: Error): void {
    for (const p of [...messages, ...events] as Pending<unknown>[]) {
      this.#status.queuedRows--;
      this.#status.queuedBytes -= p.bytes;
      if (error) p.reject(error);
      else p.resolve();
    }
  }

  #downError(): CountersignError {
    return new CountersignError("CS_ERR_AUDIT_UNAVAILABLE", `the audit store is down (${this.#status.lastError})`);
  }

  /** Opens the breaker: new records are refused at once until a probe commit succeeds. */
  #storeDown(err: unknown): void {
    this.#setHealthy(false, err);
    if (this.#probe !== undefined || this.#closed) return;
    const interval = this.opts.probeIntervalMs ?? Math.min(1000, this.opts.commitTimeoutMs);
    const probe = async () => {
      const since = this.#status.unhealthySince;
      try {
        // The probe is a real commit: the record of the recovery itself.
        await this.#commit([], [{ type: "audit_store", reason: "recovered", detail: { unavailableSince: since?.toISOString(), recoveredAt: this.#clock.date().toISOString() } }]);
        this.#probe = undefined;
        this.#setHealthy(true, undefined, true);
      } catch (probeErr) {
        if (this.#closed) return;
        this.#status.lastError = describeDbError(probeErr);
        this.#probe = this.#clock.setTimeout(() => void probe(), interval).unref();
      }
    };
    this.#probe = this.#clock.setTimeout(() => void probe(), interval).unref();
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

  #setHealthy(healthy: boolean, err?: unknown, recoveryRecorded = false): void {
    const was = this.#status.healthy;
    if (healthy) {
      this.#status.healthy = true;
      delete this.#status.lastError;
      const since = this.#status.unhealthySince;
      delete this.#status.unhealthySince;
      if (!was) {
        this.opts.onStatusChange?.(this.status);
        // The outage itself could not be recorded while it lasted; record it now.
        if (!recoveryRecorded) {
          this.eventBestEffort({
            type: "audit_store",
            reason: "recovered",
            detail: { unavailableSince: since?.toISOString(), recoveredAt: this.#clock.date().toISOString() },
          });
        }
      }
    } else {
      this.#status.healthy = false;
      this.#status.lastError = describeDbError(err);
      this.#status.unhealthySince ??= this.#clock.date();
      if (was) this.opts.onStatusChange?.(this.status);
    }
  }
}

/** A data or constraint error (SQLSTATE class 22 or 23): the store is up and refused this data. */
function isRowError(err: unknown): boolean {
  const e = err as { code?: unknown; cause?: { code?: unknown }; meta?: { code?: unknown } };
  const code = [e?.code, e?.cause?.code, e?.meta?.code].find((c) => typeof c === "string" && /^[0-9A-Z]{5}$/.test(c)) as string | undefined;
  return code !== undefined && (code.startsWith("22") || code.startsWith("23"));
}

/** A cheap upper-bound-ish size of an event's detail (events are small; never throws). */
function approximateSize(detail: Record<string, unknown>): number {
  try {
    return JSON.stringify(detail)?.length ?? 0;
  } catch {
    return 0;
  }
}

// One array per column, in the order of store/records.ts's columns (models Message and Event).
function messageArrays(rows: MessageRecord[]): unknown[] {
  return [
    rows.map((r) => r.sessionId),
    rows.map((r) => r.connection),
    rows.map((r) => r.direction),
    rows.map((r) => r.origin),
    rows.map((r) => r.kind),
    rows.map((r) => storableNullableText(r.jsonrpcId)),
    rows.map((r) => storableNullableText(r.method)),
    rows.map((r) => r.size),
    rows.map((r) => storableJson(r.payloadText ?? JSON.stringify(r.payload))),
    rows.map((r) => storableNullableText(r.subject)),
    rows.map((r) => r.at),
    rows.map((r) => (r.maskHits ? storableJson(JSON.stringify(r.maskHits)) : null)),
    rows.map((r) => storableNullableText(r.requestId)),
  ];
}

function eventArrays(rows: EventRecord[]): unknown[] {
  return [
    rows.map((e) => e.type),
    rows.map((e) => e.reason),
    rows.map((e) => e.sessionId ?? null),
    rows.map((e) => e.connection ?? null),
    rows.map((e) => storableNullableText(e.subject)),
    rows.map((e) => (e.detail ? storableJson(JSON.stringify(e.detail)) : null)),
    rows.map((e) => storableNullableText(e.requestId)),
  ];
}

function insertBatch(store: RecordStore, messages: MessageRecord[], events: EventRecord[]): Promise<unknown> {
  return insertRecords(store, messages.length ? messageArrays(messages) : null, events.length ? eventArrays(events) : null);
}

export function describeDbError(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e?.cause?.code ?? e?.code;
  const msg = (e?.message ?? String(err)).split("\n").filter(Boolean).slice(-1)[0] ?? "unknown error";
  return code ? `${code}: ${msg}`.slice(0, 300) : msg.slice(0, 300);
}
