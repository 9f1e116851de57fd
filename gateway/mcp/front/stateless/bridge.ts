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
 * What the bridge declares to the upstream: every client capability whose requests the gateway can
 * carry to a 2026-07-28 caller as an input_required round (rounds.ts). One bridge session serves
 * one caller on one connection whatever each request declares, so it declares the union, and each
 * request is held to its own envelope: an upstream request the caller did not declare the
 * capability for is refused to the caller with -32021 (MissingRequiredClientCapability, naming
 * it) and to the upstream with an error, and the call is cancelled upstream. (Keying bridge
 * sessions by declared capabilities instead would let one caller open a session per combination,
 * within its quota, for no gain in what it is allowed.) Not declared: roots.listChanged and
 * elicitation/sampling sub-capabilities beyond the modes (a stateless caller sends no
 * notifications; sampling with tools needs `sampling.tools` the union does not promise).
 */
export const BRIDGE_CLIENT_CAPABILITIES = { elicitation: { form: {}, url: {} }, sampling: {}, roots: {} } as const;

/**
 * Starts the upstream session of a new bridge, with the client capabilities above.
 */
export async function initializeBridge(session: McpSession, requestId: string | undefined): Promise<void> {
  const sink = new StatelessSink();
  session.sink = sink;
  // The bridge's own answers to the upstream (a ping; a request no call can take) go through the pipeline, on record.
  sink.answerUpstream = (msg) => {
    const c = msg.error !== undefined ? ({ kind: "error", id: msg.id as string } as const) : ({ kind: "response", id: msg.id as string } as const);
    void session.fromClient(msg, c).catch(() => {});
  };
  const id = sink.nextId();
  const answered = new Promise<JsonRpcMessage>((resolve) => sink.expect(id, { answer: resolve, related: () => false }));
  const init: JsonRpcMessage = { jsonrpc: "2.0", id, method: "initialize", params: { protocolVersion: UPSTREAM_VERSION, capabilities: BRIDGE_CLIENT_CAPABILITIES, clientInfo: BRIDGE_CLIENT_INFO } };
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
