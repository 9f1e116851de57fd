// A 2026-07-28 caller in front of a 2026-07-28 upstream (connections[].protocol auto or
// 2026-07-28): no bridge, no initialize. The caller's session on this connection is only the
// pipeline's context (identity, access, policy, masking, records, approvals); each request goes
// upstream as the caller sent it (envelope, Mcp-Method and Mcp-Name headers rebuilt from the
// body), server/discover included, and the answer comes back as the upstream wrote it:
// input_required results, requestState and caching hints pass unchanged in both directions. Only
// the gateway's own held-call state (an approval's requestState) is the gateway's to check.
import type { McpSession } from "../../mcp-session.js";
import { STATELESS_VERSION } from "./ladder.js";
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
