// What the session needs from an upstream MCP server, whatever carries it.
import type { CountersignError } from "../../errors.js";
import type { JsonRpcId, JsonRpcMessage } from "../jsonrpc.js";

export interface UpstreamEvents {
  /** A message from the server. `relatedTo` names the client request whose stream carried it. */
  message(msg: unknown, size: number, relatedTo?: JsonRpcId): void;
  /** A failure that concerns the given client requests (or the session when none are named). */
  failure(err: CountersignError, requestIds: JsonRpcId[]): void;
  /** The upstream is gone for good (process exited, stream closed). */
  closed(reason: "exited" | "closed", detail: string): void;
}

export interface UpstreamTransport {
  readonly kind: "stdio" | "streamable_http" | "sse";
  /** The upstream's own session id, where it has one. */
  readonly upstreamSessionId?: string | undefined;
  /** The upstream is spoken to in MCP 2026-07-28 (upstream/stateless-http.ts, over HTTP or stdio): requests keep their envelope. */
  readonly stateless?: boolean | undefined;
  start(): Promise<void>;
  send(msg: JsonRpcMessage, protocolVersion: string | undefined): Promise<void>;
  close(): Promise<void>;
}

/** One 2026-07-28 exchange's options: cancellation, and where the messages it carries before its answer go. */
export interface ModernExchange {
  signal?: AbortSignal | undefined;
  related?: ((msg: unknown, size: number) => void) | undefined;
}

/**
 * What carries 2026-07-28 requests to an upstream other than by HTTP POST (upstream/stateless-stdio.ts):
 * one request in, its answer (a result or an error) out; throws a CountersignError when there is none.
 */
export interface ModernWire {
  start(): Promise<void>;
  exchange(msg: JsonRpcMessage, x: ModernExchange): Promise<JsonRpcMessage>;
  close(): Promise<void>;
}

export type UpstreamFactory = (events: UpstreamEvents) => UpstreamTransport;
