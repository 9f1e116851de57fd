// The HTTP service: the MCP fronts, health endpoints, and the mapping of every framework error
// to the CS_ERR_* catalogue, so a client never sees an unexplained failure.
import { randomUUID } from "node:crypto";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { Recorder } from "./audit/recorder.js";
import type { RejectionLog } from "./audit/rejections.js";
import type { GatewayConfig } from "./config/load.js";
import { asCountersignError, CountersignError, sendError } from "./errors.js";
import type { Logger } from "./log.js";
import { readJsonBody } from "./mcp/front/body.js";
import { registerLegacySseFront } from "./mcp/front/legacy-sse.js";
import { registerEarlyAuthentication } from "./mcp/front/early-auth.js";
import { eraOfHeaders } from "./mcp/front/stateless/answer.js";
import { registerHostOriginCheck } from "./mcp/front/host-origin.js";
import { registerStreamableHttpFront } from "./mcp/front/streamable-http.js";
import type { SessionRegistry } from "./mcp/sessions.js";
import { checkUpstreams } from "./upstream-health.js";
import type { IdentityLayer } from "./auth/setup.js";
import type { Metrics } from "./metrics.js";
import type { ConfigReloader } from "./config/reload.js";
import type { Approvals } from "./approvals/setup.js";
import type { ClusterRelay } from "./cluster/relay.js";
import { isRelayed } from "./cluster/relayed.js";
import { registerApprovalsApi } from "./approvals/routes.js";

export interface ServerDeps {
  config: GatewayConfig;
  log: Logger;
  sessions: SessionRegistry;
  recorder: Recorder;
  rejections: RejectionLog;
  identity: IdentityLayer;
  metrics: Metrics;
  reloader: ConfigReloader;
  approvals?: Approvals | undefined;
  /** The hot pool (recorder, pseudonym map), for the database pool metrics. */
  auditPool?: { readonly totalCount: number; readonly idleCount: number; readonly waitingCount: number } | undefined;
  /** Tool pins: /readyz says whether changes from other replicas arrive by NOTIFY or only by polling. */
  pins?: { readonly listening: boolean } | undefined;
  /** Several replicas: relays requests for sessions held by another replica. */
  cluster?: ClusterRelay | undefined;
}

const HTTP_REQUEST_ID = /^[A-Za-z0-9._:@\/+=-]{1,128}$/;

/** The incoming X-Request-Id when well-formed (a proxy's or a relaying replica's), else a new UUID. */
export function httpRequestIdOf(req: { headers: Record<string, string | string[] | undefined> }): string {
  const given = req.headers["x-request-id"];
  return typeof given === "string" && HTTP_REQUEST_ID.test(given) ? given : randomUUID();
}

