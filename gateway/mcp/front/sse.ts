// Writes a Server-Sent Events stream on a raw HTTP response, with a keep-alive comment so idle
// streams survive proxies. Backpressure: what the client has not read stays in the socket's
// buffer, bounded by a byte budget; a client past it is cut (reason "too_slow"), so one client
// that stops reading cannot grow the gateway's memory.
import type { ServerResponse } from "node:http";

const KEEPALIVE_MS = 15_000;

export type SseCloseReason = "closed" | "too_slow";

export class SseWriter {
  #closed = false;
  #reason: SseCloseReason = "closed";
  #keepalive: NodeJS.Timeout;
  #onClose: Array<(reason: SseCloseReason) => void> = [];

  constructor(
    private readonly res: ServerResponse,
    headers: Record<string, string>,
    /** Unread bytes allowed (limits.clientBufferBytes). */
    private readonly maxUnreadBytes: number = 32 * 1024 * 1024,
  ) {
    res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache, no-transform",
      connection: "keep-alive",
      "x-accel-buffering": "no",
      ...headers,
    });
    res.flushHeaders();
    this.#keepalive = setInterval(() => this.#write(": keepalive\n\n"), KEEPALIVE_MS);
    this.#keepalive.unref();
    res.on("close", () => this.#markClosed());
  }

  get closed(): boolean {
    return this.#closed || this.res.destroyed;
  }

  onClose(fn: (reason: SseCloseReason) => void): void {
    this.#onClose.push(fn);
  }

  /**
   * One event; `id` (an event id for Last-Event-ID resumption) is written when given, and `retryMs`
   * (how long a client waits before reconnecting after the stream drops) likewise.
   */
  send(data: string, event = "message", id?: string, retryMs?: number): boolean {
    return this.#write(`${id === undefined ? "" : `id: ${id}\n`}${retryMs === undefined ? "" : `retry: ${retryMs}\n`}event: ${event}\ndata: ${data}\n\n`);
  }

  end(): void {
    if (this.#closed) return;
    this.res.end();
    this.#markClosed();
  }

  #write(text: string): boolean {
    if (this.closed) return false;
    // Still unread from earlier writes: past the budget the client is not keeping up; cut it.
    if (this.res.writableLength > this.maxUnreadBytes) {
      this.#reason = "too_slow";
      this.res.destroy();
      this.#markClosed();
      return false;
    }
    this.res.write(text);
    return true;
  }

  #markClosed(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#keepalive);
    for (const fn of this.#onClose.splice(0)) fn(this.#reason);
  }
}
