// An upstream MCP server spoken to in MCP 2026-07-28 (stateless): every request is one POST with
// the envelope in params._meta and the standard headers; there is no upstream session. Over stdio
// (`wire`: upstream/stateless-stdio.ts) each request is one exchange on the session's child, the
// same in every other respect.
//
// Two kinds of session sit on it:
//   - a 2026-07-28 caller's (the stateless front's): its requests carry their own envelope and go
//     as they are; their answers, input_required results included, come back as they are.
//   - a 2025-era caller's session: the gateway answers initialize itself from server/discover,
//     puts the envelope built from that initialize (protocol version, client capabilities, client
//     info) on each request, and turns an input_required answer into requests to the client on its
//     session (elicitation, sampling, roots), then retries with the client's answers and the
//     upstream's requestState, up to MAX_ROUNDS. List-changed notifications and resource
//     subscriptions come from one subscriptions/listen stream the gateway keeps open for the
//     session (reopened with the new filter when the client subscribes or unsubscribes); what it
//     carries goes to the client's GET stream. What the revision has no form for (the upstream's
//     tasks) is answered with CS_ERR_NOT_BRIDGEABLE, never left waiting.
// Every message still passes the pipeline: the requests to the client and its answers are
// recorded as any server request is.
import type { Agent } from "undici";
import { CountersignError } from "../../errors.js";
import {
  classify,
  CLIENT_CAPABILITIES_KEY,
  CLIENT_INFO_KEY,
  idKey,
  PROTOCOL_VERSION_KEY,
  SUPPORTED_PROTOCOL_VERSIONS,
  type JsonRpcId,
  type JsonRpcMessage,
} from "../jsonrpc.js";
import { declaredHeaderParams, MAX_TOOLS_REMEMBERED, type HeaderParam } from "../front/stateless/param-headers.js";
import { createAgent, injectedHeaders } from "./http-common.js";
import { discoverRequest } from "./protocol.js";
import { headerValue, MODERN_VERSION, postModern } from "./stateless-wire.js";
import type { ModernWire, UpstreamEvents, UpstreamTransport } from "./types.js";
import type { HttpUpstreamOptions } from "./streamable-http.js";

/** Rounds of input_required one call may take (the SDK clients' own cap). */
export const MAX_ROUNDS = 10;
/** Requests to the client waiting for its answer, per session. */
const MAX_INPUT_WAITING = 64;
/** Calls in flight per session (the pipeline bounds them too; this bounds the abort handles). */
const MAX_IN_FLIGHT = 1024;
/** Pacing before a retry that carries only requestState (the upstream shed load). */
const STATE_ONLY_PACING_MS = 250;

/** Methods of a 2025-era session with no 2026-07-28 form. */
const NOT_BRIDGEABLE: Readonly<Record<string, string>> = {
  "tasks/get": "the upstream's tasks are an extension of MCP 2026-07-28 the gateway does not carry to a session",
  "tasks/list": "the upstream's tasks are an extension of MCP 2026-07-28 the gateway does not carry to a session",
  "tasks/result": "the upstream's tasks are an extension of MCP 2026-07-28 the gateway does not carry to a session",
  "tasks/cancel": "the upstream's tasks are an extension of MCP 2026-07-28 the gateway does not carry to a session",
};

/** Resources one session may subscribe to (each is named on the listen stream's filter). */
const MAX_SUBSCRIPTIONS = 256;
/** How long a subscription waits for the listen stream's acknowledgement. */
const LISTEN_ACK_MS = 5000;
const SUBSCRIPTION_ID_KEY = "io.modelcontextprotocol/subscriptionId";

/** The log levels of MCP, for logging/setLevel (kept per session, sent as io.modelcontextprotocol/logLevel). */
const LOG_LEVELS: ReadonlySet<string> = new Set(["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"]);
const LOG_LEVEL_KEY = "io.modelcontextprotocol/logLevel";

/** The client capability each kind of input request needs. */
const INPUT_CAPABILITY: Readonly<Record<string, string>> = { "elicitation/create": "elicitation", "sampling/createMessage": "sampling", "roots/list": "roots" };

