// An upstream MCP server over Streamable HTTP. Each client session gets its own upstream session
// (its own Mcp-Session-Id). Messages are forwarded as the client sent them; what comes back
// (a JSON body or an SSE stream per POST, plus the optional GET stream) is passed on unparsed
// beyond JSON, tagged with the request whose stream carried it.
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { request, type Agent } from "undici";
import type { ConfigValue } from "../../config/secret.js";
import type { TlsConfig } from "../../config/load.js";
import { CountersignError } from "../../errors.js";
import type { Logger } from "../../log.js";
import { classify, type JsonRpcId, type JsonRpcMessage } from "../jsonrpc.js";
import { createAgent, injectedHeaders, parseJsonOrUndefined, readBodyLimited, readSse } from "./http-common.js";
import type { UpstreamEvents, UpstreamTransport } from "./types.js";

/** How long forwarding `initialized` waits for the upstream to answer the GET that opens its stream. */
const GET_STREAM_WAIT_MS = 5000;

// Resuming a request's SSE stream that the upstream closed before answering (2025-11-25,
// resumability and redelivery; SEP-1699 polling). The bounds hold per call.
/** Reconnections in a row that fail (an error status, no connection) before the call fails. */
const RESUME_MAX_FAILURES = 3;
/** Reconnections in all, successful ones included (an upstream may close every stream it opens). */
const RESUME_MAX_RECONNECTS = 100;
/** Time from the first close to the last reconnection. */
const RESUME_WINDOW_MS = 5 * 60 * 1000;
/** The wait before reconnecting when the upstream sent no `retry`; doubled after each failure. */
const RESUME_DEFAULT_DELAY_MS = 1000;
/** A `retry` below this is raised to it (an upstream asking for 0 ms would have the gateway spin). */
const RESUME_MIN_DELAY_MS = 100;
/** The longest wait before one reconnection; an upstream asking for more fails the call at once. */
const RESUME_MAX_DELAY_MS = 30_000;

export interface HttpUpstreamOptions {
  url: string;
  headers: Record<string, ConfigValue>;
  tls?: TlsConfig | undefined;
  maxMessageBytes: number;
  log: Logger;
  /** The caller's identity for the upstream, computed per request (never the caller's own token). */
  identityHeaders?: (() => Record<string, string>) | undefined;
  /** Masks text the upstream wrote (an HTTP error body) before it reaches an error, the log or the store. */
  redact?: ((text: string) => string) | undefined;
}

export class StreamableHttpUpstream implements UpstreamTransport {
  readonly kind = "streamable_http" as const;
  upstreamSessionId: string | undefined;
  readonly #agent: Agent;
  readonly #headers: Record<string, string>;
  #getStream?: AbortController;
  /** Resumptions under way, ended by close(); one per unanswered request at most (the session bounds those). */
  readonly #resumes = new Set<AbortController>();
  #closed = false;

  constructor(private readonly opts: HttpUpstreamOptions, private readonly events: UpstreamEvents) {
    this.#agent = createAgent(opts.tls);
    this.#headers = injectedHeaders(opts.headers);
  }

  async start(): Promise<void> {
    // Nothing to open: the upstream session begins with the client's initialize.
  }

  #requestHeaders(protocolVersion: string | undefined, accept: string): Record<string, string> {
    const h: Record<string, string> = { ...this.#headers, ...this.opts.identityHeaders?.(), accept };
    if (this.upstreamSessionId) h["mcp-session-id"] = this.upstreamSessionId;
    if (protocolVersion) h["mcp-protocol-version"] = protocolVersion;
    return h;
  }

