// What a 2026-07-28 caller is shown of an answer the bridge got from a 2025-era upstream session:
// the caller's own request id and progress token back, `resultType` (absent means "complete" in
// the older revisions), the cache fields the list and read results must carry, and the gateway's
// error codes moved out of the range the spec reserves for its own codes. Nothing else changes:
// the message is copied, never re-serialised through a schema, so unknown fields pass.
import { statelessCode, type ProtocolEra } from "../../../errors.js";
import type { JsonRpcId, JsonRpcMessage } from "../../jsonrpc.js";

/** Results that are cacheable in 2026-07-28 (ttlMs and cacheScope are required on them). */
const CACHEABLE: ReadonlySet<string> = new Set(["tools/list", "prompts/list", "resources/list", "resources/templates/list", "resources/read", "server/discover"]);

export type CacheScope = "public" | "private";

/** The answer to a bridged request, for the 2026 caller. */
export function toModern(msg: JsonRpcMessage, id: JsonRpcId, method: string, cacheScope: CacheScope): JsonRpcMessage {
  if (msg.error !== null && typeof msg.error === "object") {
    const error = msg.error as { code?: unknown; data?: { code?: unknown } };
    const code = typeof error.code === "number" ? statelessCode(error.code, error.data?.code) : error.code;
    return { ...msg, id, error: { ...error, code } };
  }
  const result = (msg.result !== null && typeof msg.result === "object" ? msg.result : {}) as Record<string, unknown>;
  const out: Record<string, unknown> = { ...result, resultType: result.resultType ?? "complete" };
  if (CACHEABLE.has(method)) {
    if (typeof out.ttlMs !== "number") out.ttlMs = 0;
    // Never widen what the upstream said; narrow it when the gateway answers per caller.
    out.cacheScope = cacheScope === "private" || result.cacheScope === "private" ? "private" : "public";
  }
  return { ...msg, id, result: out };
}

/** A related notification (progress) with the caller's own progress token back. */
export function relatedToModern(msg: JsonRpcMessage, token: JsonRpcId | undefined): JsonRpcMessage {
  if (msg.method !== "notifications/progress" || token === undefined) return msg;
  return { ...msg, params: { ...(msg.params as Record<string, unknown>), progressToken: token } };
}

/**
 * The era of whoever sent an HTTP request, from its headers alone, for a refusal made before (or
 * without) reading its body: a 2026 caller (an MCP-Protocol-Version header of 2026-07-28 or later,
 * no session) gets the stateless codes even when refused at authentication, so that, e.g.,
 * CS_ERR_UNAUTHENTICATED is never read as the spec's HeaderMismatch.
 */
export function eraOfHeaders(headers: Record<string, string | string[] | undefined>): ProtocolEra {
  const version = [headers["mcp-protocol-version"]].flat()[0]?.trim();
  const stateless = version !== undefined && /^\d{4}-\d{2}-\d{2}$/.test(version) && version >= "2026-07-28" && headers["mcp-session-id"] === undefined;
  return stateless ? "stateless" : "session";
}