/** The HTTP upstream's options (url, headers, TLS, limits, identity, redaction), and what 2026-07-28 adds. */
export interface StatelessHttpOptions extends HttpUpstreamOptions {
  /** server/discover's result from the connection's probe, if fresh: initialize is answered from it. */
  discovered?: Record<string, unknown> | undefined;
  /** A 2026-07-28 caller's session: its requests carry their own envelope and go as they are. */
  passthrough: boolean;
  /** Carries the requests instead of HTTP POSTs to `url` (a stdio child: upstream/stateless-stdio.ts). */
  wire?: ModernWire | undefined;
}

interface Envelope {
  capabilities: Record<string, unknown>;
  clientInfo: unknown;
}

export class StatelessHttpUpstream implements UpstreamTransport {
  readonly kind: "streamable_http" | "stdio";
  /** This upstream takes the 2026-07-28 envelope: the session must not take it off. */
  readonly stateless = true;
  readonly upstreamSessionId = undefined;
  readonly #agent: Agent;
  readonly #headers: Record<string, string>;
  /** What the 2025-era client said in initialize: the envelope of its requests. */
  #envelope: Envelope | undefined;
  /** The level logging/setLevel chose: each request asks the upstream for log lines at it. */
  #logLevel: string | undefined;
  /** The upstream's capabilities (from server/discover): what the listen stream asks for. */
  #capabilities: Record<string, unknown> = {};
  /** Resources the client subscribed to, and the listen stream that carries their updates. */
  readonly #subscriptions = new Set<string>();
  #listen: AbortController | undefined;
  /** Calls in flight, by the session's request id: closing them is cancellation in 2026-07-28. */
  readonly #inFlight = new Map<string, AbortController>();
  /** Requests made of the client for an input_required answer, waiting for its response. */
  readonly #waiting = new Map<string, { resolve: (msg: JsonRpcMessage) => void; reject: (err: CountersignError) => void }>();
  /** Per tool, the Mcp-Param-* headers its inputSchema declares (from the tools/list answers carried; bounded). */
  readonly #headerParams = new Map<string, HeaderParam[]>();
  #seq = 0;
  #closed = false;

  constructor(private readonly opts: StatelessHttpOptions, private readonly events: UpstreamEvents) {
    this.kind = opts.wire ? "stdio" : "streamable_http";
    this.#agent = createAgent(opts.tls);
    this.#headers = injectedHeaders(opts.headers);
  }

  async start(): Promise<void> {
    // Over HTTP nothing to open: each request is its own exchange. Over stdio: the child.
    await this.opts.wire?.start();
  }

