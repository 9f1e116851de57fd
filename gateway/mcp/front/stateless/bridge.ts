// The bridge from a 2026-07-28 caller to a 2025-era upstream: the gateway itself starts the
// upstream session (initialize, notifications/initialized) through the same pipeline stages as a
// client's, and answers server/discover from what the upstream said about itself then.
import { CountersignError } from "../../../errors.js";
import type { JsonRpcMessage } from "../../jsonrpc.js";
import type { McpSession } from "../../mcp-session.js";
import { ENDPOINT_VERSIONS } from "./ladder.js";
import type { CacheScope } from "./answer.js";
import { StatelessSink } from "./sink.js";

/** The newest 2025-era revision: what the bridge asks the upstream for. */
const UPSTREAM_VERSION = "2025-11-25";
/** The gateway's name to the upstream: the session is the gateway's, shared by one caller's stateless clients. */
const BRIDGE_CLIENT_INFO = { name: "countersign-stateless-bridge", version: "1" };

/**
 * Starts the upstream session of a new bridge. The bridge declares no client capabilities: a
 * 2026-07-28 caller has no stream on which the upstream's own requests (sampling, elicitation,
 * roots) could reach it.
 */
export async function initializeBridge(session: McpSession, requestId: string | undefined): Promise<void> {
  const sink = new StatelessSink();
  session.sink = sink;
  const id = sink.nextId();
  const answered = new Promise<JsonRpcMessage>((resolve) => sink.expect(id, { answer: resolve, related: () => false }));
  const init: JsonRpcMessage = { jsonrpc: "2.0", id, method: "initialize", params: { protocolVersion: UPSTREAM_VERSION, capabilities: {}, clientInfo: BRIDGE_CLIENT_INFO } };
  const hints = { requestId };
  await session.fromClient(init, { kind: "request", id, method: "initialize" }, hints);
  const answer = await answered;
  if (answer.error !== undefined || answer.result === null || typeof answer.result !== "object") {
    throw new CountersignError("CS_ERR_UPSTREAM_UNAVAILABLE", `initialize was answered with ${JSON.stringify(answer.error ?? answer.result).slice(0, 200)}`);
  }
  sink.initializeResult = answer.result as Record<string, unknown>;
  await session.fromClient({ jsonrpc: "2.0", method: "notifications/initialized" }, { kind: "notification", method: "notifications/initialized" }, hints);
}

/**
 * server/discover, from the upstream's initialize result: its capabilities (less what the bridge
 * does not carry: tasks, subscriptions and list-changed notifications, which need
 * subscriptions/listen), its serverInfo and instructions; the versions are this endpoint's.
 */
export function discoverResult(sink: StatelessSink, cacheScope: CacheScope): Record<string, unknown> {
  const init = sink.initializeResult ?? {};
  const capabilities = { ...((init.capabilities ?? {}) as Record<string, unknown>) };
  delete capabilities.tasks;
  for (const k of ["tools", "prompts", "resources"]) {
    const cap = capabilities[k];
    if (cap === null || typeof cap !== "object") continue;
    const { listChanged: _l, subscribe: _s, ...rest } = cap as Record<string, unknown>;
    capabilities[k] = rest;
  }
  return {
    resultType: "complete",
    supportedVersions: [...ENDPOINT_VERSIONS],
    capabilities,
    ...(typeof init.instructions === "string" ? { instructions: init.instructions } : {}),
    ttlMs: 0,
    cacheScope,
    ...(init.serverInfo !== undefined ? { _meta: { "io.modelcontextprotocol/serverInfo": init.serverInfo } } : {}),
  };
}
