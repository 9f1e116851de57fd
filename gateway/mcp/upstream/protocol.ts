// Which protocol the gateway speaks to a connection's upstream (connections[].protocol):
//   legacy       2025-era sessions (initialize), never probed; sse upstreams always.
//   2026-07-28   the stateless revision only, never initialize: a 2026 caller is passed through,
//                a 2025-era caller's session is adapted (upstream/stateless-http.ts; over stdio
//                with upstream/stateless-stdio.ts carrying the requests).
//   auto         stdio: legacy (a child is not started to be asked). HTTP: asks the upstream `server/discover`: when it answers for 2026-07-28, a 2026
//                caller is passed through; a 2025-era caller keeps a 2025-era session unless the
//                upstream refuses initialize too (asked once, then cached). Without an answer:
//                legacy, as before.
// Answers are cached per connection and URL for PROBE_TTL_MS, at most MAX_CACHED entries; a probe
// that could not reach the upstream is not cached (the session's own open reports it).
import { request } from "undici";
import type { ConnectionConfig } from "../../config/load.js";
import type { CountersignError } from "../../errors.js";
import type { Logger } from "../../log.js";
import { CLIENT_CAPABILITIES_KEY, CLIENT_INFO_KEY, PROTOCOL_VERSION_KEY, type JsonRpcMessage } from "../jsonrpc.js";
import { createAgent, injectedHeaders } from "./http-common.js";
import { MODERN_VERSION, postModern } from "./stateless-wire.js";

export type UpstreamProtocol = "legacy" | typeof MODERN_VERSION;

export const PROBE_TTL_MS = 5 * 60_000;
const MAX_CACHED = 1024;
const PROBE_TIMEOUT_MS = 5000;
/** How the gateway names itself to an upstream it probes. */
export const GATEWAY_CLIENT_INFO = { name: "countersign", version: "1" };

interface Probed {
  at: number;
  /** The upstream answered server/discover for 2026-07-28 (with this result). */
  discover: Record<string, unknown> | undefined;
  /** The upstream accepted a 2025-era initialize (asked only when needed). */
  legacy?: boolean | undefined;
}

/** A server/discover request as the gateway sends it on its own behalf (no client capabilities). */
export function discoverRequest(id: string, capabilities: Record<string, unknown> = {}, clientInfo: unknown = GATEWAY_CLIENT_INFO): JsonRpcMessage {
  return {
    jsonrpc: "2.0",
    id,
    method: "server/discover",
    params: { _meta: { [PROTOCOL_VERSION_KEY]: MODERN_VERSION, [CLIENT_CAPABILITIES_KEY]: capabilities, [CLIENT_INFO_KEY]: clientInfo } },
  };
}

export class UpstreamProtocols {
  readonly #cache = new Map<string, Probed>();
  /** Probes under way, per cache key: concurrent sessions wait for the same one (bounded like the cache). */
  readonly #probing = new Map<string, Promise<Record<string, unknown> | undefined | "unreachable">>();

  constructor(private readonly log: Logger, private readonly maxMessageBytes: () => number) {}

