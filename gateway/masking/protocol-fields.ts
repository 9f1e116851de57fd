/**
 * Protocol fields: the parts of an MCP message that the protocol, not the content, owns. A
 * client matches them byte for byte (a progress token to its call, a cursor to its list, a
 * request state to its retry), so masking never rewrites them; it still scans them, and a
 * credential found in one refuses the message (an upstream must not smuggle a secret out
 * through a cursor).
 *
 * Positions are counted from the message root only: a JSON text inside a tool result is
 * content, whatever its field names.
 */
import type { PathSegment } from "./json-path.js";

/** Top-level members of every JSON-RPC message. */
const ENVELOPE = new Set(["jsonrpc", "id", "method"]);

/** Members of `params` / `result` that carry protocol state rather than content. */
const PARAMS_OR_RESULT = new Set([
  "progressToken",
  "requestId",
  "cursor",
  "nextCursor",
  "requestState",
  "resultType",
  "taskId",
  "subscriptionId",
  "protocolVersion",
  "capabilities",
  "uri",
  "ttl",
  "pollInterval",
  "mimeType",
  "level",
  "logger",
]);

/** Arrays of `result` whose items are identified by these members (tasks/list, resources/list, …). */
const LISTED: Record<string, ReadonlySet<string>> = {
  tasks: new Set(["taskId", "status", "ttl", "pollInterval", "createdAt", "lastUpdatedAt"]),
  resources: new Set(["uri", "mimeType"]),
  resourceTemplates: new Set(["uriTemplate", "mimeType"]),
  contents: new Set(["uri", "mimeType"]),
  tools: new Set(["name"]),
  prompts: new Set(["name"]),
  content: new Set(["type", "mimeType"]),
};

/** Maps whose keys are protocol ids (MRTR's input requests and responses); the values are content. */
const ID_KEYED = new Set(["inputRequests", "inputResponses"]);

/**
 * `_meta` keys under a reserved prefix: a `/`-terminated prefix whose dot-separated labels
 * include `modelcontextprotocol` or `mcp` (`io.modelcontextprotocol/`, `modelcontextprotocol.io/`,
 * `dev.mcp/`), per the MCP specification's `_meta` rules.
 */
export function isReservedMetaKey(key: string): boolean {
  const slash = key.indexOf("/");
  if (slash <= 0) return false;
  for (const label of key.slice(0, slash).split(".")) if (label === "modelcontextprotocol" || label === "mcp") return true;
  return false;
}

export type FieldKind = "protocol" | "id-keyed" | undefined;

/**
 * Whether member `key` of the object at `path` is a protocol field. `atMessageRoot` is false
 * inside a nested JSON document (a tool's JSON text), where everything is content.
 */
export function protocolFieldKind(path: readonly PathSegment[], key: string, atMessageRoot: boolean): FieldKind {
  const parent = path.length > 0 ? path[path.length - 1] : undefined;
  if (parent === "_meta" && (isReservedMetaKey(key) || (key === "progressToken" && atMessageRoot && path.length === 2))) return "protocol";
  if (!atMessageRoot) return undefined;
  switch (path.length) {
    case 0:
      return ENVELOPE.has(key) ? "protocol" : undefined;
    case 1:
      if (parent !== "params" && parent !== "result") return undefined;
      if (PARAMS_OR_RESULT.has(key)) return "protocol";
      return ID_KEYED.has(key) ? "id-keyed" : undefined;
    case 2:
      // tasks/get's result and a task-augmented call's CreateTaskResult: result.task.taskId
      return path[0] === "result" && parent === "task" && (key === "taskId" || key === "status" || key === "ttl" || key === "pollInterval") ? "protocol" : undefined;
    case 3: {
      const list = path[1];
      return path[0] === "result" && typeof parent === "number" && typeof list === "string" && LISTED[list]?.has(key) ? "protocol" : undefined;
    }
    default:
      return undefined;
  }
}
