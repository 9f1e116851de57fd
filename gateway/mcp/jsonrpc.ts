// JSON-RPC 2.0 shapes as the gateway needs them: enough to route and record a message, never a
// re-serialisation. Messages are kept as the parsed objects the peer sent, so fields, methods and
// notifications the gateway does not know pass through untouched.

export type JsonRpcId = string | number;
export type JsonRpcMessage = Record<string, unknown> & { jsonrpc: "2.0" };
export type MessageKind = "request" | "notification" | "response" | "error";

/** What a message is: each kind carries exactly the fields it has, so no stage needs `id!` or `method!`. */
export type Classified =
  | { kind: "request"; id: JsonRpcId; method: string }
  | { kind: "notification"; method: string; id?: undefined }
  | { kind: "response"; id: JsonRpcId; method?: undefined }
  /** An error answers a request; `id` is absent when the peer could not tell which (id: null). */
  | { kind: "error"; id?: JsonRpcId | undefined; method?: undefined };

export type ClassifiedRequest = Extract<Classified, { kind: "request" }>;

/** MCP ids are strings or integers; a fraction or an integer past 2^53 cannot round-trip every peer, so it is refused at once. */
function isId(v: unknown): v is JsonRpcId {
  return typeof v === "string" || (typeof v === "number" && Number.isSafeInteger(v));
}

/** What a message is, or undefined when it is not a JSON-RPC 2.0 message. */
export function classify(msg: unknown): Classified | undefined {
  if (msg === null || typeof msg !== "object" || Array.isArray(msg)) return undefined;
  const m = msg as Record<string, unknown>;
  if (m.jsonrpc !== "2.0") return undefined;
  if (typeof m.method === "string") {
    if (m.params !== undefined && (m.params === null || typeof m.params !== "object")) return undefined;
    if ("id" in m) return isId(m.id) ? { kind: "request", id: m.id, method: m.method } : undefined;
    return { kind: "notification", method: m.method };
  }
  if ("result" in m && isId(m.id)) return { kind: "response", id: m.id };
  if ("error" in m && m.error !== null && typeof m.error === "object" && (isId(m.id) || m.id === null)) {
    return m.id === null ? { kind: "error" } : { kind: "error", id: m.id };
  }
  return undefined;
}

/** A map key that keeps 1 and "1" apart, as JSON-RPC does. */
export function idKey(id: JsonRpcId): string {
  return typeof id === "number" ? `n:${id}` : `s:${id}`;
}

export function progressTokenOf(msg: JsonRpcMessage): JsonRpcId | undefined {
  const params = msg.params as { _meta?: { progressToken?: unknown } } | undefined;
  const token = params?._meta?.progressToken;
  return isId(token) ? token : undefined;
}

export const SUPPORTED_PROTOCOL_VERSIONS = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"] as const;

/** Batches exist in the JSON-RPC versions before 2025-06-18 removed them from MCP. */
export function batchesAllowed(protocolVersion: string | undefined): boolean {
  return protocolVersion === undefined || protocolVersion === "2024-11-05" || protocolVersion === "2025-03-26";
}

/** The MCP 2026-07-28 envelope every stateless request carries in `params._meta`. */
export const PROTOCOL_VERSION_KEY = "io.modelcontextprotocol/protocolVersion";
export const CLIENT_CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities";
export const CLIENT_INFO_KEY = "io.modelcontextprotocol/clientInfo";

/**
 * A request as a 2025-era upstream session gets it: without the 2026 envelope, which has no
 * meaning there and makes a server serving both eras on one endpoint take the request for a
 * stateless one. Other `_meta` keys (progressToken, …) stay; the message is otherwise untouched.
 */
export function withoutStatelessEnvelope(msg: JsonRpcMessage): JsonRpcMessage {
  const params = msg.params as Record<string, unknown> | undefined;
  const meta = params?._meta as Record<string, unknown> | undefined;
  if (!meta || typeof meta !== "object" || !(PROTOCOL_VERSION_KEY in meta || CLIENT_CAPABILITIES_KEY in meta || CLIENT_INFO_KEY in meta)) return msg;
  const { [PROTOCOL_VERSION_KEY]: _version, [CLIENT_CAPABILITIES_KEY]: _capabilities, [CLIENT_INFO_KEY]: _info, ...rest } = meta;
  const { _meta: _old, ...otherParams } = params!;
  return { ...msg, params: Object.keys(rest).length > 0 ? { ...otherParams, _meta: rest } : otherParams };
}
