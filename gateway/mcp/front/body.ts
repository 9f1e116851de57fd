// Reading a request body, and turning it into JSON-RPC messages or a catalogue error naming what
// is wrong.
//
// Reading: a body within the route's limit is kept as text. An oversized body from a caller the
// gateway has authenticated before the body (early-auth.ts) is read and discarded up to
// DRAIN_FACTOR times the limit, then refused with 413 CS_ERR_BODY_TOO_LARGE on a connection that
// stays open: the client has finished sending, reads the error for that call, and its session goes
// on. Past that cap (or for a caller not authenticated first), nothing more is read: 413 with
// `Connection: close`, the unread rest going with the connection. Discarding holds no memory.
import type { Readable } from "node:stream";
import { errorCodes, type FastifyRequest } from "fastify";
import { CountersignError } from "../../errors.js";
import { classify, type Classified, type JsonRpcMessage } from "../jsonrpc.js";
import { earlyIdentity } from "./early-auth.js";

/** An authenticated caller's oversized body is read (and discarded) up to this many times the body limit. */
export const DRAIN_FACTOR = 16;

/** The body of a request past the limit, read and discarded whole: answered 413 by the route. */
export class OversizedBody {
  constructor(
    readonly received: number,
    readonly limit: number,
  ) {}
}

/** The application/json content-type parser: the body as text, or an OversizedBody (see above). */
export function readJsonBody(req: FastifyRequest, payload: Readable, defaultLimit: number, done: (err: Error | null, body?: unknown) => void): void {
  const limit = req.routeOptions.bodyLimit ?? defaultLimit;
  const cap = earlyIdentity(req) !== undefined ? limit * DRAIN_FACTOR : limit;
  const header = req.headers["content-length"];
  const declared = header === undefined ? undefined : Number(header);
  if (declared !== undefined && declared > cap) return done(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
  const chunks: Buffer[] = [];
  let received = 0;
  let finished = false;
  const finish = (err: Error | null, body?: unknown) => {
    if (finished) return;
    finished = true;
    payload.removeListener("data", onData);
    payload.removeListener("end", onEnd);
    done(err, body);
  };
  const onData = (chunk: Buffer) => {
    received += chunk.length;
    if (received > cap) return finish(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
    if (received <= limit) chunks.push(chunk);
    else chunks.length = 0; // past the limit: discarded as it arrives
  };
  const onEnd = () => {
    if (declared !== undefined && received !== declared) return finish(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH());
    if (received > limit) return finish(null, new OversizedBody(received, limit));
    finish(null, Buffer.concat(chunks).toString("utf8"));
  };
  payload.on("data", onData);
  payload.on("end", onEnd);
  payload.on("error", (err) => finish(err));
}

/**
 * How a POST carrying requests is answered, from its Accept header. Every Streamable HTTP revision
 * (2025-03-26 and later) says the client MUST list both application/json and text/event-stream;
 * a POST that does not (wildcards count; q=0 excludes) is refused, 406 CS_ERR_NOT_ACCEPTABLE. The
 * answer is an SSE stream unless the client ranks application/json higher (its q-values).
 */
export function postAnswerMode(accept: string | undefined): "sse" | "json" {
  const ranges = (accept ?? "").split(",").flatMap((part) => {
    const [range, ...params] = part.trim().toLowerCase().split(";");
    if (!range) return [];
    const q = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
    const value = q === undefined ? 1 : Number(q.slice(2));
    return [{ range: range.trim(), q: Number.isFinite(value) ? value : 0 }];
  });
  /** The q of the most specific range that matches the type. */
  const quality = (type: string): number => {
    const [major] = type.split("/");
    const match = ranges.find((r) => r.range === type) ?? ranges.find((r) => r.range === `${major}/*`) ?? ranges.find((r) => r.range === "*/*");
    return match?.q ?? 0;
  };
  const json = quality("application/json");
  const sse = quality("text/event-stream");
  if (json <= 0 || sse <= 0) {
    throw new CountersignError("CS_ERR_NOT_ACCEPTABLE", `a POST must accept both application/json and text/event-stream; Accept: ${(accept ?? "(none)").slice(0, 200)}`);
  }
  return json > sse ? "json" : "sse";
}

/**
 * A batch as the negotiated revision allows it: 2025-03-26 (and 2024-11-05) batch requests and
 * notifications, or responses only, never the two mixed, and never initialize; later revisions
 * have no batches (checked by the caller, CS_ERR_BATCH_NOT_ALLOWED).
 */
export function checkBatchShape(messages: ParsedBody["messages"]): void {
  const kinds = new Set(messages.map((m) => (m.c.kind === "request" || m.c.kind === "notification" ? "call" : "answer")));
  if (kinds.size > 1) throw new CountersignError("CS_ERR_INVALID_REQUEST", "a batch holds requests and notifications, or responses only, not both");
}

export interface ParsedBody {
  messages: Array<{ msg: JsonRpcMessage; c: Classified }>;
  batch: boolean;
}

/** What the record of a refused oversized body says: the limit and the bytes read (nothing for other bodies). */
export function oversizedDetail(body: unknown): Record<string, number> {
  return body instanceof OversizedBody ? { limit: body.limit, received: body.received } : {};
}

export function parseJsonRpcBody(body: unknown): ParsedBody {
  if (body instanceof OversizedBody) throw new CountersignError("CS_ERR_BODY_TOO_LARGE", `${body.received} bytes, limit ${body.limit}`);
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