  async send(msg: JsonRpcMessage, _protocolVersion: string | undefined): Promise<void> {
    if (this.#closed) throw new CountersignError("CS_ERR_UPSTREAM_EXITED", "the upstream session is closed");
    const c = classify(msg);
    if (!c) return;
    if (c.kind === "response" || c.kind === "error") {
      // The client's answer to a request the gateway made of it for an input_required result.
      const w = this.#waiting.get(idKey(c.id!));
      if (w) {
        this.#waiting.delete(idKey(c.id!));
        w.resolve(msg);
      }
      return;
    }
    if (c.kind === "notification") {
      if (c.method === "notifications/initialized" && !this.opts.passthrough) void this.#relisten().catch(() => {});
      if (c.method === "notifications/cancelled") {
        const id = (msg.params as { requestId?: unknown } | undefined)?.requestId;
        if (typeof id === "string" || typeof id === "number") this.#inFlight.get(idKey(id))?.abort();
      }
      // 2026-07-28 has no client notifications over HTTP (initialized, roots changes): nothing to send.
      return;
    }
    if (this.#inFlight.size >= MAX_IN_FLIGHT) throw new CountersignError("CS_ERR_TOO_MANY_IN_FLIGHT", "on this session's stateless upstream");
    void this.#request(msg, c.id, c.method);
  }

  async #request(msg: JsonRpcMessage, id: JsonRpcId, method: string): Promise<void> {
    const abort = new AbortController();
    this.#inFlight.set(idKey(id), abort);
    try {
      // A 2025-era client's own envelope keys, if it sent any, are replaced by its session's.
      const answer = this.opts.passthrough ? await this.#post(msg, id, abort.signal) : await this.#adapted(msg, id, method, abort.signal);
      if (method === "tools/list") this.#learnTools((answer?.result as { tools?: unknown } | undefined)?.tools);
      if (answer) this.events.message(answer, Buffer.byteLength(JSON.stringify(answer)), id);
    } catch (err) {
      const e = err instanceof CountersignError ? err : new CountersignError("CS_ERR_UPSTREAM_HTTP", (err as Error).message);
      // A cancelled call is answered by the pipeline (its cancel stage); nothing more to say.
      if (!abort.signal.aborted && !this.#closed) this.events.failure(e, [id]);
    } finally {
      this.#inFlight.delete(idKey(id));
    }
  }

  #post(msg: JsonRpcMessage, relatedTo: JsonRpcId, signal: AbortSignal): Promise<JsonRpcMessage> {
    return this.#exchange(msg, signal, (m, size) => this.events.message(m, size, relatedTo));
  }

  /** One request to the upstream, over its wire or by POST; `related` gets what comes before the answer. */
  #exchange(msg: JsonRpcMessage, signal: AbortSignal, related: (msg: unknown, size: number) => void): Promise<JsonRpcMessage> {
    if (this.opts.wire) return this.opts.wire.exchange(msg, { signal, related });
    return postModern(msg, {
      url: this.opts.url,
      agent: this.#agent,
      headers: { ...this.#headers, ...this.opts.identityHeaders?.(), ...this.#paramHeaders(msg) },
      maxMessageBytes: this.opts.maxMessageBytes,
      signal,
      related,
      redact: this.opts.redact,
    });
  }

  /** Learns the header parameters of the tools a tools/list answer lists. */
  #learnTools(tools: unknown): void {
    if (!Array.isArray(tools)) return;
    for (const t of tools as Array<{ name?: unknown; inputSchema?: unknown } | null>) {
      if (typeof t?.name !== "string") continue;
      const params = declaredHeaderParams(t.inputSchema);
      if (params.length === 0) this.#headerParams.delete(t.name);
      else if (this.#headerParams.has(t.name) || this.#headerParams.size < MAX_TOOLS_REMEMBERED) this.#headerParams.set(t.name, params);
    }
  }

  /**
   * The Mcp-Param-* headers of a tools/call (SEP-2243): each argument the tool declares with
   * x-mcp-header, mirrored from the body (the stateless front checked the caller's own against it).
   */
  #paramHeaders(msg: JsonRpcMessage): Record<string, string> {
    const params = (msg.params ?? {}) as { name?: unknown; arguments?: unknown };
    if (msg.method !== "tools/call" || typeof params.name !== "string") return {};
    const out: Record<string, string> = {};
    for (const p of this.#headerParams.get(params.name) ?? []) {
      let v: unknown = params.arguments;
      for (const k of p.path) v = v !== null && typeof v === "object" ? (v as Record<string, unknown>)[k] : undefined;
      const text = typeof v === "string" ? v : typeof v === "boolean" || (typeof v === "number" && Number.isFinite(v)) ? String(v) : undefined;
      if (text === undefined) continue;
      // A value that reads as the =?base64?…?= form itself goes encoded, so the server does not decode it.
      out[`mcp-param-${p.header.toLowerCase()}`] = /^=\?base64\?.*\?=$/.test(text) ? `=?base64?${Buffer.from(text, "utf8").toString("base64")}?=` : headerValue(text);
    }
    return out;
  }

  // ── a 2025-era client's session ───────────────────────────────────────────────────────────

