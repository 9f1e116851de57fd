// One MCP 2026-07-28 request over HTTP: the POST with its standard headers (MCP-Protocol-Version,
// Mcp-Method, Mcp-Name), and its answer read from a JSON body or an SSE stream (the messages the
// stream carries before the answer, such as progress, go to `related`). Shared by the stateless
// upstream transport and the protocol probe.
import { request, type Agent } from "undici";
import { CountersignError } from "../../errors.js";
import { classify, type JsonRpcMessage } from "../jsonrpc.js";
import { parseJsonOrUndefined, readBodyLimited, readSse } from "./http-common.js";

export const MODERN_VERSION = "2026-07-28";

/** The body field Mcp-Name mirrors, per method. */
const NAME_SOURCE: Readonly<Record<string, string>> = { "tools/call": "name", "prompts/get": "name", "resources/read": "uri" };

/** A header value as is when it is plain printable ASCII, else in the =?base64?…?= form the revision defines. */
export function headerValue(value: string): string {
  return /^[\x21-\x7E](?:[\x20-\x7E]*[\x21-\x7E])?$/.test(value) ? value : `=?base64?${Buffer.from(value, "utf8").toString("base64")}?=`;
}

/** The standard headers of a 2026-07-28 request, from its body. */
export function standardHeaders(msg: JsonRpcMessage): Record<string, string> {
  const h: Record<string, string> = { "mcp-protocol-version": MODERN_VERSION };
  if (typeof msg.method !== "string") return h;
  h["mcp-method"] = headerValue(msg.method);
  const field = NAME_SOURCE[msg.method];
  const params = (msg.params ?? {}) as Record<string, unknown>;
  if (field !== undefined && typeof params[field] === "string") h["mcp-name"] = headerValue(params[field]);
  return h;
}

export interface PostOptions {
  url: string;
  agent: Agent;
  headers: Record<string, string>;
  maxMessageBytes: number;
  signal?: AbortSignal | undefined;
  /** A message the answer's stream carried before the answer (progress, log lines). */
  related?: ((msg: unknown, size: number) => void) | undefined;
  redact?: ((text: string) => string) | undefined;
}

/** POSTs one 2026-07-28 request and resolves with its answer (a result or an error); throws a CountersignError when there is none. */
export async function postModern(msg: JsonRpcMessage, opts: PostOptions): Promise<JsonRpcMessage> {
  let res;
  try {
    res = await request(opts.url, {
      method: "POST",
      dispatcher: opts.agent,
      headers: { ...opts.headers, ...standardHeaders(msg), accept: "application/json, text/event-stream", "content-type": "application/json" },
      body: JSON.stringify(msg),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } catch (err) {
    if (opts.signal?.aborted) throw new CountersignError("CS_ERR_REQUEST_CANCELLED");
    throw new CountersignError("CS_ERR_UPSTREAM_UNAVAILABLE", `POST ${opts.url}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const type = String(res.headers["content-type"] ?? "");
  const isAnswer = (m: unknown): m is JsonRpcMessage => {
    const c = classify(m);
    return (c?.kind === "response" || c?.kind === "error") && (m as { id?: unknown }).id === msg.id;
  };
  if (type.includes("text/event-stream") && res.statusCode < 300) {
    let answer: JsonRpcMessage | undefined;
    let oversized = 0;
    await readSse(
      res.body,
      opts.maxMessageBytes,
      (ev) => {
        if (ev.data === "" || answer) return;
        const parsed = parseJsonOrUndefined(ev.data);
        if (isAnswer(parsed)) answer = parsed;
        else if (parsed !== undefined) opts.related?.(parsed, Buffer.byteLength(ev.data));
      },
      (bytes) => (oversized = bytes),
    ).catch((err: unknown) => {
      if (opts.signal?.aborted) throw new CountersignError("CS_ERR_REQUEST_CANCELLED");
      throw new CountersignError("CS_ERR_UPSTREAM_HTTP", `the upstream's response stream failed: ${(err as Error).message}`);
    });
    if (answer) return answer;
    if (oversized > 0) throw new CountersignError("CS_ERR_UPSTREAM_RESPONSE_TOO_LARGE", `${oversized} bytes, limit ${opts.maxMessageBytes}`, { keyPath: "limits.upstreamMessageBytes" });
    throw new CountersignError("CS_ERR_UPSTREAM_HTTP", "the upstream closed its response stream before answering");
  }
  const text = await readBodyLimited(res.body, opts.maxMessageBytes);
  const parsed = parseJsonOrUndefined(text);
  if (isAnswer(parsed)) return parsed;
  // A JSON-RPC error the upstream could not tie to the request (id null) is still its answer.
  const c = classify(parsed);
  if (c?.kind === "error" && c.id === undefined) return { ...(parsed as JsonRpcMessage), id: msg.id };
  throw new CountersignError("CS_ERR_UPSTREAM_HTTP", `HTTP ${res.statusCode}: ${(opts.redact ?? String)(text.slice(0, 200))}`);
}
