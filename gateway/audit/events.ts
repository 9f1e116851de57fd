// The catalogue of recorded events: every decision and state change the gateway records has one
// of these types and one of its reason codes. The evidence digest reads events by these names;
// add to the catalogue, never rename. README.md ("Recorded events") lists them.

export const EVENT_TYPES = {
  /** stateless_bridge: the gateway opened an upstream session for a 2026-07-28 (stateless) caller. */
  session_opened: ["initialize", "sse_connect", "stateless_bridge"],
  session_closed: [
    "client_delete", "client_disconnect", "idle_timeout", "upstream_exited", "upstream_closed",
    "gateway_shutdown", "initialize_failed", "connection_removed",
    /** Closed by another replica: the session's owner stopped reporting (crashed); detail: ownerInstanceId. */
    "owner_gone",
    /** The least recently used idle session of an identity at its quota or at the connection's cap, closed to admit its new one. */
    "evicted_idle",
    /** Closed by an administrator (`countersign sessions close`, POST /admin/sessions/close). */
    "admin_close",
    /** The client stopped reading its stream and its unread bytes passed the budget (limits.clientBufferBytes). */
    "client_too_slow",
  ],
  upstream_started: ["spawned", "connected"],
  upstream_failed: ["spawn_failed", "connect_failed", "crash_loop_backoff", "exited", "http_error"],
  message_rejected: [
    "parse_error", "invalid_jsonrpc", "body_too_large", "unknown_session", "batch_not_allowed",
    "upstream_message_too_large", "upstream_invalid_json", "unknown_response_id", "upstream_flood",
    "unsupported_media_type", "unknown_connection", "session_required", "unsupported_protocol_version",
    "not_acceptable", "stream_conflict", "session_limit",
    /** A GET with a Last-Event-ID that names no kept event of the session (unknown, or dropped at the event store's bound). */
    "resume_unavailable",
    /** The upstream sent the client more requests than the gateway relays (rate or unanswered cap). */
    "upstream_request_limit",
    /** A tools/call, resources/read or prompts/get sent as a notification that policy did not allow. */
    "governed_notification",
    /** The internal relay port refused a request not signed with the replicas' shared secret. */
    "relay_unauthorized",
    /** A relayed request reached a replica that does not hold its session. */
    "relay_not_owner",
    /** A request to an MCP front whose Host does not name the gateway (DNS rebinding), or from a page of a foreign Origin. */
    "host_not_allowed",
    "origin_not_allowed",
    /** MCP 2026-07-28 stateless requests refused by the validation ladder (gateway/mcp/front/stateless/ladder.ts). */
    "invalid_envelope", "header_mismatch", "method_not_found", "missing_client_capability",
    /** A held call's requestState that fails its seal or binding, or names an approval already used. */
    "request_state_invalid", "request_state_replayed",
  ],
  message_undeliverable: ["client_stream_closed", "no_stream", "client_too_slow", "backlog_full"],
  audit_store: ["unavailable", "recovered"],
  auth_failed: [
    "missing_token", "malformed_token", "expired", "not_yet_valid", "wrong_issuer", "wrong_audience",
    "bad_signature", "unknown_key", "algorithm_not_allowed", "issuer_unavailable", "rate_limited",
  ],
  unmasked_delivery: ["role_exemption"],
  /** Pseudonyms a caller sent back were restored to the originals before policy and forwarding (gateway/masking/restore); detail: count, method. Never the values. */
  pseudonyms_restored: ["request"],
  policy_decision: ["allow", "block", "require_approval", "shadow_block", "shadow_require_approval"],
  access_denied: ["connection_not_granted", "tool_denied", "session_identity_mismatch"],
  gateway: ["started", "stopped"],
  /** rejected: the file is invalid; refused: valid, but it changes keys read only at start (detail.restartRequired). */
  config_changed: ["applied", "rejected", "refused"],
  /** An administrator acted on the running gateway through the admin API; detail: by, target, and the outcome. */
  admin_action: ["sessions_closed"],
  /** A weekly evidence digest was generated, signed and stored (gateway/evidence); detail: week, timeZone, digestId, sha256, keyId. */
  digest_generated: ["scheduled", "on_demand"],
  /** A digest reached the managers' Slack channel, or could not; detail: week, digestId, channel, ts or error. */
  digest_posted: ["posted", "failed"],
  /** Audit records deleted by retention (audit.retentionDays); detail: throughSequence, checkpointId, deleted. */
  audit_retention: ["purged"],
  approval: [
    "requested", "vote", "approved", "denied", "expired", "self_approval_refused", "unauthorized_click",
    "already_voted", "already_decided", "duplicate_action", "reminder", "escalated", "notified", "notify_failed", "forwarded",
    "slack_request_refused", "approver_unproven",
  ],
  /** Tool pinning (gateway/pinning). first_sight: the tools a tools/list showed for the first time (detail: tools [{tool, hash}]); repinned: an admin accepted a changed definition (detail: by, tool, oldHash, newHash, diff). */
  tool_pinned: ["first_sight", "repinned"],
  /** detected: once per (connection, tool, pinned hash, new hash), with oldHash, newHash, diff, definition; call_*: each call to a tool whose definition differs from its pin (ruleId tool-pin:<tool>, why). */
  tool_definition_changed: ["detected", "call_allowed", "call_held", "call_blocked"],
  /** The web console (gateway/console): subject is the person logged in; detail: issuer, email, via, and what was done (requestId, sessionId, connection, tool). */
  console: [
    "login", "login_refused", "logout", "csrf_refused", "forbidden", "approval_decided", "approval_refused",
    "session_viewed", "session_exported", "chain_verified", "tools_repinned",
    /** A login's `next` led off the console (another site, //host, javascript:): sent to the console's home instead. */
    "redirect_refused",
  ],
  /** The gateway as OAuth authorization server (gateway/oauth): subject is the person (when known); detail: clientId, resource, remoteAddress, why. Every refusal is one of the *_refused reasons. */
  oauth: [
    "client_registered", "registration_refused", "registration_rate_limited", "client_metadata_refused",
    "authorize_refused", "consent_granted", "consent_refused", "token_issued", "token_refused", "refresh_reuse_detected",
  ],
} as const;

export type EventType = keyof typeof EVENT_TYPES;
export type EventReason<T extends EventType> = (typeof EVENT_TYPES)[T][number];
