// A 2026-07-28 caller in front of a 2026-07-28 upstream (connections[].protocol auto or
// 2026-07-28): no bridge, no initialize. The caller's session on this connection is only the
// pipeline's context (identity, access, policy, masking, records, approvals); each request goes
// upstream as the caller sent it (envelope, Mcp-Method and Mcp-Name headers rebuilt from the
// body), server/discover included, and the answer comes back as the upstream wrote it:
// input_required results, requestState and caching hints pass unchanged in both directions. Only
// the gateway's own held-call state (an approval's requestState) is the gateway's to check.
import type { ConnectionConfig } from "../../../config/load.js";
import type { JsonRpcMessage } from "../../jsonrpc.js";
import type { McpSession } from "../../mcp-session.js";
import type { SessionRegistry } from "../../sessions.js";
import { ENDPOINT_VERSIONS, STATELESS_VERSION } from "./ladder.js";
import { StatelessSink } from "./sink.js";

/** Whether this stateless session reaches a 2026-07-28 upstream (else it is a bridge to a 2025-era session). */
export function passesThrough(session: McpSession): boolean {
  return session.upstream.stateless === true;
}

/** Sets up a passthrough session: a sink for its answers, and the revision it speaks upstream. */
export function startPassthrough(session: McpSession): Promise<void> {
  session.sink = new StatelessSink();
  session.protocolVersion = STATELESS_VERSION;
  return Promise.resolve();
}

/** Methods served only when the upstream speaks 2026-07-28 itself (the bridge has no form for them). */
const PASSTHROUGH_ONLY: ReadonlySet<string> = new Set(["subscriptions/listen"]);
const NONE: ReadonlySet<string> = new Set();

/**
 * The methods served for this request besides the ladder's: subscriptions/listen when this
 * connection passes a 2026-07-28 caller through (asked of the connection's cached protocol).
 */
export async function alsoServed(sessions: SessionRegistry, connection: ConnectionConfig, method: unknown): Promise<ReadonlySet<string>> {
  if (typeof method !== "string" || !PASSTHROUGH_ONLY.has(method)) return NONE;
  return (await sessions.protocols.choose(connection, true)) === STATELESS_VERSION ? PASSTHROUGH_ONLY : NONE;
}

/**
 * The upstream's answer as this endpoint gives it: server/discover names the versions the
 * gateway's endpoint serves (the 2025-era revisions, through sessions, besides 2026-07-28).
 */
export function passthroughAnswer(msg: JsonRpcMessage, method: string): JsonRpcMessage {
  if (method !== "server/discover" || msg.result === null || typeof msg.result !== "object") return msg;
  return { ...msg, result: { ...(msg.result as Record<string, unknown>), supportedVersions: [...ENDPOINT_VERSIONS] } };
}

/** The HTTP status 2026-07-28 gives the upstream's error: 400 for the header, capability and version errors, 404 for an unknown method. */
export function passthroughStatus(msg: JsonRpcMessage): number {
  const code = (msg.error as { code?: unknown } | undefined)?.code;
  if (code === -32020 || code === -32021 || code === -32022) return 400;
  if (code === -32601) return 404;
  return 200;
}
