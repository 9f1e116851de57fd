/**
 * Why masking refuses a whole message instead of masking it: the message is nested deeper or
 * holds more values than the walk checks, or a credential sits in a protocol field that masking
 * must not rewrite (an id, a progress token, a cursor…). Either way the message must not pass:
 * the data path answers that call with this error and records it; nobody else is affected.
 */
import { CountersignError } from "../errors.js";

export type RefusalReason = "too_deep" | "too_many_values" | "secret_in_protocol_field";

export class MaskingRefusedError extends CountersignError {
  readonly reason: RefusalReason;
  /** JSON path of the value that caused it (`$.params.progressToken`); never the value. */
  readonly path: string;
  /** The detector type found, for secret_in_protocol_field. */
  readonly type: string | undefined;

  constructor(reason: RefusalReason, path: string, type?: string) {
    const detail =
      reason === "secret_in_protocol_field"
        ? `a ${type ?? "credential"} was found in the protocol field ${path}`
        : reason === "too_deep"
          ? `nesting deeper than the masking limit at ${path}`
          : `more values than the masking limit, at ${path}`;
    super(reason === "secret_in_protocol_field" ? "CS_ERR_SECRET_IN_PROTOCOL_FIELD" : "CS_ERR_MESSAGE_TOO_COMPLEX", detail);
    this.name = "MaskingRefusedError";
    this.reason = reason;
    this.path = path;
    this.type = type;
  }
}

/** `$.params._meta["io.modelcontextprotocol/x"][3]` from path segments, for error details. */
export function formatPath(path: readonly (string | number)[]): string {
  let out = "$";
  for (const seg of path.length > 24 ? [...path.slice(0, 12), "…", ...path.slice(-4)] : path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (seg === "…") out += ".…";
    else if (/^[A-Za-z_][A-Za-z0-9_]{0,40}$/.test(seg)) out += `.${seg}`;
    else out += `[${JSON.stringify(seg.length > 40 ? seg.slice(0, 40) + "…" : seg)}]`;
  }
  return out;
}

/**
 * What stands in for a refused message, so a data path that only reads `masked` still fails
 * closed: a response or error becomes the refusal as an error response to the same id; a
 * notification or a server request becomes a log notification carrying the refusal. Nothing of
 * the original content is kept.
 */
export function refusalStandIn(message: unknown, err: MaskingRefusedError): unknown {
  const m = (message ?? {}) as Record<string, unknown>;
  const id = m.id;
  const isResponse = (typeof id === "string" || typeof id === "number") && m.method === undefined;
  // The id is echoed, unless the credential is in the id itself.
  if (isResponse && ("result" in m || "error" in m)) return { jsonrpc: "2.0", id: err.path === "$.id" ? null : id, error: err.toJsonRpcError() };
  return {
    jsonrpc: "2.0",
    method: "notifications/message",
    params: { level: "error", logger: "countersign", data: { code: err.code, message: err.message } },
  };
}