export function buildServer(deps: ServerDeps): FastifyInstance {
  const { config, sessions, recorder, rejections } = deps;
  const app: FastifyInstance = Fastify({
    loggerInstance: deps.log as unknown as FastifyBaseLogger,
    bodyLimit: config.limits.requestBodyBytes,
    forceCloseConnections: true,
    // Per-request log lines would repeat what the audit store records; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    // The request id (reqId in every log line) is the caller's X-Request-Id when well-formed, so
    // a proxy's id follows the request; it is returned in the response and stored with the records.
    requestIdHeader: false,
    genReqId: httpRequestIdOf,
    trustProxy: config.server.trustProxy,
    // A request must arrive whole in time: slow headers or a slow body cannot hold a connection
    // open (408). Streams the gateway writes are not limited by it.
    requestTimeout: config.limits.requestTimeoutMs,
    http: { headersTimeout: Math.min(config.limits.requestHeadersTimeoutMs, config.limits.requestTimeoutMs), connectionsCheckingInterval: Math.min(1000, config.limits.requestHeadersTimeoutMs) },
  });
  app.addHook("onRequest", async (req, reply) => {
    // On the raw response, so hijacked replies (SSE streams) carry it too.
    reply.raw.setHeader("x-request-id", req.id);
    // At debug level, one line per request (its reqId joins it to the records): the path only,
    // as a query string may hold a session id.
    if ((req.log as unknown as Logger).isLevelEnabled("debug")) req.log.debug({ method: req.method, path: req.url.split("?")[0], relayed: isRelayed(req.raw) }, "request");
  });

  // Bodies are kept as text: the fronts parse them, so a malformed body gets a JSON-RPC parse
  // error with the catalogue code rather than the framework's own.
  app.removeAllContentTypeParsers();
  // An authenticated caller's oversized body is drained and refused on a live connection (body.ts).
  app.addContentTypeParser(["application/json"], (req, payload, done) => readJsonBody(req, payload, config.limits.requestBodyBytes, done));

  // The one error handler: whatever a route or hook throws (a CountersignError, a framework
  // error, anything unexpected) is answered through the catalogue's mapping (errors.ts); the
  // framework's refusals of a body are recorded as rejections first.
  app.setErrorHandler((error: FastifyError, req, reply) => {
    const err = asCountersignError(error);
    const code = err.code;
    if (code === "CS_ERR_BODY_TOO_LARGE") {
      rejections.record("body_too_large", { connection: (req.params as { connection?: string })?.connection ?? null, requestId: req.id }, {
        remoteAddress: req.ip,
        limit: config.limits.requestBodyBytes,
        contentLength: req.headers["content-length"] ?? null,
      });
    }
    if (code === "CS_ERR_UNSUPPORTED_MEDIA_TYPE") {
      const connection = (req.params as { connection?: string })?.connection;
      rejections.recordError(code, { connection: connection && sessions.connection(connection) ? connection : null, requestId: req.id }, {
        remoteAddress: req.ip,
        contentType: req.headers["content-type"] ?? null,
      });
    }
    return sendError(reply, err, { era: eraOfHeaders(req.headers) });
  });

  app.setNotFoundHandler((_req, reply) => sendError(reply, new CountersignError("CS_ERR_NOT_FOUND")));

  app.get("/healthz", async () => ({ status: "ok" }));

  // Readiness stays green through a database outage: the gateway must stay reachable to answer
  // with the fail-closed error. The outage shows in the details.
  app.get("/readyz", async (_req, reply) => {
    const audit = recorder.status;
    const body = {
      status: sessions.shuttingDown ? "shutting_down" : "ready",
      config: { source: deps.reloader.current.source, hash: deps.reloader.current.hash },
      auditStore: {
        healthy: audit.healthy,
        ...(audit.lastError ? { lastError: audit.lastError } : {}),
        ...(audit.unhealthySince ? { unhealthySince: audit.unhealthySince.toISOString() } : {}),
      },
      sessions: sessions.size,
      sessionLimits: sessions.limits(),
      upstreams: checkUpstreams(deps.reloader.current.connections),
      ...(deps.approvals ? { approvals: approvalsReadiness(deps.approvals.service.status(), Boolean(deps.reloader.current.approvals?.slack)) } : {}),
      ...(deps.pins ? { toolPins: { listening: deps.pins.listening } } : {}),
    };
    return reply.code(sessions.shuttingDown ? 503 : 200).send(body);
  });

  // Prometheus exposition; protected by a bearer token when metrics.token is configured. With
  // metrics.port, only on that listener (metrics-listener.ts), never on the public port.
  if (config.metrics.enabled) {
    const token = config.metrics.token?.reveal();
    app.get("/metrics", async (req, reply) => {
      if (config.metrics.port > 0 && req.socket.localPort !== config.metrics.port) return reply.callNotFound();
      if (token && req.headers.authorization !== `Bearer ${token}`) {
        return sendError(reply, new CountersignError("CS_ERR_UNAUTHENTICATED", "metrics need the token configured in metrics.token", { keyPath: "metrics.token", headers: { "www-authenticate": 'Bearer realm="countersign-metrics"' } }));
      }
      const m = deps.metrics;
      m.sessions.reset();
      for (const c of deps.reloader.current.connections) m.sessions.set({ connection: c.name }, sessions.countFor(c.name));
      m.approvalsHeld.set(deps.approvals ? deps.approvals.service.status().waiters : 0);
      const pool = deps.auditPool;
      if (pool) for (const [state, n] of [["total", pool.totalCount], ["idle", pool.idleCount], ["waiting", pool.waitingCount]] as const) m.databasePool.set({ state }, n);
      return reply.type(m.registry.contentType).send(await m.registry.metrics());
    });
  }

  // The admin API: actions on the running gateway, by an authenticated member of admin.groups.
  // Tokens for it carry the audience <publicUrl>/admin.
  /** The admin API's caller: a member of admin.groups with a token for <publicUrl>/admin. */
  const adminCaller = async (req: FastifyRequest) => {
    const adminGroups = deps.reloader.current.admin.groups;
    if (adminGroups.length === 0) throw new CountersignError("CS_ERR_ADMIN_DISABLED");
    const pseudo = { ...config.connections[0]!, name: "admin", access: { anonymous: false, groups: adminGroups, tools: [] } };
    return deps.identity.authenticator.authenticate(pseudo, req.headers.authorization, req.ip, `${config.publicUrl}/admin`, req.id);
  };
  // Their errors are thrown: the error handler above answers them.
  app.post("/admin/reload", async (req, reply) => {
    const who = await adminCaller(req);
    const result = await deps.reloader.reload({ kind: "admin", subject: who.subject, email: who.email });
    return reply.code(result.applied ? 200 : 422).send(result);
  });
  // Closes sessions held by this replica: one by id, or every idle one. Each is recorded as
  // session_closed/admin_close, and the action itself with who asked.
  app.post<{ Body: unknown }>("/admin/sessions/close", async (req, reply) => {
    const who = await adminCaller(req);
    let body: { id?: unknown; idle?: unknown };
    try {
      body = ((typeof req.body === "string" ? JSON.parse(req.body || "{}") : req.body) ?? {}) as typeof body;
    } catch (err) {
      throw new CountersignError("CS_ERR_PARSE", (err as Error).message, { cause: err });
    }
    if (typeof body.id !== "string" && body.idle !== true) throw new CountersignError("CS_ERR_INVALID_REQUEST", 'send {"id": "<session id>"} or {"idle": true}');
    const closed = sessions.closeByAdmin(typeof body.id === "string" ? { id: body.id } : { idle: true });
    deps.recorder.eventBestEffort({ type: "admin_action", reason: "sessions_closed", subject: who.subject, detail: { by: who.email ?? who.subject, target: typeof body.id === "string" ? body.id : "idle", closed } });
    if (typeof body.id === "string" && closed.length === 0) throw new CountersignError("CS_ERR_UNKNOWN_SESSION", `no open session ${body.id.slice(0, 64)} on this replica`);
    return reply.code(200).send({ closed });
  });

  // /slack/events: the bot's interactivity endpoint in HTTP mode.
  deps.approvals?.registerRoutes(app);
  // /approvals: list and decide held calls with a token (audience <publicUrl>/approvals).
  if (deps.approvals) registerApprovalsApi(app, { config, authenticator: deps.identity.authenticator, service: deps.approvals.service });
  deps.identity.registerRoutes(app, () => deps.reloader.current.connections);
  const fronts = { sessions, rejections, authenticator: deps.identity.authenticator, cluster: deps.cluster };
  // Host and Origin first: a rebinding page or a foreign origin is refused before any other work.
  registerHostOriginCheck(app, { bindHost: config.server.host, publicUrl: config.publicUrl, allowedHosts: config.server.allowedHosts, allowedOrigins: config.server.allowedOrigins }, rejections);
  // authenticate before the body: unauthenticated callers cannot make the gateway read bodies.
  registerEarlyAuthentication(app, { sessions, rejections, authenticator: deps.identity.authenticator, maxInFlight: config.limits.unauthenticatedRequests });
  registerStreamableHttpFront(app, fronts);
  registerLegacySseFront(app, fronts);
  return app;
}

/** Slack's state in /readyz: `not_configured` without approvals.slack (never "healthy" for a Slack that is not there). */
function approvalsReadiness<S extends { slack: { healthy: boolean } }>(status: S, slackConfigured: boolean) {
  return { ...status, slack: slackConfigured ? { ...status.slack, status: status.slack.healthy ? "healthy" : "failing" } : { status: "not_configured" } };
}
