// The 2024-11-05 HTTP+SSE transport (GET /sse opens the stream and names the POST endpoint;
// each POST /messages?sessionId=… carries one client message). The v2 server packages no longer
// ship it, but they take any Transport: this one is the few lines the old revision needs.
import { randomUUID } from "node:crypto";
import type { ServerResponse } from "node:http";
import type { JSONRPCMessage, Transport } from "@modelcontextprotocol/server";

export class LegacySseTransport implements Transport {
  readonly sessionId = randomUUID();
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  private closed = false;

  constructor(
    private readonly endpoint: string,
    private readonly res: ServerResponse,
  ) {
    res.on("close", () => void this.close());
  }

  start(): Promise<void> {
    this.res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache, no-transform", connection: "keep-alive" });
    this.res.write(`event: endpoint\ndata: ${this.endpoint}?sessionId=${this.sessionId}\n\n`);
    return Promise.resolve();
  }

  /** One POSTed message: parsed by the caller, handed to the server here. */
  receive(message: JSONRPCMessage): void {
    this.onmessage?.(message);
  }

  send(message: JSONRPCMessage): Promise<void> {
    if (this.closed) return Promise.reject(new Error("SSE stream closed"));
    this.res.write(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
    return Promise.resolve();
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.res.end();
    this.onclose?.();
    return Promise.resolve();
  }
}
