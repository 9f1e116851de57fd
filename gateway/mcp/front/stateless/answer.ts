// What a 2026-07-28 caller is shown of an answer the bridge got from a 2025-era upstream session:
// the caller's own request id and progress token back, `resultType` (absent means "complete" in
// the older revisions), the cache fields the list and read results must carry, and the gateway's
// error codes moved out of the range the spec reserves for its own codes. Nothing else changes:
// the message is copied, never re-serialised through a schema, so unknown fields pass.
import { CountersignError, jsonRpcErrorResponse, type ErrorCode } from "../../../errors.js";
import type { JsonRpcId, JsonRpcMessage } from "../../jsonrpc.js";

/** Results that are cacheable in 2026-07-28 (ttlMs and cacheScope are required on them). */
const CACHEABLE: ReadonlySet<string> = new Set(["tools/list", "prompts/list", "resources/list", "resources/templates/list", "resources/read", "server/discover"]);

/** The gateway's codes whose number carries the spec's meaning (the rest of -32020…-32099 is the spec's alone). */
const SPEC_CODES: ReadonlySet<string> = new Set(["CS_ERR_HEADER_MISMATCH", "CS_ERR_MISSING_CLIENT_CAPABILITY", "CS_ERR_PROTOCOL_VERSION_UNSUPPORTED"]);

/**
 * A JSON-RPC error code as a 2026 caller gets it: a gateway code in -32020…-32099 that the spec
 * does not define is moved 1000 down (-32030 → -33030), out of the JSON-RPC reserved range;
 * `error.data.code` still names the CS_ERR_* code.
 */
export function modernCode(code: number, csCode: unknown): number {
  const ours = typeof csCode === "string" && csCode.startsWith("CS_ERR_");
  if (ours && !SPEC_CODES.has(csCode) && code <= -32020 && code >= -32099) return code - 1000;
  return code;
}

export type CacheScope = "public" | "private";

/** The answer to a bridged request, for the 2026 caller. */
export function toModern(msg: JsonRpcMessage, id: JsonRpcId, method: string, cacheScope: CacheScope): JsonRpcMessage {
  if (msg.error !== null && typeof msg.error === "object") {
    const error = msg.error as { code?: unknown; data?: { code?: unknown } };
    const code = typeof error.code === "number" ? modernCode(error.code, error.data?.code) : error.code;
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
 * A refusal's body for whoever sent the request: a 2026 caller (an MCP-Protocol-Version header of
 * 2026-07-28 or later, no session) gets the modern codes, even when it is refused before its body
 * is read (authentication), so that, e.g., CS_ERR_UNAUTHENTICATED is never read as HeaderMismatch.
 */
export function errorBodyFor(headers: Record<string, string | string[] | undefined>, id: JsonRpcId | null, err: CountersignError) {
  const version = [headers["mcp-protocol-version"]].flat()[0]?.trim();
  const modern = version !== undefined && /^\d{4}-\d{2}-\d{2}$/.test(version) && version >= "2026-07-28" && headers["mcp-session-id"] === undefined;
  return modern ? modernError(id, err) : jsonRpcErrorResponse(id, err);
}

/** A refusal by the gateway itself, for a 2026 caller. */
export function modernError(id: JsonRpcId | null, err: CountersignError): { jsonrpc: "2.0"; id: JsonRpcId | null; error: { code: number; message: string; data: { code: ErrorCode } } } {
  const body = jsonRpcErrorResponse(id, err);
  return { ...body, error: { ...body.error, code: modernCode(body.error.code, err.code) } };
}
