// Records refused input (malformed bodies, unknown sessions, bad tokens…) without letting a flood
// of bad requests become a flood of database writes: up to `perSecond` of each reason are recorded
// one by one, the rest are counted and recorded as one aggregated event per reason per second.
// The budget is per reason, so a flood of one kind of refusal cannot hide another kind (a refresh
// token replay among a burst of junk registrations is still recorded with its detail); reasons
// are a closed set, so the budgets are bounded by it.
import type { ErrorCode } from "../errors.js";
import type { Recorder } from "./recorder.js";
import type { EventReason } from "./events.js";

/** Distinct (reason, connection) counters kept per second; beyond it a refusal is counted under its reason alone. */
const MAX_SUPPRESSED_KEYS = 1_000;

type ThrottledType = "message_rejected" | "auth_failed" | "access_denied" | "oauth";

export class ThrottledEvents<T extends ThrottledType> {
  /** Records made one by one this second, per reason. */
  #spent = new Map<string, number>();
  #suppressed = new Map<string, number>();
  #timer: NodeJS.Timeout;

  constructor(private readonly recorder: Recorder, private readonly type: T, private readonly perSecond = 20) {
    this.#timer = setInterval(() => this.#tick(), 1000);
    this.#timer.unref();
  }

  record(
    reason: EventReason<T>,
    where: { connection?: string | null; sessionId?: string | null; subject?: string | null; requestId?: string | null },
    detail: Record<string, unknown>,
  ): void {
    const spent = this.#spent.get(reason) ?? 0;
    if (spent < this.perSecond) {
      this.#spent.set(reason, spent + 1);
      this.recorder.eventBestEffort({
        type: this.type,
        reason,
        connection: where.connection ?? null,
        sessionId: where.sessionId ?? null,
        subject: where.subject ?? null,
        requestId: where.requestId ?? null,
        detail,
      });
      return;
    }
    // The connection name may be the caller's own text (an unknown connection): past the bound, counted without it.
    let key = `${reason}\u0000${where.connection ?? ""}`;
    if (!this.#suppressed.has(key) && this.#suppressed.size >= MAX_SUPPRESSED_KEYS) key = `${reason}\u0000`;
    this.#suppressed.set(key, (this.#suppressed.get(key) ?? 0) + 1);
  }

  #tick(): void {
    this.#spent.clear();
    for (const [key, count] of this.#suppressed) {
      const [reason, connection] = key.split("\u0000") as [EventReason<T>, string];
      this.recorder.eventBestEffort({ type: this.type, reason, connection: connection || null, detail: { aggregated: true, count, windowSeconds: 1 } });
    }
    this.#suppressed.clear();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#tick();
  }
}

/** The rejection reason recorded for a refused request's error code. */
const REASON_OF_ERROR: Partial<Record<ErrorCode, EventReason<"message_rejected">>> = {
  CS_ERR_PARSE: "parse_error",
  CS_ERR_INVALID_REQUEST: "invalid_jsonrpc",
  CS_ERR_BODY_TOO_LARGE: "body_too_large",
  CS_ERR_UNKNOWN_SESSION: "unknown_session",
  CS_ERR_BATCH_NOT_ALLOWED: "batch_not_allowed",
  CS_ERR_UNKNOWN_CONNECTION: "unknown_connection",
  CS_ERR_SESSION_REQUIRED: "session_required",
  CS_ERR_UNSUPPORTED_MEDIA_TYPE: "unsupported_media_type",
  CS_ERR_UNSUPPORTED_PROTOCOL_VERSION: "unsupported_protocol_version",
  CS_ERR_NOT_ACCEPTABLE: "not_acceptable",
  CS_ERR_STREAM_CONFLICT: "stream_conflict",
  CS_ERR_RESUME_UNAVAILABLE: "resume_unavailable",
  CS_ERR_SESSION_LIMIT: "session_limit",
  CS_ERR_RELAY_UNAUTHORIZED: "relay_unauthorized",
  CS_ERR_RELAY_NOT_OWNER: "relay_not_owner",
  CS_ERR_HOST_NOT_ALLOWED: "host_not_allowed",
  CS_ERR_ORIGIN_NOT_ALLOWED: "origin_not_allowed",
  CS_ERR_INVALID_ENVELOPE: "invalid_envelope",
  CS_ERR_PROTOCOL_VERSION_UNSUPPORTED: "unsupported_protocol_version",
  CS_ERR_HEADER_MISMATCH: "header_mismatch",
  CS_ERR_METHOD_NOT_FOUND: "method_not_found",
  CS_ERR_MISSING_CLIENT_CAPABILITY: "missing_client_capability",
  CS_ERR_REQUEST_STATE_INVALID: "request_state_invalid",
  CS_ERR_REQUEST_STATE_REPLAYED: "request_state_replayed",
};

/** Rejected messages (the fronts' bad input). */
export class RejectionLog extends ThrottledEvents<"message_rejected"> {
  constructor(recorder: Recorder, perSecond = 20) {
    super(recorder, "message_rejected", perSecond);
  }

  /** Records a refused request by its error code (codes that are not bad input are not recorded here). */
  recordError(code: ErrorCode, where: { connection?: string | null; sessionId?: string | null; subject?: string | null; requestId?: string | null }, detail: Record<string, unknown>): void {
    const reason = REASON_OF_ERROR[code];
    if (reason) this.record(reason, where, detail);
  }
}