  async #adapted(msg: JsonRpcMessage, id: JsonRpcId, method: string, signal: AbortSignal): Promise<JsonRpcMessage | undefined> {
    if (method === "initialize") return this.#initialize(msg, id, signal);
    // No 2026-07-28 form, and nothing the upstream needs to hear: the gateway answers.
    if (method === "ping") return { jsonrpc: "2.0", id, result: {} };
    if (method === "logging/setLevel") {
      const level = (msg.params as { level?: unknown } | undefined)?.level;
      if (typeof level !== "string" || !LOG_LEVELS.has(level)) return { jsonrpc: "2.0", id, error: { code: -32602, message: `Invalid params: level must be one of ${[...LOG_LEVELS].join(", ")}` } };
      this.#logLevel = level;
      return { jsonrpc: "2.0", id, result: {} };
    }
    const why = NOT_BRIDGEABLE[method];
    if (why !== undefined) throw new CountersignError("CS_ERR_NOT_BRIDGEABLE", `${method}: ${why}`);
    if (!this.#envelope) throw new CountersignError("CS_ERR_NOT_BRIDGEABLE", `${method} before initialize`);
    if (method === "resources/subscribe" || method === "resources/unsubscribe") return this.#subscribe(msg, id, method === "resources/subscribe");
    const original = (msg.params ?? {}) as Record<string, unknown>;
    const meta = { ...((original._meta ?? {}) as Record<string, unknown>), [PROTOCOL_VERSION_KEY]: MODERN_VERSION, [CLIENT_CAPABILITIES_KEY]: this.#envelope.capabilities, [CLIENT_INFO_KEY]: this.#envelope.clientInfo, ...(this.#logLevel ? { [LOG_LEVEL_KEY]: this.#logLevel } : {}) };
    let params: Record<string, unknown> = { ...original, _meta: meta };
    for (let round = 1; ; round++) {
      const answer = await this.#post({ ...msg, params }, id, signal);
      const result = answer.result as { resultType?: unknown; inputRequests?: unknown; requestState?: unknown } | undefined;
      if (result?.resultType !== "input_required") return answer.result !== undefined ? { ...answer, result: withoutResultType(answer.result as Record<string, unknown>) } : answer;
      if (round >= MAX_ROUNDS) throw new CountersignError("CS_ERR_NOT_BRIDGEABLE", `${method} still asked for input after ${MAX_ROUNDS} rounds`);
      const requests = result.inputRequests !== null && typeof result.inputRequests === "object" ? Object.entries(result.inputRequests as Record<string, unknown>) : [];
      if (requests.length === 0 && result.requestState === undefined) throw new CountersignError("CS_ERR_UPSTREAM_HTTP", "an input_required result with neither inputRequests nor requestState");
      if (requests.length === 0) await new Promise((r) => setTimeout(r, STATE_ONLY_PACING_MS));
      const responses: Record<string, unknown> = {};
      for (const [key, request] of requests) responses[key] = await this.#ask(request, id, signal);
      const { inputResponses: _r, requestState: _s, ...rest } = params;
      params = { ...rest, ...(requests.length > 0 ? { inputResponses: responses } : {}), ...(result.requestState !== undefined ? { requestState: result.requestState } : {}) };
    }
  }

  /** initialize, answered by the gateway from the upstream's server/discover. */
  async #initialize(msg: JsonRpcMessage, id: JsonRpcId, signal: AbortSignal): Promise<JsonRpcMessage> {
    const params = (msg.params ?? {}) as { protocolVersion?: unknown; capabilities?: unknown; clientInfo?: unknown };
    const capabilities = params.capabilities !== null && typeof params.capabilities === "object" ? (params.capabilities as Record<string, unknown>) : {};
    this.#envelope = { capabilities, clientInfo: params.clientInfo ?? {} };
    let discover = this.opts.discovered;
    if (!discover) {
      const answer = await this.#post(discoverRequest(`countersign-discover-${++this.#seq}`, capabilities, params.clientInfo ?? {}), id, signal);
      if (answer.error !== undefined || answer.result === null || typeof answer.result !== "object") {
        throw new CountersignError("CS_ERR_UPSTREAM_UNAVAILABLE", `server/discover was answered with ${JSON.stringify(answer.error ?? answer.result).slice(0, 200)}`);
      }
      discover = answer.result as Record<string, unknown>;
    }
    const requested = typeof params.protocolVersion === "string" ? params.protocolVersion : "";
    const known: readonly string[] = SUPPORTED_PROTOCOL_VERSIONS;
    const protocolVersion = known.includes(requested) ? requested : known[known.length - 1]!;
    this.#capabilities = (discover.capabilities ?? {}) as Record<string, unknown>;
    const meta = (discover._meta ?? {}) as Record<string, unknown>;
    const serverInfo = discover.serverInfo ?? meta["io.modelcontextprotocol/serverInfo"] ?? { name: "upstream", version: "unknown" };
    return {
      jsonrpc: "2.0",
      id,
      result: {
        protocolVersion,
        capabilities: sessionCapabilities(discover.capabilities),
        serverInfo,
        ...(typeof discover.instructions === "string" ? { instructions: discover.instructions } : {}),
      },
    };
  }

