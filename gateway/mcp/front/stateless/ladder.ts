// Which era a POST without Mcp-Session-Id speaks, and the MCP 2026-07-28 validation ladder for
// the ones that claim the modern era. The era is chosen per request, body first: the reserved
// `_meta` key io.modelcontextprotocol/protocolVersion (or a modern MCP-Protocol-Version header)
// makes it a stateless request; anything else stays on the session path, unchanged.
//
// The rungs, in the order a request that fails several is answered by (the SDK's observed order):
//   1. era classification and envelope (the SDK's classifier): -32020 header/body version or
//      method mismatch, -32602 malformed or missing envelope keys          (HTTP 400)
//   2. version: only 2026-07-28 is served statelessly: -32022, data.supported  (HTTP 400)
//   3. standard headers on requests: MCP-Protocol-Version, Mcp-Method, and Mcp-Name for
//      tools/call, prompts/get and resources/read (base64 sentinel decoded): -32020 (HTTP 400)
//   4. method registry: methods the revision removed (initialize, ping, logging/setLevel,
//      resources/subscribe, tasks/*) and unknown ones: -32601                  (HTTP 404)
//   5. client capabilities the method needs, from the envelope: -32021       (HTTP 400)
// Every refusal carries the request's id.
import { classifyInboundRequest } from "@modelcontextprotocol/server";
import { CountersignError } from "../../../errors.js";
import { decodeParamValue } from "./param-headers.js";
import { CLIENT_CAPABILITIES_KEY, CLIENT_INFO_KEY, PROTOCOL_VERSION_KEY, SUPPORTED_PROTOCOL_VERSIONS, type JsonRpcMessage } from "../../jsonrpc.js";

export const STATELESS_VERSION = "2026-07-28";
export { CLIENT_CAPABILITIES_KEY, CLIENT_INFO_KEY, PROTOCOL_VERSION_KEY };

/** What this endpoint serves: the stateless revision, then the session revisions (reached with initialize), newest first. */
export const ENDPOINT_VERSIONS: readonly string[] = [STATELESS_VERSION, ...[...SUPPORTED_PROTOCOL_VERSIONS].reverse()];

/** The 2026-07-28 request methods the gateway serves for a stateless caller (subscriptions/listen is not bridged yet). */
export const SERVED_METHODS: ReadonlySet<string> = new Set([
  "server/discover",
  "tools/list", "tools/call",
  "prompts/list", "prompts/get",
  "resources/list", "resources/templates/list", "resources/read",
  "completion/complete",
]);

/** The body field the Mcp-Name header mirrors, per method. */
const NAME_SOURCE: Readonly<Record<string, string>> = { "tools/call": "name", "prompts/get": "name", "resources/read": "uri" };

/** Client capabilities a method needs, checked against the envelope (none of the served methods needs one yet). */
const REQUIRED_CAPABILITIES: Readonly<Record<string, Record<string, unknown>>> = {};

export interface StatelessHeaders {
  protocolVersion?: string | undefined;
  method?: string | undefined;
  name?: string | undefined;
}

export type EraChoice =
  | { era: "legacy" }
  /** Modern, or refused by the classifier's modern rungs (answered by the stateless front either way). */
  | { era: "modern"; refusal?: CountersignError | undefined };

