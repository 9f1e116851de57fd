// An upstream MCP server spoken to in MCP 2026-07-28 (stateless): every request is one POST with
// the envelope in params._meta and the standard headers; there is no upstream session.
//
// Two kinds of session sit on it:
//   - a 2026-07-28 caller's (the stateless front's): its requests carry their own envelope and go
//     as they are; their answers, input_required results included, come back as they are.
//   - a 2025-era caller's session: the gateway answers initialize itself from server/discover,
//     puts the envelope built from that initialize (protocol version, client capabilities, client
//     info) on each request, and turns an input_required answer into requests to the client on its
//     session (elicitation, sampling, roots), then retries with the client's answers and the
//     upstream's requestState, up to MAX_ROUNDS. What the revision has no form for (resource
//     subscriptions, tasks) is answered with CS_ERR_NOT_BRIDGEABLE, never left waiting.
// Every message still passes the pipeline: the requests to the client and its answers are
// recorded as any server request is.
import type { Agent } from "undici";
import type { ConfigValue } from "../../config/secret.js";
import type { TlsConfig } from "../../config/load.js";
import { CountersignError } from "../../errors.js";
import type { Logger } from "../../log.js";
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
import { createAgent, injectedHeaders } from "./http-common.js";
import { discoverRequest } from "./protocol.js";
import { MODERN_VERSION, postModern } from "./stateless-wire.js";
import type { UpstreamEvents, UpstreamTransport } from "./types.js";

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
  "resources/subscribe": "resource subscriptions need subscriptions/listen, which the gateway does not map a session onto yet",
  "resources/unsubscribe": "resource subscriptions need subscriptions/listen, which the gateway does not map a session onto yet",
  "tasks/get": "the upstream's tasks are an extension of MCP 2026-07-28 the gateway does not carry to a session",
  "tasks/list": "the upstream's tasks are an extension of MCP 2026-07-28 the gateway does not carry to a session",
  "tasks/result": "the upstream's tasks are an extension of MCP 2026-07-28 the gateway does not carry to a session",
  "tasks/cancel": "the upstream's tasks are an extension of MCP 2026-07-28 the gateway does not carry to a session",
};

/** The log levels of MCP, for logging/setLevel (kept per session, sent as io.modelcontextprotocol/logLevel). */
const LOG_LEVELS: ReadonlySet<string> = new Set(["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"]);
const LOG_LEVEL_KEY = "io.modelcontextprotocol/logLevel";

/** The client capability each kind of input request needs. */
const INPUT_CAPABILITY: Readonly<Record<string, string>> = { "elicitation/create": "elicitation", "sampling/createMessage": "sampling", "roots/list": "roots" };

export interface StatelessHttpOptions {
  url: string;
  headers: Record<string, ConfigValue>;
  tls?: TlsConfig | undefined;
  maxMessageBytes: number;
  log: Logger;
  identityHeaders?: (() => Record<string, string>) | undefined;
  redact?: ((text: string) => string) | undefined;
  /** server/discover's result from the connection's probe, if fresh: initialize is answered from it. */
  discovered?: Record<string, unknown> | undefined;
  /** A 2026-07-28 caller's session: its requests carry their own envelope and go as they are. */
  passthrough: boolean;
}

interface Envelope {
  capabilities: Record<string, unknown>;
  clientInfo: unknown;
}

export class StatelessHttpUpstream implements UpstreamTransport {
  readonly kind = "streamable_http" as const;
  /** This upstream takes the 2026-07-28 envelope: the session must not take it off. */
  readonly stateless = true;
  readonly upstreamSessionId = undefined;
  readonly #agent: Agent;
  readonly #headers: Record<string, string>;
  /** What the 2025-era client said in initialize: the envelope of its requests. */
  #envelope: Envelope | undefined;
  /** The level logging/setLevel chose: each request asks the upstream for log lines at it. */
  #logLevel: string | undefined;
  /** Calls in flight, by the session's request id: closing them is cancellation in 2026-07-28. */
  readonly #inFlight = new Map<string, AbortController>();
  /** Requests made of the client for an input_required answer, waiting for its response. */
  readonly #waiting = new Map<string, { resolve: (msg: JsonRpcMessage) => void; reject: (err: CountersignError) => void }>();
  #seq = 0;
  #closed = false;

  constructor(private readonly opts: StatelessHttpOptions, private readonly events: UpstreamEvents) {
    this.#agent = createAgent(opts.tls);
    this.#headers = injectedHeaders(opts.headers);
  }

  async start(): Promise<void> {
    // Nothing to open: each request is its own exchange.
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
    return postModern(msg, {
      url: this.opts.url,
      agent: this.#agent,
      headers: { ...this.#headers, ...this.opts.identityHeaders?.() },
      maxMessageBytes: this.opts.maxMessageBytes,
      signal,
      related: (m, size) => this.events.message(m, size, relatedTo),
      redact: this.opts.redact,
    });
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
    return new Promise<JsonRpcMessage>((resolve, reject) => {
      this.#waiting.set(idKey(id), { resolve, reject });
      signal.addEventListener("abort", () => {
        this.#waiting.delete(idKey(id));
        reject(new CountersignError("CS_ERR_REQUEST_CANCELLED"));
      }, { once: true });
      this.events.message(ask, Buffer.byteLength(JSON.stringify(ask)), relatedTo);
    }).then((answer) => {
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
    for (const w of this.#waiting.values()) w.reject(new CountersignError("CS_ERR_UPSTREAM_EXITED", "the session ended"));
    this.#waiting.clear();
    await this.#agent.close().catch(() => {});
  }
}

/** A 2025-era result: `resultType: "complete"` is the only kind a session knows, so it goes. */
function withoutResultType(result: Record<string, unknown>): Record<string, unknown> {
  if (result.resultType !== "complete") return result;
  const { resultType: _t, ...rest } = result;
  return rest;
}

/**
 * The capabilities a 2025-era session is told: the upstream's, less what the adapter cannot carry
 * (subscriptions, list-changed notifications: they need subscriptions/listen; tasks).
 */
function sessionCapabilities(caps: unknown): Record<string, unknown> {
  const out = { ...((caps ?? {}) as Record<string, unknown>) };
  delete out.tasks;
  for (const k of ["tools", "prompts", "resources"]) {
    const cap = out[k];
    if (cap === null || typeof cap !== "object") continue;
    const { listChanged: _l, subscribe: _s, ...rest } = cap as Record<string, unknown>;
    out[k] = rest;
  }
  return out;
}
