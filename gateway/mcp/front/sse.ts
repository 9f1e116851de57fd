// Writes a Server-Sent Events stream on a raw HTTP response, with a keep-alive comment so idle
// streams survive proxies.
import type { ServerResponse } from "node:http";

const KEEPALIVE_MS = 15_000;

export class SseWriter {
  #closed = false;
  #keepalive: NodeJS.Timeout;
  #onClose: Array<() => void> = [];

  constructor(private readonly res: ServerResponse, headers: Record<string, string>) {
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

  onClose(fn: () => void): void {
    this.#onClose.push(fn);
  }

  send(data: string, event = "message"): boolean {
    return this.#write(`event: ${event}\ndata: ${data}\n\n`);
  }

  end(): void {
    if (this.#closed) return;
    this.res.end();
    this.#markClosed();
  }

  #write(text: string): boolean {
    if (this.closed) return false;
    this.res.write(text);
    return true;
  }

  #markClosed(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#keepalive);
    for (const fn of this.#onClose.splice(0)) fn();
  }
}
