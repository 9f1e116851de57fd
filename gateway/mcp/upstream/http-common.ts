// Shared by the two HTTP upstream transports: the connection pool with the configured TLS,
// the headers the gateway injects, and reading bodies within the size limit.
import { Agent } from "undici";
import type { Readable } from "node:stream";
import { createParser, type EventSourceMessage } from "eventsource-parser";
import { revealValue, type ConfigValue } from "../../config/secret.js";
import type { TlsConfig } from "../../config/load.js";
import { CountersignError } from "../../errors.js";

export function createAgent(tls: TlsConfig | undefined): Agent {
  return new Agent({
    keepAliveTimeout: 30_000,
    connections: 64,
    // Streams (GET, SSE) stay open for the life of a session.
    bodyTimeout: 0,
    headersTimeout: 30_000,
    connect: tls
      ? {
          rejectUnauthorized: tls.rejectUnauthorized,
          ...(tls.ca ? { ca: tls.ca.reveal() } : {}),
          ...(tls.cert ? { cert: tls.cert.reveal() } : {}),
          ...(tls.key ? { key: tls.key.reveal() } : {}),
        }
      : {},
  });
}

export function injectedHeaders(headers: Record<string, ConfigValue>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), revealValue(v)]));
}

export async function readBodyLimited(body: Readable, limit: number): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      body.destroy();
      throw new CountersignError("CS_ERR_UPSTREAM_RESPONSE_TOO_LARGE", `more than ${limit} bytes`, { keyPath: "limits.upstreamMessageBytes" });
    }
    parts.push(chunk as Buffer);
  }
  return Buffer.concat(parts).toString("utf8");
}

/**
 * Feeds an SSE body to `onEvent`; an event larger than `limit` is reported and skipped. `onRetry`
 * receives the reconnection delay a `retry:` field sets.
 */
export async function readSse(
  body: Readable,
  limit: number,
  onEvent: (ev: EventSourceMessage) => void,
  onOversized: (bytes: number) => void,
  onRetry?: (ms: number) => void,
): Promise<void> {
  let pendingBytes = 0;
  const parser = createParser({
    ...(onRetry ? { onRetry } : {}),
    onEvent: (ev) => {
      pendingBytes = 0;
      if (Buffer.byteLength(ev.data) > limit) onOversized(Buffer.byteLength(ev.data));
      else onEvent(ev);
    },
  });
  const decoder = new TextDecoder();
  for await (const chunk of body) {
    pendingBytes += (chunk as Buffer).length;
    if (pendingBytes > limit * 2) {
      // An event that never ends: stop reading rather than buffer without bound.
      body.destroy();
      onOversized(pendingBytes);
      return;
    }
    parser.feed(decoder.decode(chunk as Buffer, { stream: true }));
  }
}

export function parseJsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
