// The legacy HTTP+SSE front (protocol 2024-11-05) at /sse/<connection>: GET opens the session's
// one stream and names, in an `endpoint` event, where the client POSTs its messages.
import type { FastifyInstance } from "fastify";
import { asCountersignError, CountersignError, sendError } from "../../errors.js";
import { callerAddress } from "../../cluster/relayed.js";
import type { JsonRpcMessage } from "../jsonrpc.js";
import type { ClientSink } from "../../pipeline/exchange.js";
import { OversizedBody, oversizedDetail, parseJsonRpcBody } from "./body.js";
import { SseWriter } from "./sse.js";
import { earlyIdentity } from "./early-auth.js";
import type { FrontDeps } from "./streamable-http.js";

class LegacySseSink implements ClientSink {
  constructor(private readonly writer: SseWriter) {}
  deliver(msg: JsonRpcMessage): boolean {
    return this.writer.send(JSON.stringify(msg));
  }
  end(): void {
    this.writer.end();
  }
}

export function registerLegacySseFront(app: FastifyInstance, deps: FrontDeps): void {
  const { sessions, rejections, authenticator, cluster } = deps;

  /** Records a refused request (see RejectionLog.recordError for which codes count as bad input). */
  const refused = (connection: string, sessionId: string | null | undefined, e: CountersignError, remoteAddress: string, requestId: string, body?: unknown) => {
    const known = sessions.connection(connection);
    rejections.recordError(e.code, { connection: known?.name ?? null, sessionId: (sessionId && known && sessions.get(sessionId)?.connection.name === known.name ? sessionId : null), requestId }, {
      remoteAddress,
      ...(known ? {} : { requestedConnection: connection.slice(0, 200) }),
      ...(e.detail ? { detail: e.detail } : {}),
      ...(e.code === "CS_ERR_BODY_TOO_LARGE" ? oversizedDetail(body) : {}),
    });
  };

  app.get<{ Params: { connection: string } }>("/sse/:connection", async (req, reply) => {
    try {
      const connection = sessions.connection(req.params.connection);
      if (!connection) throw new CountersignError("CS_ERR_UNKNOWN_CONNECTION", `'${req.params.connection}'`);
      const identity = await authenticator.authenticate(connection, req.headers.authorization, req.ip, undefined, req.id);
      const session = await sessions.open(connection, "sse", { identity, remoteAddress: req.ip, userAgent: req.headers["user-agent"] });
      reply.hijack();
      const writer = new SseWriter(reply.raw, {}, sessions.clientBufferBytes);
      session.sink = new LegacySseSink(writer);
      session.openStreams++; // the stream is the session: it lives as long as the stream
      writer.onClose((reason) => void session.close(reason === "too_slow" ? "client_too_slow" : "client_disconnect"));
      writer.send(`/sse/${encodeURIComponent(connection.name)}/message?sessionId=${encodeURIComponent(session.id)}`, "endpoint");
      return reply;
    } catch (err) {
      const e = asCountersignError(err);
      refused(req.params.connection, null, e, req.ip, req.id);
      return sendError(reply, e);
    }
  });

  app.post<{ Params: { connection: string }; Querystring: { sessionId?: string } }>("/sse/:connection/message", async (req, reply) => {
    try {
      const connection = sessions.connection(req.params.connection);
      if (!connection) throw new CountersignError("CS_ERR_UNKNOWN_CONNECTION", `'${req.params.connection}'`);
      // Authenticated before the body was read (early-auth.ts).
      const identity = earlyIdentity(req) ?? (await authenticator.authenticate(connection, req.headers.authorization, callerAddress(req), undefined, req.id));
      const sid = req.query.sessionId;
      if (!sid) throw new CountersignError("CS_ERR_SESSION_REQUIRED", "the sessionId query parameter from the endpoint event");
      // A drained oversized body is refused here, before it could be relayed (body.ts).
      if (req.body instanceof OversizedBody) parseJsonRpcBody(req.body);
      // Another replica holds the session and its stream: the message goes there, and the answer
      // reaches the client on that stream.
      if (cluster && !sessions.get(sid) && (await cluster.relay(req, reply, sid, { connection: connection.name, front: "sse" }))) return reply;
      const session = sessions.get(sid);
      if (!session || session.connection.name !== connection.name || session.frontTransport !== "sse") {
        throw new CountersignError("CS_ERR_UNKNOWN_SESSION");
      }
      authenticator.checkSessionOwner(connection.name, session.id, session.identity, identity);
      // Refusals (parse errors, unknown sessions…) are recorded once, by `refused`.
      const parsed = parseJsonRpcBody(req.body);
      // Requests are answered on the stream (errors included); only a failure to take a
      // notification or response is reported here.
      const hints = { justification: [req.headers["x-countersign-justification"]].flat()[0], requestId: req.id };
      for (const m of parsed.messages) await session.fromClient(m.msg, m.c, hints);
      return reply.code(202).type("text/plain").send("Accepted");
    } catch (err) {
      const e = asCountersignError(err);
      if (reply.sent || reply.raw.headersSent) return reply;
      refused(req.params.connection, req.query.sessionId, e, callerAddress(req), req.id, req.body);
      return sendError(reply, e);
    }
  });
}
