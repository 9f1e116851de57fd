// SSE event ids and the events a session keeps for resumption (Streamable HTTP, 2025-03-26 and
// later): every event the gateway writes on a session's stream gets an id, and a client whose
// stream dropped reconnects with GET and `Last-Event-ID` to receive what it missed on that stream.
//
// An id is `<stream>.<seq>`: the stream part is 128 random bits drawn when the stream opens, the
// sequence counts that stream's events. The store belongs to one session and is reached only
// through that session (its id and its owner are checked first), so an id cannot name another
// session's events, and the stream part cannot be guessed into another stream of the same session.
//
// Bound (per session): EVENT_STORE_MAX_EVENTS events and EVENT_STORE_MAX_BYTES bytes of event
// data. Past either, the oldest events are dropped first. A resumption that would need a dropped
// event is refused (CS_ERR_RESUME_UNAVAILABLE, recorded), never replayed with a gap.
import { randomBytes } from "node:crypto";
import type { SseWriter } from "./sse.js";

/**
 * The `retry` a priming event carries (SEP-1699): how long a client waits before resuming a
 * dropped stream with Last-Event-ID. One second: a dropped stream's answers come back promptly.
 */
const RECONNECT_AFTER_MS = 1000;

/** Events a session keeps for Last-Event-ID resumption, at most. */
export const EVENT_STORE_MAX_EVENTS = 1000;
/** Bytes of event data a session keeps for resumption, at most (an event larger than it is not kept). */
export const EVENT_STORE_MAX_BYTES = 4 * 1024 * 1024;

const EVENT_ID = /^([A-Za-z0-9_-]{22})\.([1-9][0-9]{0,14})$/;

interface StoredEvent {
  stream: string;
  seq: number;
  data: string;
}

interface StreamState {
  /** The next sequence number. */
  next: number;
  /** The highest sequence number dropped at the bound (0: none dropped). */
  dropped: number;
  /** Events of this stream still kept. */
  kept: number;
  ended: boolean;
}

export type Replay =
  | { ok: true; stream: string; events: Array<{ id: string; data: string }> }
  | { ok: false; reason: "unknown" | "dropped" };

export class SessionEventStore {
  readonly #events: StoredEvent[] = [];
  #bytes = 0;
  readonly #streams = new Map<string, StreamState>();

  constructor(
    private readonly maxEvents = EVENT_STORE_MAX_EVENTS,
    private readonly maxBytes = EVENT_STORE_MAX_BYTES,
  ) {}

  /** A new stream, its id unguessable. */
  open(): string {
    const id = randomBytes(16).toString("base64url");
    this.#streams.set(id, { next: 1, dropped: 0, kept: 0, ended: false });
    return id;
  }

  /** An id for an event with no message (a priming event): resuming after it replays what follows. */
  mark(stream: string): string {
    const s = this.#streams.get(stream);
    if (!s) throw new Error("unknown stream");
    return `${stream}.${s.next++}`;
  }

  /** Keeps one event's data; returns its id. */
  append(stream: string, data: string): string {
    const s = this.#streams.get(stream);
    if (!s) throw new Error("unknown stream");
    const seq = s.next++;
    if (data.length > this.maxBytes) {
      s.dropped = seq; // too large to keep: resuming before it is refused
    } else {
      this.#events.push({ stream, seq, data });
      this.#bytes += data.length;
      s.kept++;
      while (this.#events.length > this.maxEvents || this.#bytes > this.maxBytes) this.#evictOldest();
    }
    return `${stream}.${seq}`;
  }

  /** The stream has ended: it is forgotten once its last kept event is dropped. */
  end(stream: string): void {
    const s = this.#streams.get(stream);
    if (!s) return;
    s.ended = true;
    if (s.kept === 0) this.#streams.delete(stream);
  }

  /** The events after `lastEventId` on its stream, or why there are none to give. */
  after(lastEventId: string): Replay {
    const m = EVENT_ID.exec(lastEventId);
    const s = m ? this.#streams.get(m[1]!) : undefined;
    if (!m || !s) return { ok: false, reason: "unknown" };
    const seq = Number(m[2]);
    if (seq >= s.next) return { ok: false, reason: "unknown" };
    if (seq < s.dropped) return { ok: false, reason: "dropped" };
    const events = this.#events.filter((e) => e.stream === m[1] && e.seq > seq).map((e) => ({ id: `${e.stream}.${e.seq}`, data: e.data }));
    return { ok: true, stream: m[1]!, events };
  }

  get size(): { events: number; bytes: number; streams: number } {
    return { events: this.#events.length, bytes: this.#bytes, streams: this.#streams.size };
  }

  #evictOldest(): void {
    const e = this.#events.shift();
    if (!e) return;
    this.#bytes -= e.data.length;
    const s = this.#streams.get(e.stream);
    if (!s) return;
    s.dropped = Math.max(s.dropped, e.seq);
    s.kept--;
    if (s.kept === 0 && s.ended) this.#streams.delete(e.stream);
  }
}

/**
 * One logical SSE stream of a session: its events are kept in the store and written to the HTTP
 * response carrying it, if one is open. When that response drops, the stream lives on (its events
 * kept) until a GET with Last-Event-ID carries it again, or until it ends.
 */
export class EventStream {
  readonly id: string;
  #writer: SseWriter | undefined;
  #ended = false;

  constructor(
    private readonly store: SessionEventStore,
    /** Whether to send a priming event (an id, no data) when a response starts carrying the stream (2025-11-25). */
    private readonly priming: () => boolean,
  ) {
    this.id = store.open();
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** An open HTTP response carries the stream now. */
  get live(): boolean {
    return this.#writer !== undefined && !this.#writer.closed;
  }

  /** Carries the stream on `writer` from now on, after replaying `replay` (events the client missed). */
  attach(writer: SseWriter, replay: Array<{ id: string; data: string }> = []): void {
    this.#writer = writer;
    if (replay.length === 0 && this.priming()) writer.send("", "message", this.store.mark(this.id), RECONNECT_AFTER_MS);
    for (const e of replay) writer.send(e.data, "message", e.id);
    if (this.#ended) writer.end();
  }

  /** Keeps the event and writes it if a response carries the stream. True: kept or written. */
  send(data: string): boolean {
    if (this.#ended) return false;
    const id = this.store.append(this.id, data);
    if (this.live) this.#writer!.send(data, "message", id);
    return true;
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.store.end(this.id);
    this.#writer?.end();
  }
}
