// Sends a request to the replica that holds its session and streams the answer back to the
// client as it comes: a JSON body, a 202, or a Server-Sent Events stream that stays open. The
// caller's headers travel unchanged (its token included: the owner authenticates it again), with
// the same request id, the caller's address and the peer signature (over the body too) added.
import type { FastifyReply, FastifyRequest } from "fastify";
import { Agent, request } from "undici";
import { CountersignError } from "../errors.js";
import type { KeyRing } from "../keys/ring.js";
import { CLIENT_ADDRESS_HEADER, RELAY_HEADER, signRelay } from "./peer-auth.js";
import { callerAddress } from "./relayed.js";

/** Headers of one hop only (RFC 9110 §7.6.1), and ours, which only the relaying replica sets. */
const NOT_FORWARDED = new Set([
  "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length",
  "proxy-authorization", "proxy-authenticate", RELAY_HEADER, CLIENT_ADDRESS_HEADER, "x-request-id",
]);

// No body or header deadline of its own: a stream stays open as long as the client keeps it, and
// a call may wait for an approval; the owner's own limits (upstreamTimeoutMs) answer first.
const agent = new Agent({ headersTimeout: 0, bodyTimeout: 0, connectTimeout: 5000, keepAliveTimeout: 30_000 });

function drained(res: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.once("drain", done);
    res.once("close", done);
  });
}

export interface RelayTarget {
  /** The owner's internal listener, e.g. http://10.0.3.7:8081 */
  url: string;
  instanceId: string;
  /** The keyring's relay keys: the active one signs. */
  keys: KeyRing;
}

/**
 * Relays `req` (its body already read as text) and answers the client with the owner's response.
 * Throws CS_ERR_SESSION_OWNER_GONE when the owner cannot be reached; nothing has been sent then.
 */
export async function relayRequest(req: FastifyRequest, reply: FastifyReply, target: RelayTarget): Promise<void> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || NOT_FORWARDED.has(name)) continue;
    headers[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  const url = req.raw.url ?? req.url;
  headers["x-request-id"] = req.id;
  headers[CLIENT_ADDRESS_HEADER] = callerAddress(req);
  const body = typeof req.body === "string" ? req.body : undefined;
  const signing = target.keys.active();
  headers[RELAY_HEADER] = signRelay(signing.key, req.method, url, req.id, body, Date.now(), signing.id);

  // The client going away ends the relayed request (and so the owner's stream) too.
  const abort = new AbortController();
  const onClientGone = () => abort.abort();
  reply.raw.once("close", onClientGone);

  let res: Awaited<ReturnType<typeof request>>;
  try {
    res = await request(`${target.url}${url}`, { method: req.method as "POST", headers, body, signal: abort.signal, dispatcher: agent });
  } catch (err) {
    reply.raw.off("close", onClientGone);
    const e = err as { code?: string; message?: string };
    throw new CountersignError("CS_ERR_SESSION_OWNER_GONE", `replica ${target.instanceId} at ${target.url}: ${e.code ?? e.message ?? String(err)}`);
  }

  reply.hijack();
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(res.headers)) {
    if (value === undefined || (NOT_FORWARDED.has(name) && name !== "x-request-id")) continue;
    out[name] = value;
  }
  reply.raw.writeHead(res.statusCode, out);
  if (String(res.headers["content-type"] ?? "").startsWith("text/event-stream")) reply.raw.flushHeaders();
  try {
    for await (const chunk of res.body) {
      if (reply.raw.destroyed) break;
      // A slow client slows the owner's stream down rather than filling this replica's memory.
      if (!reply.raw.write(chunk)) await drained(reply.raw);
    }
  } catch {
    // The owner's stream broke (it died mid-stream): end the client's, which then re-initialises.
  } finally {
    reply.raw.off("close", onClientGone);
    if (!reply.raw.destroyed) reply.raw.end();
    res.body.destroy();
  }
}