/** Rung 1: the era of one POSTed message (never throws). */
export function chooseEra(headers: StatelessHeaders, msg: JsonRpcMessage): EraChoice {
  const outcome = classifyInboundRequest({
    httpMethod: "POST",
    body: msg,
    ...(headers.protocolVersion !== undefined ? { protocolVersionHeader: headers.protocolVersion } : {}),
    ...(headers.method !== undefined ? { mcpMethodHeader: headers.method } : {}),
    ...(headers.name !== undefined ? { mcpNameHeader: headers.name } : {}),
  });
  if (outcome.kind === "legacy") return { era: "legacy" };
  if (outcome.kind === "modern") return { era: "modern" };
  // A shape problem the session path reports as it always did; the era rungs are the stateless front's.
  if (outcome.rung !== "era-classification" && outcome.rung !== "envelope") return { era: "legacy" };
  const data = (outcome.data ?? {}) as Record<string, unknown>;
  const code =
    outcome.code === -32020 ? "CS_ERR_HEADER_MISMATCH" : outcome.code === -32022 ? "CS_ERR_PROTOCOL_VERSION_UNSUPPORTED" : "CS_ERR_INVALID_ENVELOPE";
  return { era: "modern", refusal: new CountersignError(code, outcome.message.slice(0, 500), { data: code === "CS_ERR_PROTOCOL_VERSION_UNSUPPORTED" ? { ...data, supported: [...ENDPOINT_VERSIONS] } : data }) };
}

export interface ValidRequest {
  method: string;
  clientCapabilities: Record<string, unknown>;
  clientInfo: Record<string, unknown> | undefined;
}

/** Rungs 2 to 5 for a message the classifier called modern (`alsoServed`: methods served for this connection besides); throws the refusal. */
export function validate(headers: StatelessHeaders, msg: JsonRpcMessage, isRequest: boolean, alsoServed: ReadonlySet<string> = new Set()): ValidRequest {
  const params = (msg.params ?? {}) as Record<string, unknown>;
  const meta = (params._meta ?? {}) as Record<string, unknown>;
  const version = meta[PROTOCOL_VERSION_KEY] ?? headers.protocolVersion;
  if (version !== STATELESS_VERSION) {
    throw new CountersignError("CS_ERR_PROTOCOL_VERSION_UNSUPPORTED", `requested ${String(version).slice(0, 40)}`, {
      data: { supported: [...ENDPOINT_VERSIONS], ...(typeof version === "string" ? { requested: version.slice(0, 40) } : {}) },
    });
  }
  const method = String(msg.method);
  if (isRequest) {
    if (headers.protocolVersion === undefined) throw mismatch("the MCP-Protocol-Version header is missing");
    if (headers.method === undefined) throw mismatch("the Mcp-Method header is missing");
    const field = NAME_SOURCE[method];
    if (field !== undefined) {
      if (headers.name === undefined) throw mismatch(`the Mcp-Name header is missing (it mirrors params.${field} for ${method})`);
      const decoded = decodeHeaderValue(headers.name);
      if (decoded === undefined) throw mismatch("the Mcp-Name header is not valid base64 in its =?base64?…?= form");
      if (decoded !== params[field]) throw mismatch(`the Mcp-Name header does not match params.${field}`);
    }
    if (!SERVED_METHODS.has(method) && !alsoServed.has(method)) throw new CountersignError("CS_ERR_METHOD_NOT_FOUND", `'${method.slice(0, 100)}'`);
  }
  const clientCapabilities = (meta[CLIENT_CAPABILITIES_KEY] ?? {}) as Record<string, unknown>;
  const required = REQUIRED_CAPABILITIES[method];
  if (required) {
    const missing = Object.keys(required).filter((k) => clientCapabilities[k] === undefined);
    if (missing.length > 0) {
      throw new CountersignError("CS_ERR_MISSING_CLIENT_CAPABILITY", missing.join(", "), { data: { requiredCapabilities: Object.fromEntries(missing.map((k) => [k, required[k]])) } });
    }
  }
  const info = meta[CLIENT_INFO_KEY];
  return { method, clientCapabilities, clientInfo: info !== null && typeof info === "object" ? (info as Record<string, unknown>) : undefined };
}

function mismatch(detail: string): CountersignError {
  return new CountersignError("CS_ERR_HEADER_MISMATCH", detail);
}

/** A header value as sent, or decoded from the =?base64?…?= sentinel form; undefined when the encoding is broken. */
export function decodeHeaderValue(value: string): string | undefined {
  return decodeParamValue(value);
}