  /**
   * The protocol of a new session: `modernCaller` for the stateless front's sessions. Never
   * throws: an auto probe that fails means legacy.
   */
  async choose(connection: ConnectionConfig, modernCaller: boolean): Promise<UpstreamProtocol> {
    const u = connection.upstream;
    if (connection.protocol === "legacy") return "legacy";
    // 2026-07-28 is taken as configured (streamable_http and stdio; the config refuses it for sse).
    if (connection.protocol === MODERN_VERSION) return MODERN_VERSION;
    // auto probes HTTP upstreams only. A stdio server is not probed: server/discover on the
    // session's own child would reach a 2025-era server before initialize (not every one survives
    // it), and a child of its own for the probe is an extra process of the server.
    if (u.type !== "streamable_http") return "legacy";
    const key = JSON.stringify([connection.name, u.url]);
    let probed = this.#cache.get(key);
    if (!probed || Date.now() - probed.at > PROBE_TTL_MS) {
      let probing = this.#probing.get(key);
      if (!probing && this.#probing.size < MAX_CACHED) {
        probing = this.#discover(connection).finally(() => this.#probing.delete(key));
        this.#probing.set(key, probing);
      }
      const discover = await (probing ?? this.#discover(connection));
      if (discover === "unreachable") return "legacy";
      probed = { at: Date.now(), discover };
      this.#remember(key, probed);
    }
    if (!probed.discover) return "legacy";
    if (modernCaller) return MODERN_VERSION;
    if (probed.legacy === undefined) {
      const legacy = await this.#initialize(connection);
      if (legacy === "unreachable") return "legacy";
      probed.legacy = legacy;
    }
    return probed.legacy ? "legacy" : MODERN_VERSION;
  }

  /** What the last probe of this connection learnt (server/discover's result), if it is fresh. */
  discovered(connection: ConnectionConfig): Record<string, unknown> | undefined {
    const u = connection.upstream;
    if (u.type !== "streamable_http") return undefined;
    const p = this.#cache.get(JSON.stringify([connection.name, u.url]));
    return p && Date.now() - p.at <= PROBE_TTL_MS ? p.discover : undefined;
  }

  #remember(key: string, probed: Probed): void {
    this.#cache.delete(key);
    if (this.#cache.size >= MAX_CACHED) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(key, probed);
  }

  async #discover(connection: ConnectionConfig): Promise<Record<string, unknown> | undefined | "unreachable"> {
    const u = connection.upstream as Extract<ConnectionConfig["upstream"], { type: "streamable_http" }>;
    const agent = createAgent(u.tls);
    try {
      const answer = await postModern(discoverRequest("countersign-probe"), {
        url: u.url,
        agent,
        headers: injectedHeaders(u.headers),
        maxMessageBytes: this.maxMessageBytes(),
        signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
      });
      const result = answer.result as { supportedVersions?: unknown } | undefined;
      const modern = Array.isArray(result?.supportedVersions) && result.supportedVersions.includes(MODERN_VERSION);
      this.log.info({ connection: connection.name, modern }, "probed the upstream's protocol with server/discover");
      return modern ? (result as Record<string, unknown>) : undefined;
    } catch (err) {
      const e = err as CountersignError;
      if (e.code === "CS_ERR_UPSTREAM_UNAVAILABLE" || e.code === "CS_ERR_REQUEST_CANCELLED") return "unreachable";
      return undefined;
    } finally {
      void agent.close().catch(() => {});
    }
  }

  /** Whether the upstream takes a 2025-era initialize; the session it opens is ended at once. */
  async #initialize(connection: ConnectionConfig): Promise<boolean | "unreachable"> {
    const u = connection.upstream as Extract<ConnectionConfig["upstream"], { type: "streamable_http" }>;
    const agent = createAgent(u.tls);
    const headers = { ...injectedHeaders(u.headers), accept: "application/json, text/event-stream", "content-type": "application/json" };
    try {
      const res = await request(u.url, {
        method: "POST",
        dispatcher: agent,
        headers,
        body: JSON.stringify({ jsonrpc: "2.0", id: "countersign-probe", method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: GATEWAY_CLIENT_INFO } }),
        signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
      });
      const text = await res.body.text();
      const ok = res.statusCode < 300 && /"result"\s*:/.test(text);
      const sid = res.headers["mcp-session-id"];
      if (typeof sid === "string" && sid) {
        const end = await request(u.url, { method: "DELETE", dispatcher: agent, headers: { ...headers, "mcp-session-id": sid }, signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) }).catch(() => undefined);
        await end?.body.dump().catch(() => {});
      }
      this.log.info({ connection: connection.name, legacy: ok }, "probed whether the 2026-07-28 upstream also takes initialize");
      return ok;
    } catch {
      return "unreachable";
    } finally {
      void agent.close().catch(() => {});
    }
  }
}
