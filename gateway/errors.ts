// The one catalogue of errors Countersign can return. Each has a stable code (tests and clients
// match on it), the HTTP status used when the error ends an HTTP exchange, the JSON-RPC error
// code used inside a session, and a message that says what is wrong and what to do.
// README.md lists them; keep the two in step.

export interface ErrorSpec {
  readonly http: number;
  readonly jsonrpc: number;
  readonly message: string;
}

export const ERRORS = {
  CS_ERR_PARSE: {
    http: 400, jsonrpc: -32700,
    message: "The request body is not valid JSON: send one JSON-RPC message or a batch as JSON.",
  },
  CS_ERR_INVALID_REQUEST: {
    http: 400, jsonrpc: -32600,
    message: "The body is JSON but not a JSON-RPC 2.0 message: each message needs \"jsonrpc\": \"2.0\" and a method, or an id with a result or an error.",
  },
  CS_ERR_BATCH_NOT_ALLOWED: {
    http: 400, jsonrpc: -32600,
    message: "JSON-RPC batches are not allowed by the negotiated protocol version: send messages one per request.",
  },
  CS_ERR_UNSUPPORTED_MEDIA_TYPE: {
    http: 415, jsonrpc: -32600,
    message: "The request's Content-Type must be application/json.",
  },
  CS_ERR_NOT_ACCEPTABLE: {
    http: 406, jsonrpc: -32600,
    message: "The Accept header must allow text/event-stream for a GET stream, and both application/json and text/event-stream for a POST (rank application/json higher with q-values to get JSON answers).",
  },
  CS_ERR_BODY_TOO_LARGE: {
    http: 413, jsonrpc: -32600,
    message: "The request body exceeds the gateway's limit (limits.requestBodyBytes): send a smaller message or raise the limit.",
  },
  CS_ERR_UNKNOWN_CONNECTION: {
    http: 404, jsonrpc: -32601,
    message: "No connection has this name: check the URL against the connections in the gateway's configuration.",
  },
  CS_ERR_SESSION_REQUIRED: {
    http: 400, jsonrpc: -32600,
    message: "This request needs an Mcp-Session-Id header: send initialize first and reuse the session id it returned.",
  },
  CS_ERR_UNKNOWN_SESSION: {
    http: 404, jsonrpc: -32001,
    message: "The session does not exist or has ended: start a new session with initialize.",
  },
  CS_ERR_SESSION_OWNER_GONE: {
    http: 404, jsonrpc: -32060,
    message: "The gateway replica that held this session is gone (stopped, crashed or unreachable), and its upstream session with it: start a new session with initialize.",
  },
  CS_ERR_RELAY_NOT_OWNER: {
    http: 404, jsonrpc: -32061,
    message: "A request relayed from another replica reached a replica that does not hold its session (requests are never relayed twice): the session is gone; start a new session with initialize.",
  },
  CS_ERR_RELAY_UNAUTHORIZED: {
    http: 401, jsonrpc: -32062,
    message: "The internal relay port accepts only requests signed with the replicas' shared secret (cluster.secret): check that every replica reads the same Secret and that clocks agree within 60 s.",
  },
  CS_ERR_UNSUPPORTED_PROTOCOL_VERSION: {
    http: 400, jsonrpc: -32600,
    message: "The MCP-Protocol-Version header names a version this gateway does not support.",
  },
  CS_ERR_STREAM_CONFLICT: {
    http: 409, jsonrpc: -32600,
    message: "This session already has an open GET stream: close it before opening another.",
  },
  CS_ERR_RESUME_UNAVAILABLE: {
    http: 410, jsonrpc: -32600,
    message: "The Last-Event-ID names no event this session's streams kept (unknown, or dropped at the session's event store bound): reissue the request instead of resuming.",
  },
  CS_ERR_REQUEST_CANCELLED: {
    http: 409, jsonrpc: -32800,
    message: "The client cancelled this request (notifications/cancelled): the gateway ends its stream with this answer; the upstream was told.",
  },
  CS_ERR_UNAUTHENTICATED: {
    http: 401, jsonrpc: -32020,
    message: "A valid bearer token is required: send `Authorization: Bearer <token>` from an accepted issuer, for this connection (the WWW-Authenticate header names the resource metadata).",
  },
  CS_ERR_RATE_LIMITED: {
    http: 429, jsonrpc: -32021,
    message: "Too many failed authentications from this address: wait (see Retry-After) and send a valid token.",
  },
  CS_ERR_CONNECTION_FORBIDDEN: {
    http: 403, jsonrpc: -32022,
    message: "Your identity is valid but not granted this connection: ask an administrator to add you to one of the groups it names.",
  },
  CS_ERR_TOOL_DENIED: {
    http: 403, jsonrpc: -32023,
    message: "Your identity may not call this tool on this connection: ask an administrator for a group that allows it.",
  },
  CS_ERR_HOST_NOT_ALLOWED: {
    http: 403, jsonrpc: -32025,
    message: "The request's Host header does not name this gateway (DNS rebinding protection): use the gateway's address, or add the name to server.allowedHosts.",
  },
  CS_ERR_ORIGIN_NOT_ALLOWED: {
    http: 403, jsonrpc: -32026,
    message: "Web pages from this Origin may not call the gateway's MCP endpoints: add the origin to server.allowedOrigins if its pages are trusted.",
  },
  CS_ERR_SESSION_FORBIDDEN: {
    http: 403, jsonrpc: -32024,
    message: "This session belongs to another identity: start your own session with initialize.",
  },
  CS_ERR_POLICY_BLOCKED: {
    http: 403, jsonrpc: -32030,
    message: "A Countersign rule blocks this call; the rule and its reason are named here. Change the call, or ask the rule's owners.",
  },
  CS_ERR_TOOL_DEFINITION_CHANGED: {
    http: 403, jsonrpc: -32070,
    message: "This tool's definition changed since it was pinned, so calls to it are blocked (pinning.onChange: block): an admin must review the change and re-pin it with `countersign tools pin <connection>`.",
  },
  CS_ERR_APPROVAL_UNAVAILABLE: {
    http: 503, jsonrpc: -32031,
    message: "This call needs an approval, but the gateway has no approval channel configured (approvals); nothing was forwarded.",
  },
  CS_ERR_ADMIN_DISABLED: {
    http: 404, jsonrpc: -32040,
    message: "The admin API is off: list the groups allowed to use it in admin.groups.",
  },
  CS_ERR_APPROVAL_PENDING: {
    http: 202, jsonrpc: -32032,
    message: "The call is held for an approval that has not been decided yet; retry the identical call after a decision.",
  },
  CS_ERR_APPROVAL_DENIED: {
    http: 403, jsonrpc: -32033,
    message: "The approval for this call was denied or expired; the reason and who decided are named here.",
  },
  CS_ERR_APPROVAL_NOT_FOUND: {
    http: 404, jsonrpc: -32050,
    message: "No approval request has this id: list the pending ones with `countersign approvals list`.",
  },
  CS_ERR_APPROVER_NO_EMAIL: {
    http: 403, jsonrpc: -32051,
    message: "The token carries no e-mail claim, and approvers are identified by e-mail (approvals.groups): use a token of a person with an e-mail address.",
  },
  CS_ERR_SELF_APPROVAL: {
    http: 403, jsonrpc: -32052,
    message: "Nobody decides on their own call (four-eyes rule, admins included): another approver must.",
  },
  CS_ERR_NOT_AN_APPROVER: {
    http: 403, jsonrpc: -32053,
    message: "You are not in the approver group of this request (approvals.groups, by e-mail): ask a member of the group named here.",
  },
  CS_ERR_APPROVAL_CLOSED: {
    http: 409, jsonrpc: -32054,
    message: "This request takes no more votes from you: it is already decided or expired, or you have already voted on it.",
  },
  CS_ERR_DENY_REASON_REQUIRED: {
    http: 400, jsonrpc: -32055,
    message: "A denial needs a reason, which the requester sees: send {\"reason\": \"…\"} (the CLI: --reason).",
  },
  CS_ERR_JUSTIFICATION_REQUIRED: {
    http: 400, jsonrpc: -32034,
    message: "The rule that holds this call needs a justification: send it in _meta[\"countersign/justification\"] or the X-Countersign-Justification header.",
  },
  CS_ERR_TASK_NOT_FOUND: {
    http: 404, jsonrpc: -32602,
    message: "No task with this id is yours on this connection (tasks are kept for their ttl, by the gateway process that created them): check the taskId, or call again.",
  },
  CS_ERR_TASK_FINISHED: {
    http: 409, jsonrpc: -32602,
    message: "The task has already finished (completed, failed or cancelled), so it cannot be cancelled: read its outcome with tasks/result.",
  },
  CS_ERR_TASK_LIMIT: {
    http: 429, jsonrpc: -32035,
    message: "You have too many tasks on this gateway (finished ones count until their ttl ends): read or cancel some, or call without a task.",
  },
  CS_ERR_AUDIT_UNAVAILABLE: {
    http: 503, jsonrpc: -32010,
    message: "The audit store is unavailable, so nothing was forwarded or delivered (the gateway fails closed): retry when the database is back.",
  },
  CS_ERR_SESSION_LIMIT: {
    http: 503, jsonrpc: -32011,
    message: "The connection has reached its limit of concurrent sessions (connections[].maxSessions): close idle sessions or raise the limit.",
  },
  CS_ERR_UPSTREAM_UNAVAILABLE: {
    http: 502, jsonrpc: -32012,
    message: "The upstream MCP server could not be started or reached: check its command or URL and its log.",
  },
  CS_ERR_UPSTREAM_EXITED: {
    http: 502, jsonrpc: -32013,
    message: "The upstream MCP server ended before answering: start a new session; the gateway log has the server's last output.",
  },
  CS_ERR_UPSTREAM_HTTP: {
    http: 502, jsonrpc: -32014,
    message: "The upstream MCP server answered with an HTTP error instead of a JSON-RPC message.",
  },
  CS_ERR_UPSTREAM_STREAM_LOST: {
    http: 502, jsonrpc: -32019,
    message: "The upstream closed the stream that was to carry this call's answer and it could not be resumed (GET with Last-Event-ID) within the gateway's bounds: the upstream may have run the call; check before calling again.",
  },
  CS_ERR_UPSTREAM_RESPONSE_TOO_LARGE: {
    http: 502, jsonrpc: -32015,
    message: "The upstream's message exceeds the gateway's limit (limits.upstreamMessageBytes): ask for less data or raise the limit.",
  },
  CS_ERR_UPSTREAM_TIMEOUT: {
    http: 504, jsonrpc: -32016,
    message: "The upstream MCP server did not answer in time (limits.upstreamTimeoutMs).",
  },
  CS_ERR_NOT_BRIDGEABLE: {
    http: 501, jsonrpc: -32019,
    message: "The upstream speaks only MCP 2026-07-28, which has no faithful form for this request of a 2025-era session (named in the detail: the upstream's tasks, an input request the client cannot take, more resource subscriptions than a session may hold): use a 2026-07-28 client, or do without it.",
  },
  CS_ERR_UPSTREAM_BUSY: {
    http: 503, jsonrpc: -32018,
    message: "The shared upstream server process has too many requests in flight: retry shortly.",
  },
  CS_ERR_SHUTTING_DOWN: {
    http: 503, jsonrpc: -32017,
    message: "The gateway is shutting down: retry; another replica or the restarted gateway will answer.",
  },
  CS_ERR_NOT_FOUND: {
    http: 404, jsonrpc: -32601,
    message: "No such endpoint: MCP clients connect to /mcp/<connection> (Streamable HTTP) or /sse/<connection> (legacy SSE).",
  },
  CS_ERR_INTERNAL: {
    http: 500, jsonrpc: -32603,
    message: "The gateway failed unexpectedly; nothing was forwarded. The gateway log has the details under this request id.",
  },
  // Masking refusals: the message could not be masked safely, so it does not pass.
  CS_ERR_MESSAGE_TOO_COMPLEX: {
    http: 502, jsonrpc: -32080,
    message: "The message is nested deeper or holds more values than masking checks (256 levels, 1,000,000 values), so it was not delivered: ask for flatter or smaller data.",
  },
  CS_ERR_SECRET_IN_PROTOCOL_FIELD: {
    http: 502, jsonrpc: -32081,
    message: "A credential was found in a protocol field (an id, progress token, cursor, request state, task id, URI or reserved _meta key), which masking must not rewrite, so the message was not delivered.",
  },
  // Hardening: the four-eyes rule by identity (gateway/approvals/four-eyes.ts).
  CS_ERR_APPROVER_UNPROVEN: {
    http: 403, jsonrpc: -32056,
    message: "Your vote cannot be shown to come from someone other than the requester (their token carries no e-mail to compare): decide with a token of the requester's identity provider, in the console or with `countersign approvals approve <id>` (or deny).",
  },
  // The data path's own bounds (pipeline).
  CS_ERR_TASK_RESULT_NOT_KEPT: {
    http: 507, jsonrpc: -32082,
    message: "The task's result was too large to keep for tasks/result within the gateway's budget for task results: it is in the audit record; call again without a task to receive it directly.",
  },
  CS_ERR_UPSTREAM_REQUEST_LIMIT: {
    http: 429, jsonrpc: -32083,
    message: "The upstream sent the client more requests than the gateway relays (limits.notificationsPerSecond, and a cap on unanswered ones): this request was not delivered.",
  },
  CS_ERR_TOO_MANY_IN_FLIGHT: {
    http: 429, jsonrpc: -32090,
    message: "This session already has the most requests in flight that the gateway keeps per session: wait for their answers, then send again.",
  },
  CS_ERR_SESSION_QUOTA: {
    http: 503, jsonrpc: -32091,
    message: "You already hold the most sessions one identity may open on this connection (maxSessionsPerIdentity), and none of them is idle: close one (HTTP DELETE, or `countersign sessions close`) and retry.",
  },
  // MCP 2026-07-28 (stateless requests on /mcp/<connection>): the spec's own codes, with the
  // spec's HTTP statuses. Only these carry a code from the range the spec reserves (-32020 to
  // -32099) to a 2026 caller: the gateway's other codes in that range are moved out of it for
  // such callers (see gateway/mcp/front/stateless/codes.ts).
  CS_ERR_INVALID_ENVELOPE: {
    http: 400, jsonrpc: -32602,
    message: "The request's params._meta is not a valid MCP 2026-07-28 envelope: send io.modelcontextprotocol/protocolVersion and io.modelcontextprotocol/clientCapabilities (and clientInfo) with every request.",
  },
  CS_ERR_PROTOCOL_VERSION_UNSUPPORTED: {
    http: 400, jsonrpc: -32022,
    message: "The gateway does not serve this protocol version statelessly: retry with a version from error.data.supported (2025-era versions start a session with initialize).",
  },
  CS_ERR_HEADER_MISMATCH: {
    http: 400, jsonrpc: -32020,
    message: "The MCP-Protocol-Version, Mcp-Method or Mcp-Name header is missing, malformed, or does not match the request body: send headers that mirror the body.",
  },
  CS_ERR_METHOD_NOT_FOUND: {
    http: 404, jsonrpc: -32601,
    message: "This method does not exist in MCP 2026-07-28 or is not served statelessly by the gateway (initialize, ping, logging/setLevel, resources/subscribe and tasks/* are 2025-era): call server/discover, or use a session.",
  },
  CS_ERR_MISSING_CLIENT_CAPABILITY: {
    http: 400, jsonrpc: -32021,
    message: "This request needs a client capability the request's envelope does not declare (named in error.data.requiredCapabilities): declare it in io.modelcontextprotocol/clientCapabilities.",
  },
  // A held call's requestState (MCP 2026-07-28 multi-round-trip requests).
  CS_ERR_REQUEST_STATE_INVALID: {
    http: 400, jsonrpc: -32602,
    message: "The requestState is not one the gateway issued for this caller, connection, tool and arguments, or it has expired: send the call again without requestState.",
  },
  CS_ERR_REQUEST_STATE_REPLAYED: {
    http: 409, jsonrpc: -32602,
    message: "The requestState has already been used: an approval covers one call, and a round of input requests is answered once; send the call again without requestState to ask anew.",
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/**
 * What an error is about, as fields rather than prose: clients, the audit record and tests read
 * them without parsing the message.
 */
export interface ErrorFields {
  /** The policy or pinning rule that decided (its id; "(default)" for the connection's default). */
  rule?: string | undefined;
  /** The connection the error is about, when it is a configured one. */
  connection?: string | undefined;
  /** The configuration key that sets the bound or the behaviour, e.g. `limits.upstreamTimeoutMs`. */
  keyPath?: string | undefined;
}

export interface ErrorOptions extends ErrorFields {
  /** HTTP headers the reply carries when this error ends an HTTP exchange (WWW-Authenticate, Retry-After). */
  headers?: Record<string, string> | undefined;
  /** The error this one stands for (kept for the log, with its stack; never sent to the caller). */
  cause?: unknown;
  /** Fields the protocol defines for this error's `data` (e.g. `supported` for -32022). */
  data?: Record<string, unknown> | undefined;
}

/** The `data` member of a Countersign JSON-RPC error. */
export interface ErrorData extends ErrorFields {
  code: ErrorCode;
  detail?: string;
}

/** An error with a catalogue code; `detail` adds the specific thing that was wrong. */
export class CountersignError extends Error {
  readonly code: ErrorCode;
  readonly http: number;
  readonly jsonrpc: number;
  readonly detail?: string;
  readonly rule?: string;
  readonly connection?: string;
  readonly keyPath?: string;
  readonly headers: Readonly<Record<string, string>>;
  /** Fields the protocol defines for this error's `data` (e.g. `supported` for -32022), beside `code` and `detail`. */
  readonly data?: Record<string, unknown>;

  constructor(code: ErrorCode, detail?: string, opts: ErrorOptions = {}) {
    const spec = ERRORS[code];
    super(detail ? `${spec.message} (${detail})` : spec.message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "CountersignError";
    this.code = code;
    this.http = spec.http;
    this.jsonrpc = spec.jsonrpc;
    if (detail !== undefined) this.detail = detail;
    if (opts.rule !== undefined) this.rule = opts.rule;
    if (opts.connection !== undefined) this.connection = opts.connection;
    if (opts.keyPath !== undefined) this.keyPath = opts.keyPath;
    if (opts.data !== undefined) this.data = opts.data;
    this.headers = opts.headers ?? {};
  }

  /** The structured fields that are set. */
  get fields(): ErrorFields {
    const f: ErrorFields = {};
    if (this.rule !== undefined) f.rule = this.rule;
    if (this.connection !== undefined) f.connection = this.connection;
    if (this.keyPath !== undefined) f.keyPath = this.keyPath;
    return f;
  }

  /** The `error` member of a JSON-RPC error response: the protocol's own fields first, ours win on a clash. */
  toJsonRpcError(): { code: number; message: string; data: ErrorData & Record<string, unknown> } {
    const data: ErrorData = { code: this.code };
    if (this.detail !== undefined) data.detail = this.detail;
    return { code: this.jsonrpc, message: this.message, data: { ...this.data, ...data, ...this.fields } };
  }
}

/** Fastify's own errors, each as the catalogue code a client receives instead. */
const FRAMEWORK_ERRORS: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: "CS_ERR_BODY_TOO_LARGE",
  FST_ERR_CTP_INVALID_MEDIA_TYPE: "CS_ERR_UNSUPPORTED_MEDIA_TYPE",
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: "CS_ERR_INVALID_REQUEST",
  FST_ERR_CTP_EMPTY_JSON_BODY: "CS_ERR_PARSE",
  FST_ERR_CTP_INVALID_JSON_BODY: "CS_ERR_PARSE",
};

/** What a framework error carries that the mapping reads. */
interface FrameworkError {
  code?: unknown;
  statusCode?: unknown;
}

/**
 * Anything thrown, as a catalogue error: a CountersignError as it is; a Fastify error as its
 * catalogue code; anything else as `fallback`. An unexpected error's text is never sent to the
 * caller (it may name SQL, paths or hosts): with CS_ERR_INTERNAL it is only the `cause`, for the
 * log; with another fallback (the audit store, the upstream) its first line is the detail.
 */
export function asCountersignError(err: unknown, fallback: ErrorCode = "CS_ERR_INTERNAL"): CountersignError {
  if (err instanceof CountersignError) return err;
  const fw = (err ?? {}) as FrameworkError;
  const mapped = typeof fw.code === "string" ? FRAMEWORK_ERRORS[fw.code] : undefined;
  if (mapped) return new CountersignError(mapped, undefined, { cause: err, ...(mapped === "CS_ERR_BODY_TOO_LARGE" ? { keyPath: "limits.requestBodyBytes" } : {}) });
  if (fw.statusCode === 415) return new CountersignError("CS_ERR_UNSUPPORTED_MEDIA_TYPE", undefined, { cause: err });
  if (fallback === "CS_ERR_INTERNAL") return new CountersignError(fallback, undefined, { cause: err });
  const text = err instanceof Error ? err.message : String(err);
  return new CountersignError(fallback, text.split("\n").filter(Boolean).pop()?.slice(0, 500), { cause: err });
}

export function jsonRpcErrorResponse(id: string | number | null, err: CountersignError, era: ProtocolEra = "session") {
  const error = err.toJsonRpcError();
  return { jsonrpc: "2.0" as const, id, error: era === "stateless" ? { ...error, code: statelessCode(error.code, err.code) } : error };
}

/** Which protocol era the caller speaks: 2025-era sessions, or MCP 2026-07-28 stateless requests. */
export type ProtocolEra = "session" | "stateless";

/** The gateway's codes whose number carries the spec's 2026-07-28 meaning (the rest of -32020…-32099 is the spec's alone). */
const SPEC_CODES: ReadonlySet<string> = new Set(["CS_ERR_HEADER_MISMATCH", "CS_ERR_MISSING_CLIENT_CAPABILITY", "CS_ERR_PROTOCOL_VERSION_UNSUPPORTED"]);

/**
 * A JSON-RPC error code as a 2026-07-28 caller gets it: a gateway code in -32020…-32099 that the
 * spec does not define is moved 1000 down (-32030 → -33030), out of the range the spec reserves;
 * `error.data.code` still names the CS_ERR_* code. (CS_ERR_UNAUTHENTICATED is -32020 for a session
 * and must never be read as the spec's HeaderMismatch.)
 */
export function statelessCode(code: number, csCode: unknown): number {
  const ours = typeof csCode === "string" && csCode.startsWith("CS_ERR_");
  if (ours && !SPEC_CODES.has(csCode) && code <= -32020 && code >= -32099) return code - 1000;
  return code;
}

export interface ErrorReplyOptions {
  /** The JSON-RPC id the error answers (null when the request could not be read). */
  id?: string | number | null | undefined;
  /** Headers added to the error's own (e.g. `connection: close` before a body is read). */
  headers?: Record<string, string> | undefined;
  /** The HTTP request id: an internal error names it, so the caller can quote it. */
  httpRequestId?: string | undefined;
  /** The caller's protocol era: a 2026-07-28 caller gets the codes that do not clash with the spec's. */
  era?: ProtocolEra | undefined;
}

export interface ErrorReply {
  error: CountersignError;
  status: number;
  headers: Record<string, string>;
  body: ReturnType<typeof jsonRpcErrorResponse>;
}

/**
 * The one mapping from an error to what the caller receives: the HTTP status, the headers and
 * a JSON-RPC error body with the catalogue code. Every place that answers with an error goes
 * through here (Fastify routes and hooks, the raw listeners, the data path's JSON-RPC answers).
 */
export function errorReply(err: unknown, opts: ErrorReplyOptions = {}): ErrorReply {
  let e = asCountersignError(err);
  if (e.code === "CS_ERR_INTERNAL" && e.detail === undefined && opts.httpRequestId) {
    e = new CountersignError("CS_ERR_INTERNAL", `request ${opts.httpRequestId}`, { cause: e.cause ?? e });
  }
  const headers: Record<string, string> = { "content-type": "application/json; charset=utf-8", ...e.headers, ...opts.headers };
  if (e.code === "CS_ERR_RATE_LIMITED" && !Object.keys(headers).some((h) => h.toLowerCase() === "retry-after")) headers["retry-after"] = "1";
  return { error: e, status: e.http, headers, body: jsonRpcErrorResponse(opts.id ?? null, e, opts.era) };
}

/** The part of a Fastify reply the mapping uses (kept structural: this module does not import Fastify). */
interface ReplyLike {
  request: { id: string; log: { error(obj: object, msg: string): void } };
  code(status: number): ReplyLike;
  headers(h: Record<string, string>): ReplyLike;
  send(body: unknown): ReplyLike;
}

/**
 * Answers a Fastify request with an error. An unexpected error (CS_ERR_INTERNAL) is logged here
 * with its stack and the request id it names.
 */
export function sendError<R extends ReplyLike>(reply: R, err: unknown, opts: Omit<ErrorReplyOptions, "httpRequestId"> = {}): R {
  const r = errorReply(err, { ...opts, httpRequestId: reply.request.id });
  if (r.error.code === "CS_ERR_INTERNAL") logUnexpected(reply.request.log, r.error);
  return reply.code(r.status).headers(r.headers).send(r.body) as R;
}

/** The same answer on a plain Node response (the listeners that are not Fastify routes). */
export function writeError(res: { writeHead(status: number, headers: Record<string, string>): unknown; end(body: string): unknown }, err: unknown, opts: ErrorReplyOptions = {}): void {
  const r = errorReply(err, opts);
  res.writeHead(r.status, r.headers);
  res.end(JSON.stringify(r.body));
}

/** Logs an unexpected error with the error object it stands for (stack kept). */
export function logUnexpected(log: { error(obj: object, msg: string): void }, e: CountersignError): void {
  log.error({ err: e.cause instanceof Error ? e.cause : e, code: e.code }, "unexpected error");
}
