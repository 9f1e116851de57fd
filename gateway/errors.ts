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
  CS_ERR_METHOD_NOT_ALLOWED: {
    http: 405, jsonrpc: -32600,
    message: "This HTTP method is not supported on this endpoint.",
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
  CS_ERR_UPSTREAM_RESPONSE_TOO_LARGE: {
    http: 502, jsonrpc: -32015,
    message: "The upstream's message exceeds the gateway's limit (limits.upstreamMessageBytes): ask for less data or raise the limit.",
  },
  CS_ERR_UPSTREAM_TIMEOUT: {
    http: 504, jsonrpc: -32016,
    message: "The upstream MCP server did not answer in time (limits.upstreamTimeoutMs).",
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
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** An error with a catalogue code; `detail` adds the specific thing that was wrong. */
export class CountersignError extends Error {
  readonly code: ErrorCode;
  readonly http: number;
  readonly jsonrpc: number;
  readonly detail?: string;

  constructor(code: ErrorCode, detail?: string) {
    const spec = ERRORS[code];
    super(detail ? `${spec.message} (${detail})` : spec.message);
    this.name = "CountersignError";
    this.code = code;
    this.http = spec.http;
    this.jsonrpc = spec.jsonrpc;
    if (detail !== undefined) this.detail = detail;
  }

  /** The `error` member of a JSON-RPC error response. */
  toJsonRpcError(): { code: number; message: string; data: { code: ErrorCode; detail?: string } } {
    return {
      code: this.jsonrpc,
      message: this.message,
      data: this.detail === undefined ? { code: this.code } : { code: this.code, detail: this.detail },
    };
  }
}

export function jsonRpcErrorResponse(id: string | number | null, err: CountersignError) {
  return { jsonrpc: "2.0" as const, id, error: err.toJsonRpcError() };
}
