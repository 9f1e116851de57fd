// authenticate, before the body: a POST to an MCP front is authenticated in the onRequest hook,
// before a byte of its body is read, so an unauthenticated caller cannot make the gateway buffer
// bodies. A refused request gets its error with `Connection: close` (the unread body goes with the
// connection). The identity found is handed to the route, which does not authenticate again.
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Authenticator } from "../../auth/authenticator.js";
import type { Identity } from "../../auth/identity.js";
import type { RejectionLog } from "../../audit/rejections.js";
import { callerAddress } from "../../cluster/relayed.js";
import { asCountersignError, CountersignError, sendError } from "../../errors.js";
import { eraOfHeaders } from "./stateless/answer.js";
import type { SessionRegistry } from "../sessions.js";

/** Routes whose bodies are read only after authentication. */
const GUARDED_ROUTES = new Set(["/mcp/:connection", "/sse/:connection/message"]);

// The identity each guarded request was authenticated as; entries go with their request.
const identities = new WeakMap<FastifyRequest, Identity>();

/** The identity the onRequest hook authenticated this request as, if it did. */
export function earlyIdentity(req: FastifyRequest): Identity | undefined {
  return identities.get(req);
}

export interface EarlyAuthDeps {
  sessions: SessionRegistry;
  rejections: RejectionLog;
  authenticator: Authenticator;
  /** Requests being authenticated at once, at most (bound); more are refused with 429. */
  maxInFlight: number;
}

export function registerEarlyAuthentication(app: FastifyInstance, deps: EarlyAuthDeps): void {
  let inFlight = 0;
  app.addHook("onRequest", async (req, reply) => {
    if (req.method !== "POST" || !GUARDED_ROUTES.has(req.routeOptions.url ?? "")) return;
    const name = (req.params as { connection?: string }).connection ?? "";
    const connection = deps.sessions.connection(name);
    // An unknown connection is answered by the route (its own error), with no body to read first.
    if (!connection) return;
    let error: CountersignError | undefined;
    if (inFlight >= deps.maxInFlight) {
      error = new CountersignError("CS_ERR_RATE_LIMITED", `more than ${deps.maxInFlight} requests are waiting for authentication; retry in 1 s`);
    } else {
      inFlight++;
      try {
        const authorization = [req.headers.authorization].flat()[0];
        identities.set(req, await deps.authenticator.authenticate(connection, authorization, callerAddress(req), undefined, req.id));
      } catch (err) {
        error = asCountersignError(err);
      } finally {
        inFlight--;
      }
    }
    if (!error) return;
    deps.rejections.recordError(error.code, { connection: connection.name, requestId: req.id }, {
      remoteAddress: callerAddress(req),
      httpMethod: req.method,
      ...(error.detail ? { detail: error.detail } : {}),
    });
    return sendError(reply, error, { headers: { connection: "close" }, era: eraOfHeaders(req.headers) });
  });
}