  async send(msg: JsonRpcMessage, protocolVersion: string | undefined): Promise<void> {
    if (this.#closed) throw new CountersignError("CS_ERR_UPSTREAM_EXITED", "the upstream session is closed");
    const c = classify(msg);
    // The GET stream is open (its answer received) before the upstream learns the client is
    // initialized: what it sends right after `initialized` has a stream to go to. An upstream that
    // refuses the GET before `initialized` gets it again after.
    const initialized = c?.kind === "notification" && c.method === "notifications/initialized";
    const getOpened = initialized && this.upstreamSessionId !== undefined && !this.#getStream ? await this.#openGetStream(protocolVersion) : undefined;
    const relatedTo: JsonRpcId | undefined = c?.kind === "request" ? c.id : undefined;
    const ids = relatedTo === undefined ? [] : [relatedTo];
    let res;
    try {
      res = await request(this.opts.url, {
        method: "POST",
        dispatcher: this.#agent,
        headers: { ...this.#requestHeaders(protocolVersion, "application/json, text/event-stream"), "content-type": "application/json" },
        body: JSON.stringify(msg),
      });
    } catch (err) {
      throw new CountersignError("CS_ERR_UPSTREAM_UNAVAILABLE", `POST ${this.opts.url}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const sid = res.headers["mcp-session-id"];
    if (typeof sid === "string" && sid) this.upstreamSessionId = sid;
    const type = String(res.headers["content-type"] ?? "");

    if (res.statusCode === 202 || res.statusCode === 204) {
      await res.body.dump();
    } else if (res.statusCode === 404 && this.upstreamSessionId) {
      await res.body.dump();
      this.#closed = true;
      this.events.closed("closed", "the upstream ended its session (HTTP 404)");
      throw new CountersignError("CS_ERR_UPSTREAM_EXITED", "the upstream ended its session (HTTP 404)");
    } else if (type.includes("text/event-stream") && res.statusCode < 300) {
      this.#followAnswerStream(res.body, relatedTo, ids, protocolVersion);
    } else {
      let text: string;
      try {
        text = await readBodyLimited(res.body, this.opts.maxMessageBytes);
      } catch (err) {
        this.events.failure(err as CountersignError, ids);
        return;
      }
      const parsed = parseJsonOrUndefined(text);
      const isJsonRpc = Array.isArray(parsed) ? parsed.every((m) => classify(m)) : classify(parsed) !== undefined;
      if (parsed !== undefined && isJsonRpc) {
        // A JSON body (or a JSON-RPC error sent with an HTTP error status) is the upstream's answer.
        for (const m of Array.isArray(parsed) ? parsed : [parsed]) this.events.message(m, Buffer.byteLength(JSON.stringify(m)), relatedTo);
      } else if (res.statusCode >= 300) {
        this.events.failure(new CountersignError("CS_ERR_UPSTREAM_HTTP", `HTTP ${res.statusCode}: ${(this.opts.redact ?? String)(text.slice(0, 200))}`), ids);
      } else if (text.trim() !== "") {
        this.events.failure(new CountersignError("CS_ERR_UPSTREAM_HTTP", `HTTP ${res.statusCode} with a body that is not JSON-RPC`), ids);
      }
    }
    if (initialized && getOpened !== "open" && getOpened !== "none") void this.#openGetStream(protocolVersion);
  }

  /**
   * Reads one request's SSE stream in the background: the response and related messages arrive as
   * events. A stream that ends before answering is resumed as the 2025-11-25 transport says: after
   * the upstream's `retry` delay, a GET with Last-Event-ID (the id of the last event received),
   * again while the upstream keeps closing streams, within the RESUME_* bounds. A stream whose
   * events carry no id cannot be resumed, so its requests fail at once (they would otherwise wait
   * the whole upstream timeout); so do they when the bounds are spent, with CS_ERR_UPSTREAM_STREAM_LOST.
   */
  #followAnswerStream(first: Readable, relatedTo: JsonRpcId | undefined, ids: JsonRpcId[], protocolVersion: string | undefined): void {
    const unanswered = new Set(ids.map(String));
    let lastEventId: string | undefined;
    let retryMs: number | undefined;
    const read = (body: Readable) =>
      readSse(
        body,
        this.opts.maxMessageBytes,
        (ev) => {
          if (ev.id !== undefined) lastEventId = ev.id;
          const answered = this.#deliver(ev.data, relatedTo);
          for (const m of Array.isArray(answered) ? answered : [answered]) {
            const r = m as { id?: unknown; method?: unknown } | undefined;
            if (r && typeof r === "object" && r.method === undefined && (typeof r.id === "string" || typeof r.id === "number")) unanswered.delete(String(r.id));
          }
        },
        (bytes) => {
          unanswered.clear();
          this.events.failure(new CountersignError("CS_ERR_UPSTREAM_RESPONSE_TOO_LARGE", `${bytes} bytes, limit ${this.opts.maxMessageBytes}`, { keyPath: "limits.upstreamMessageBytes" }), ids);
        },
        (ms) => (retryMs = ms),
      ).catch((err) => {
        if (!this.#closed) this.opts.log.warn({ err }, "upstream SSE stream failed");
      });
    const abort = new AbortController();
    const left = () => ids.filter((id) => unanswered.has(String(id)));
    const lost = (why: string) => {
      const l = left();
      if (l.length > 0 && !this.#closed) this.events.failure(new CountersignError("CS_ERR_UPSTREAM_STREAM_LOST", why), l);
    };
    void (async () => {
      await read(first);
      if (left().length === 0 || this.#closed) return;
      if (lastEventId === undefined) {
        this.events.failure(new CountersignError("CS_ERR_UPSTREAM_HTTP", "the upstream closed its response stream before answering, and its events carry no id to resume from"), left());
        return;
      }
      this.#resumes.add(abort);
      const since = Date.now();
      let reconnects = 0;
      let failures = 0;
      let lastFailure = "";
      while (left().length > 0 && !this.#closed) {
        if (failures >= RESUME_MAX_FAILURES) return lost(`the upstream closed the stream carrying the answer and ${failures} attempts to resume it failed (last: ${lastFailure})`);
        if (reconnects >= RESUME_MAX_RECONNECTS) return lost(`the upstream closed the stream carrying the answer ${reconnects + 1} times; the gateway resumes it at most ${RESUME_MAX_RECONNECTS} times`);
        const asked = retryMs ?? RESUME_DEFAULT_DELAY_MS;
        if (asked > RESUME_MAX_DELAY_MS) return lost(`the upstream asks to wait ${asked} ms before resuming the stream carrying the answer; the gateway waits at most ${RESUME_MAX_DELAY_MS} ms`);
        const delay = Math.min(RESUME_MAX_DELAY_MS, Math.max(RESUME_MIN_DELAY_MS, asked) * 2 ** failures);
        if (Date.now() - since + delay > RESUME_WINDOW_MS) return lost(`the stream carrying the answer was not resumed with an answer within ${RESUME_WINDOW_MS} ms`);
        try {
          await sleep(delay, undefined, { signal: abort.signal });
        } catch {
          return; // closed
        }
        reconnects++;
        let res;
        try {
          res = await request(this.opts.url, {
            method: "GET",
            dispatcher: this.#agent,
            headers: { ...this.#requestHeaders(protocolVersion, "text/event-stream"), "last-event-id": lastEventId },
            signal: abort.signal,
          });
        } catch (err) {
          if (abort.signal.aborted) return;
          failures++;
          lastFailure = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
          continue;
        }
        const type = String(res.headers["content-type"] ?? "");
        if (res.statusCode !== 200 || !type.includes("text/event-stream")) {
          await res.body.dump().catch(() => {});
          // 405: the upstream offers no GET stream; 404: its session (and the stream) is gone.
          if (res.statusCode === 405 || res.statusCode === 404) return lost(`the upstream closed the stream carrying the answer and refused to resume it (GET with Last-Event-ID: HTTP ${res.statusCode})`);
          failures++;
          lastFailure = `HTTP ${res.statusCode}`;
          continue;
        }
        // The upstream took the reconnection: it may answer on it, or close it again (polling).
        failures = 0;
        await read(res.body);
      }
    })()
      .catch((err) => {
        if (!this.#closed) this.opts.log.warn({ err }, "resuming an upstream SSE stream failed");
        lost("resuming the stream carrying the answer failed");
      })
      .finally(() => this.#resumes.delete(abort));
  }

  /** Hands one SSE event's message on; returns it (undefined when there was none). */
  #deliver(data: string, relatedTo: JsonRpcId | undefined): unknown {
    if (data === "") return undefined; // priming events carry no message
    const parsed = parseJsonOrUndefined(data);
    if (parsed === undefined) {
      this.events.failure(new CountersignError("CS_ERR_UPSTREAM_HTTP", "an SSE event whose data is not JSON"), []);
      return undefined;
    }
    this.events.message(parsed, Buffer.byteLength(data), relatedTo);
    return parsed;
  }

  /**
   * The optional stream for server-initiated messages. Resolves once the upstream has answered the
   * GET: "open" (200, read in the background), "none" (405: the server has no such stream), or
   * "refused" (another status, or no answer within GET_STREAM_WAIT_MS).
   */
  #openGetStream(protocolVersion: string | undefined): Promise<"open" | "none" | "refused"> {
    this.#getStream?.abort();
    const abort = new AbortController();
    this.#getStream = abort;
    let answered!: (r: "open" | "none" | "refused") => void;
    const outcome = new Promise<"open" | "none" | "refused">((r) => (answered = r));
    const wait = setTimeout(() => answered("refused"), GET_STREAM_WAIT_MS);
    void (async () => {
      const res = await request(this.opts.url, {
        method: "GET",
        dispatcher: this.#agent,
        headers: this.#requestHeaders(protocolVersion, "text/event-stream"),
        signal: abort.signal,
      });
      if (res.statusCode !== 200) {
        answered(res.statusCode === 405 ? "none" : "refused");
        await res.body.dump();
        return;
      }
      answered("open");
      await this.#keepGetStream(res.body, protocolVersion, abort.signal);
    })()
      .catch((err) => {
        answered("refused");
        if (!abort.signal.aborted) this.opts.log.debug({ err }, "upstream GET stream ended");
      })
      .finally(() => clearTimeout(wait));
    return outcome.finally(() => clearTimeout(wait));
  }

  /**
   * Reads the GET stream and, each time the upstream ends it (SEP-1699 lets a server close it to
   * be polled) or the connection drops, opens it again after the upstream's `retry` (1 s when
   * none), with Last-Event-ID when its events carried ids, for as long as the session lives. A
   * stream that ends at once with nothing doubles the wait (up to RESUME_MAX_DELAY_MS); after
   * RESUME_MAX_FAILURES refused reopenings in a row, or a 404/405, the session goes on without it.
   */
  async #keepGetStream(first: Readable, protocolVersion: string | undefined, signal: AbortSignal): Promise<void> {
    let lastEventId: string | undefined;
    let retryMs: number | undefined;
    let events = 0;
    const read = (body: Readable) =>
      readSse(
        body,
        this.opts.maxMessageBytes,
        (ev) => {
          events++;
          if (ev.id !== undefined) lastEventId = ev.id;
          this.#deliver(ev.data, undefined);
        },
        (bytes) => this.events.failure(new CountersignError("CS_ERR_UPSTREAM_RESPONSE_TOO_LARGE", `${bytes} bytes`, { keyPath: "limits.upstreamMessageBytes" }), []),
        (ms) => (retryMs = ms),
      ).catch((err) => {
        if (!signal.aborted) this.opts.log.debug({ err }, "upstream GET stream dropped");
      });
    let opened = Date.now();
    let before = events;
    await read(first);
    let failures = 0;
    let idle = 0;
    while (!signal.aborted && !this.#closed) {
      // Ended at once with nothing: wait longer before the next try.
      idle = events === before && Date.now() - opened < RESUME_DEFAULT_DELAY_MS ? idle + 1 : 0;
      if (failures >= RESUME_MAX_FAILURES) {
        this.opts.log.warn({ url: this.opts.url, failures }, "the upstream's GET stream could not be reopened; server-initiated messages outside a request are not received in this session");
        return;
      }
      const delay = Math.min(RESUME_MAX_DELAY_MS, Math.max(RESUME_MIN_DELAY_MS, retryMs ?? RESUME_DEFAULT_DELAY_MS) * 2 ** (failures + idle));
      try {
        await sleep(delay, undefined, { signal });
      } catch {
        return; // closed
      }
      let res;
      try {
        res = await request(this.opts.url, {
          method: "GET",
          dispatcher: this.#agent,
          headers: { ...this.#requestHeaders(protocolVersion, "text/event-stream"), ...(lastEventId !== undefined ? { "last-event-id": lastEventId } : {}) },
          signal,
        });
      } catch {
        if (signal.aborted) return;
        failures++;
        continue;
      }
      if (res.statusCode !== 200 || !String(res.headers["content-type"] ?? "").includes("text/event-stream")) {
        await res.body.dump().catch(() => {});
        if (res.statusCode === 404 || res.statusCode === 405) return;
        failures++;
        continue;
      }
      failures = 0;
      opened = Date.now();
      before = events;
      await read(res.body);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#getStream?.abort();
    for (const r of this.#resumes) r.abort();
    if (this.upstreamSessionId) {
      try {
        const res = await request(this.opts.url, {
          method: "DELETE",
          dispatcher: this.#agent,
          headers: this.#requestHeaders(undefined, "application/json"),
          headersTimeout: 5000,
        });
        await res.body.dump();
      } catch {
        // The upstream is gone already; nothing to end.
      }
    }
    await this.#agent.close().catch(() => {});
  }
}