  /** resources/subscribe and unsubscribe: the listen stream is reopened with the new filter; answered once the upstream acknowledged it. */
  async #subscribe(msg: JsonRpcMessage, id: JsonRpcId, on: boolean): Promise<JsonRpcMessage> {
    const uri = (msg.params as { uri?: unknown } | undefined)?.uri;
    if (typeof uri !== "string") return { jsonrpc: "2.0", id, error: { code: -32602, message: "Invalid params: uri must be a string" } };
    if (on && !this.#subscriptions.has(uri) && this.#subscriptions.size >= MAX_SUBSCRIPTIONS) {
      throw new CountersignError("CS_ERR_NOT_BRIDGEABLE", `resources/subscribe: this session already subscribes to ${MAX_SUBSCRIPTIONS} resources`);
    }
    if (on) this.#subscriptions.add(uri);
    else this.#subscriptions.delete(uri);
    await this.#relisten();
    return { jsonrpc: "2.0", id, result: {} };
  }

  /**
   * (Re)opens the session's subscriptions/listen stream with the filter the session needs now:
   * the upstream's list-changed notifications and the subscribed resources. Resolves when the
   * upstream acknowledged it (or there is nothing to listen to); rejects when it did not.
   */
  #relisten(): Promise<void> {
    this.#listen?.abort();
    this.#listen = undefined;
    const caps = this.#capabilities as Record<string, { listChanged?: unknown } | undefined>;
    const filter: Record<string, unknown> = {};
    if (caps.tools?.listChanged) filter.toolsListChanged = true;
    if (caps.prompts?.listChanged) filter.promptsListChanged = true;
    if (caps.resources?.listChanged) filter.resourcesListChanged = true;
    if (this.#subscriptions.size > 0) filter.resourceSubscriptions = [...this.#subscriptions];
    if (Object.keys(filter).length === 0 || !this.#envelope || this.#closed) return Promise.resolve();
    const abort = new AbortController();
    this.#listen = abort;
    const id = `countersign-listen-${++this.#seq}`;
    const meta = { [PROTOCOL_VERSION_KEY]: MODERN_VERSION, [CLIENT_CAPABILITIES_KEY]: this.#envelope.capabilities, [CLIENT_INFO_KEY]: this.#envelope.clientInfo };
    let acknowledged!: () => void;
    let failed!: (err: CountersignError) => void;
    const ack = new Promise<void>((resolve, reject) => ((acknowledged = resolve), (failed = reject)));
    const timer = setTimeout(() => failed(new CountersignError("CS_ERR_UPSTREAM_TIMEOUT", `subscriptions/listen was not acknowledged within ${LISTEN_ACK_MS} ms`)), LISTEN_ACK_MS);
    timer.unref();
    void this.#exchange({ jsonrpc: "2.0", id, method: "subscriptions/listen", params: { notifications: filter, _meta: meta } }, abort.signal, (m, size) => {
        const n = m as { method?: unknown; params?: { _meta?: Record<string, unknown> } };
        if (n.method === "notifications/subscriptions/acknowledged") return acknowledged();
        // The subscription id is this stream's, not the client's session's: it goes; the rest is as sent.
        const meta = n.params?._meta;
        if (meta && SUBSCRIPTION_ID_KEY in meta) {
          const { [SUBSCRIPTION_ID_KEY]: _id, ...rest } = meta;
          const { _meta: _old, ...params } = n.params!;
          m = { ...(m as object), params: Object.keys(rest).length > 0 ? { ...params, _meta: rest } : params };
        }
        this.events.message(m, size);
      })
      .then((answer) => {
        if (answer.error !== undefined) failed(new CountersignError("CS_ERR_NOT_BRIDGEABLE", `subscriptions/listen was refused: ${JSON.stringify(answer.error).slice(0, 200)}`));
      })
      .catch((err: unknown) => {
        // Replaced by a newer stream (another subscription): that one answers for this one.
        if (abort.signal.aborted) return acknowledged();
        this.opts.log.debug({ err }, "the upstream's subscriptions/listen stream ended");
        failed(err instanceof CountersignError ? err : new CountersignError("CS_ERR_UPSTREAM_HTTP", String(err)));
      })
      .finally(() => clearTimeout(timer));
    return ack.finally(() => clearTimeout(timer));
  }

  /** One input request of an input_required result, asked of the client on its session; resolves with its bare result. */
  #ask(request: unknown, relatedTo: JsonRpcId, signal: AbortSignal): Promise<unknown> {
    const r = request as { method?: unknown; params?: unknown } | null;
    if (r === null || typeof r !== "object" || typeof r.method !== "string" || !(r.method in INPUT_CAPABILITY)) {
      return Promise.reject(new CountersignError("CS_ERR_NOT_BRIDGEABLE", `an input request the gateway cannot ask a session client: ${JSON.stringify(r?.method ?? null).slice(0, 60)}`));
    }
    const capability = INPUT_CAPABILITY[r.method]!;
    if (this.#envelope?.capabilities[capability] === undefined) {
      return Promise.reject(
        new CountersignError("CS_ERR_MISSING_CLIENT_CAPABILITY", `${capability}: the upstream asks the client for ${r.method}`, { data: { requiredCapabilities: { [capability]: {} } } }),
      );
    }
    if (this.#waiting.size >= MAX_INPUT_WAITING) return Promise.reject(new CountersignError("CS_ERR_TOO_MANY_IN_FLIGHT", "requests to the client for the upstream's input"));
    const id = `countersign-input-${++this.#seq}`;
    const ask: JsonRpcMessage = { jsonrpc: "2.0", id, method: r.method, ...(r.params !== undefined ? { params: r.params } : {}) };
    let onAbort: (() => void) | undefined;
    return new Promise<JsonRpcMessage>((resolve, reject) => {
      this.#waiting.set(idKey(id), { resolve, reject });
      onAbort = () => {
        this.#waiting.delete(idKey(id));
        reject(new CountersignError("CS_ERR_REQUEST_CANCELLED"));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.events.message(ask, Buffer.byteLength(JSON.stringify(ask)), relatedTo);
    }).then((answer) => {
      signal.removeEventListener("abort", onAbort!);
      if (answer.error !== undefined) {
        const e = answer.error as { message?: unknown };
        throw new CountersignError("CS_ERR_NOT_BRIDGEABLE", `the client refused ${String(r.method)}: ${String(e.message ?? "").slice(0, 200)}`);
      }
      return answer.result;
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const a of this.#inFlight.values()) a.abort();
    this.#listen?.abort();
    for (const w of this.#waiting.values()) w.reject(new CountersignError("CS_ERR_UPSTREAM_EXITED", "the session ended"));
    this.#waiting.clear();
    await this.#agent.close().catch(() => {});
    await this.opts.wire?.close();
  }
}

/** A 2025-era result: `resultType: "complete"` is the only kind a session knows, so it goes. */
function withoutResultType(result: Record<string, unknown>): Record<string, unknown> {
  if (result.resultType !== "complete") return result;
  const { resultType: _t, ...rest } = result;
  return rest;
}

/** The capabilities a 2025-era session is told: the upstream's, less tasks (the adapter does not carry them). */
function sessionCapabilities(caps: unknown): Record<string, unknown> {
  const out = { ...((caps ?? {}) as Record<string, unknown>) };
  delete out.tasks;
  return out;
}
