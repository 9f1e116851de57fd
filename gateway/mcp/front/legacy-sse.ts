// The legacy HTTP+SSE front (protocol 2024-11-05) at /sse/<connection>: GET opens the session's
// one stream and names, in an `endpoint` event, where the client POSTs its messages.
import type { FastifyInstance } from "fastify";
import { CountersignError, jsonRpcErrorResponse } from "../../errors.js";
import type { JsonRpcMessage } from "../jsonrpc.js";
import type { ClientSink } from "../session.js";
import { parseJsonRpcBody } from "./body.js";
import { SseWriter } from "./sse.js";
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
  const { sessions, rejections } = deps;

  app.get<{ Params: { connection: string } }>("/sse/:connection", async (req, reply) => {
    try {
      const connection = sessions.connection(req.params.connection);
      if (!connection) throw new CountersignError("CS_ERR_UNKNOWN_CONNECTION", `'${req.params.connection}'`);
      const session = await sessions.open(connection, "sse", { remoteAddress: req.ip, userAgent: req.headers["user-agent"] });
      reply.hijack();
      const writer = new SseWriter(reply.raw, {});
      session.sink = new LegacySseSink(writer);
      writer.onClose(() => void session.close("client_disconnect"));
      writer.send(`/sse/${encodeURIComponent(connection.name)}/message?sessionId=${encodeURIComponent(session.id)}`, "endpoint");
      return reply;
    } catch (err) {
      const e = err instanceof CountersignError ? err : new CountersignError("CS_ERR_INTERNAL", String(err));
      return reply.code(e.http).type("application/json").send(jsonRpcErrorResponse(null, e));
    }
  });

  app.post<{ Params: { connection: string }; Querystring: { sessionId?: string } }>("/sse/:connection/message", async (req, reply) => {
    try {
      const connection = sessions.connection(req.params.connection);
      if (!connection) throw new CountersignError("CS_ERR_UNKNOWN_CONNECTION", `'${req.params.connection}'`);
      const sid = req.query.sessionId;
      if (!sid) throw new CountersignError("CS_ERR_SESSION_REQUIRED", "the sessionId query parameter from the endpoint event");
      const session = sessions.get(sid);
      if (!session || session.connection.name !== connection.name || session.frontTransport !== "sse") {
        rejections.record("unknown_session", { connection: connection.name }, { remoteAddress: req.ip });
        throw new CountersignError("CS_ERR_UNKNOWN_SESSION");
      }
      let parsed;
      try {
        parsed = parseJsonRpcBody(req.body);
      } catch (err) {
        const e = err as CountersignError;
        rejections.record(e.code === "CS_ERR_PARSE" ? "parse_error" : "invalid_jsonrpc", { connection: connection.name, sessionId: session.id }, {
          remoteAddress: req.ip,
          error: e.detail ?? e.code,
        });
        throw err;
      }
      // Requests are answered on the stream (errors included); only a failure to take a
      // notification or response is reported here.
      for (const m of parsed.messages) await session.fromClient(m.msg, m.c);
      return reply.code(202).type("text/plain").send("Accepted");
    } catch (err) {
      const e = err instanceof CountersignError ? err : new CountersignError("CS_ERR_INTERNAL", String(err));
      return reply.code(e.http).type("application/json").send(jsonRpcErrorResponse(null, e));
    }
  });
}
