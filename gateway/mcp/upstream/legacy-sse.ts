// An upstream MCP server over the 2024-11-05 HTTP+SSE transport: one GET stream carries every
// server message; the `endpoint` event names where client messages are POSTed.
import { request, type Agent } from "undici";
import { CountersignError } from "../../errors.js";
import { classify, type JsonRpcMessage } from "../jsonrpc.js";
import { createAgent, injectedHeaders, parseJsonOrUndefined, readSse } from "./http-common.js";
import type { HttpUpstreamOptions } from "./streamable-http.js";
import type { UpstreamEvents, UpstreamTransport } from "./types.js";

export class LegacySseUpstream implements UpstreamTransport {
  readonly kind = "sse" as const;
  readonly upstreamSessionId: string | undefined = undefined;
  readonly #agent: Agent;
  readonly #headers: Record<string, string>;
  #endpoint?: URL;
  #abort = new AbortController();
  #closed = false;

  constructor(private readonly opts: HttpUpstreamOptions, private readonly events: UpstreamEvents) {
    this.#agent = createAgent(opts.tls);
    this.#headers = injectedHeaders(opts.headers);
  }

  async start(): Promise<void> {
    let res;
    try {
      res = await request(this.opts.url, {
        method: "GET",
        dispatcher: this.#agent,
        headers: { ...this.#headers, ...this.opts.identityHeaders?.(), accept: "text/event-stream" },
        signal: this.#abort.signal,
      });
    } catch (err) {
      throw new CountersignError("CS_ERR_UPSTREAM_UNAVAILABLE", `GET ${this.opts.url}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new CountersignError("CS_ERR_UPSTREAM_UNAVAILABLE", `GET ${this.opts.url}: HTTP ${res.statusCode}`);
    }
    const endpoint = new Promise<URL>((resolve, reject) => {
      const timer = setTimeout(() => reject(new CountersignError("CS_ERR_UPSTREAM_UNAVAILABLE", "no endpoint event within 10 s")), 10_000);
      void readSse(
        res.body,
        this.opts.maxMessageBytes,
        (ev) => {
          if (ev.event === "endpoint") {
            clearTimeout(timer);
            // Messages (and the configured credentials) go only to the upstream's own origin: an
            // endpoint elsewhere would make the gateway send them to whoever the upstream names.
            let url: URL | undefined;
            try {
              url = new URL(ev.data, this.opts.url);
            } catch {
              url = undefined;
            }
            const origin = new URL(this.opts.url).origin;
            if (!url || url.origin !== origin) {
              reject(new CountersignError("CS_ERR_UPSTREAM_UNAVAILABLE", `the upstream's endpoint event names ${url ? `another origin (${url.origin})` : "no valid URL"}; only ${origin} is accepted`));
              this.#abort.abort();
              return;
            }
            resolve(url);
            return;
          }
          const parsed = parseJsonOrUndefined(ev.data);
          if (parsed === undefined) this.events.failure(new CountersignError("CS_ERR_UPSTREAM_HTTP", "an SSE event whose data is not JSON"), []);
          else this.events.message(parsed, Buffer.byteLength(ev.data));
        },
        (bytes) => this.events.failure(new CountersignError("CS_ERR_UPSTREAM_RESPONSE_TOO_LARGE", `${bytes} bytes`, { keyPath: "limits.upstreamMessageBytes" }), []),
      )
        .catch(() => {})
        .finally(() => {
          clearTimeout(timer);
          // Ended before its endpoint event: start() fails now, not never (no-op once resolved).
          reject(new CountersignError("CS_ERR_UPSTREAM_UNAVAILABLE", "the upstream closed its SSE stream before its endpoint event"));
          if (!this.#closed) {
            this.#closed = true;
            this.events.closed("closed", "the upstream closed its SSE stream");
          }
        });
    });
    this.#endpoint = await endpoint;
  }

  async send(msg: JsonRpcMessage): Promise<void> {
    if (this.#closed || !this.#endpoint) throw new CountersignError("CS_ERR_UPSTREAM_EXITED", "the upstream SSE stream is closed");
    let res;
    try {
      res = await request(this.#endpoint, {
        method: "POST",
        dispatcher: this.#agent,
        headers: { ...this.#headers, ...this.opts.identityHeaders?.(), "content-type": "application/json" },
        body: JSON.stringify(msg),
      });
    } catch (err) {
      throw new CountersignError("CS_ERR_UPSTREAM_UNAVAILABLE", `POST ${this.#endpoint.href}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const text = await res.body.text();
    if (res.statusCode >= 300) {
      const c = classify(msg);
      this.events.failure(
        new CountersignError("CS_ERR_UPSTREAM_HTTP", `HTTP ${res.statusCode}: ${(this.opts.redact ?? String)(text.slice(0, 200))}`),
        c?.kind === "request" && c.id !== undefined ? [c.id] : [],
      );
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#abort.abort();
    await this.#agent.close().catch(() => {});
  }
}
