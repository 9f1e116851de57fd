// DNS rebinding and foreign pages: a request to an MCP front (/mcp/…, /sse/…) must name this
// gateway in its Host header, and a browser's request must come from an allowed Origin, before
// anything else (authentication included) looks at it. A page on a name the attacker controls
// that re-resolves to 127.0.0.1 still sends its own name as Host; a page on another origin that
// posts to the gateway sends its own Origin. Clients that are not browsers send no Origin and
// pass on the Host check alone.
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { RejectionLog } from "../../audit/rejections.js";
import { callerAddress, isRelayed } from "../../cluster/relayed.js";
import { isLoopbackHost } from "../../config/load.js";
import { CountersignError, sendError } from "../../errors.js";

export interface HostOriginSettings {
  /** The address the gateway binds (server.host): on loopback, the loopback names are allowed. */
  bindHost: string;
  publicUrl: string;
  /** server.allowedHosts: more names (or name:port) this gateway answers to. */
  allowedHosts?: readonly string[] | undefined;
  /** server.allowedOrigins: origins of pages that may call the MCP fronts (publicUrl's origin always may). */
  allowedOrigins?: readonly string[] | undefined;
}

/** The fronts guarded here (the console, health and metrics endpoints have their own rules). */
const MCP_FRONT = /^\/(?:mcp|sse)(?:[/?]|$)/;

const HOST_NAME = /^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/;
const IPV6 = /^[0-9a-f:.]+$/;

/**
 * A Host header (or an allowedHosts entry) as { name, port }: name in lower case, one trailing dot
 * removed, IPv6 without brackets; undefined when it is not a plain host[:port] (user info, a
 * path, percent-escapes, several values or an unbracketed IPv6 address are all refused).
 */
export function parseHostHeader(value: string | undefined): { name: string; port?: string } | undefined {
  if (value === undefined || value.length === 0 || value.length > 300) return undefined;
  const text = value.toLowerCase();
  let name: string;
  let rest: string;
  if (text.startsWith("[")) {
    const end = text.indexOf("]");
    if (end < 0) return undefined;
    name = text.slice(1, end);
    rest = text.slice(end + 1);
    if (!IPV6.test(name) || !name.includes(":")) return undefined;
  } else {
    const colon = text.indexOf(":");
    name = colon < 0 ? text : text.slice(0, colon);
    rest = colon < 0 ? "" : text.slice(colon);
    if (name.endsWith(".")) name = name.slice(0, -1);
    if (!HOST_NAME.test(name)) return undefined;
  }
  if (rest === "") return { name };
  const port = /^:(\d{1,5})$/.exec(rest)?.[1];
  return port !== undefined && Number(port) <= 65535 ? { name, port: String(Number(port)) } : undefined;
}

/** scheme://host[:port] in one spelling (lower case, default port left out, no trailing dot); undefined when not an origin. */
export function normaliseOrigin(value: string | undefined): string | undefined {
  if (value === undefined || value.length > 300) return undefined;
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    return undefined; // "null" (sandboxed frames, file: pages) and anything that is not a URL
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return undefined;
  if (url.username || url.password || (url.pathname !== "/" && url.pathname !== "") || url.search || url.hash) return undefined;
  const host = url.hostname.endsWith(".") ? url.hostname.slice(0, -1) : url.hostname;
  return `${url.protocol}//${host}${url.port ? `:${url.port}` : ""}`;
}

export interface HostOriginCheck {
  /** The refusal for these headers, or undefined when they may pass. */
  refusal(host: string | undefined, origin: string | undefined): CountersignError | undefined;
}

export function hostOriginCheck(settings: HostOriginSettings): HostOriginCheck {
  // publicUrl's host is a wildcard address only when none was configured and the bind is on every
  // interface (the container's quick start): then the loopback names are the gateway's names too.
  const wildcardPublic = ["0.0.0.0", "::", "[::]"].includes(new URL(settings.publicUrl).hostname);
  const loopback = isLoopbackHost(settings.bindHost) || wildcardPublic;
  const named: Array<{ name: string; port?: string }> = [];
  for (const entry of settings.allowedHosts ?? []) {
    const parsed = parseHostHeader(entry);
    if (parsed) named.push(parsed);
  }
  // publicUrl's host is allowed on any port: a proxy in front may listen on another one.
  const publicName = parseHostHeader(new URL(settings.publicUrl).host)?.name;
  const hostAllowed = (h: { name: string; port?: string }) =>
    (loopback && isLoopbackHost(h.name)) || h.name === publicName || named.some((n) => n.name === h.name && (n.port === undefined || n.port === h.port));
  const origins = new Set<string>();
  for (const o of [settings.publicUrl, ...(settings.allowedOrigins ?? [])]) {
    const normal = normaliseOrigin(new URL(o).origin);
    if (normal) origins.add(normal);
  }
  return {
    refusal(host, origin) {
      const parsed = parseHostHeader(host);
      if (!parsed || !hostAllowed(parsed)) {
        return new CountersignError("CS_ERR_HOST_NOT_ALLOWED", `Host '${(host ?? "").slice(0, 100)}'`);
      }
      if (origin === undefined) return undefined;
      const normal = normaliseOrigin(origin);
      if (normal && origins.has(normal)) return undefined;
      return new CountersignError("CS_ERR_ORIGIN_NOT_ALLOWED", `Origin '${origin.slice(0, 100)}'`);
    },
  };
}

const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);

/** The onRequest hook; register it before authentication so a refused page costs no token check. */
export function registerHostOriginCheck(app: FastifyInstance, settings: HostOriginSettings, rejections: RejectionLog): void {
  const check = hostOriginCheck(settings);
  app.addHook("onRequest", async (req: FastifyRequest, reply) => {
    // By the route matched as well as the raw path, so an escaped spelling of the path cannot skip it.
    if (!MCP_FRONT.test(req.url) && !MCP_FRONT.test(req.routeOptions.url ?? "")) return;
    // A relayed request was checked by the replica it first reached (and is signed by it).
    if (isRelayed(req.raw)) return;
    const origin = req.headers.origin;
    const error = check.refusal(req.headers.host, Array.isArray(origin) ? origin.join(", ") : origin);
    if (!error) return;
    const connection = /^\/(?:mcp|sse)\/([^/?]+)/.exec(req.url)?.[1];
    rejections.recordError(error.code, { connection: null, requestId: req.id }, {
      remoteAddress: callerAddress(req),
      httpMethod: req.method,
      path: req.url.split("?")[0]!.slice(0, 200),
      ...(connection ? { requestedConnection: connection.slice(0, 200) } : {}),
      host: (first(req.headers.host) ?? null)?.slice(0, 200) ?? null,
      origin: (first(origin) ?? null)?.slice(0, 200) ?? null,
    });
    // Connection: close: the body, if any, is never read.
    return sendError(reply, error, { headers: { connection: "close" } });
  });
}
