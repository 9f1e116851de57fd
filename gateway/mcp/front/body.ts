// Turns an HTTP body into JSON-RPC messages, or a catalogue error naming what is wrong.
import { CountersignError } from "../../errors.js";
import { classify, type Classified, type JsonRpcMessage } from "../jsonrpc.js";

export interface ParsedBody {
  messages: Array<{ msg: JsonRpcMessage; c: Classified }>;
  batch: boolean;
}

export function parseJsonRpcBody(body: unknown): ParsedBody {
  if (typeof body !== "string") throw new CountersignError("CS_ERR_UNSUPPORTED_MEDIA_TYPE");
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (err) {
    throw new CountersignError("CS_ERR_PARSE", (err as Error).message);
  }
  const batch = Array.isArray(parsed);
  const items: unknown[] = batch ? (parsed as unknown[]) : [parsed];
  if (items.length === 0) throw new CountersignError("CS_ERR_INVALID_REQUEST", "empty batch");
  const messages = items.map((msg, i) => {
    const c = classify(msg);
    if (!c) throw new CountersignError("CS_ERR_INVALID_REQUEST", batch ? `batch element ${i} is not a JSON-RPC 2.0 message` : undefined);
    return { msg: msg as JsonRpcMessage, c };
  });
  return { messages, batch };
}
