// The MCP Streamable HTTP front at /mcp/<connection>: POST carries client messages (answered
// with 202, a JSON body, or an SSE stream that carries the responses and related messages), GET
// opens the stream for server-initiated messages, DELETE ends the session.
import { earlyIdentity } from "./early-auth.js";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { RejectionLog } from "../../audit/rejections.js";
import type { ClusterRelay } from "../../cluster/relay.js";
import { callerAddress } from "../../cluster/relayed.js";
import type { Authenticator } from "../../auth/authenticator.js";
import type { Identity } from "../../auth/identity.js";
import { asCountersignError, CountersignError, sendError } from "../../errors.js";
import { batchesAllowed, idKey, SUPPORTED_PROTOCOL_VERSIONS, type JsonRpcId, type JsonRpcMessage } from "../jsonrpc.js";
import type { ClientSink } from "../../pipeline/exchange.js";
import type { McpSession } from "../mcp-session.js";
import type { SessionRegistry } from "../sessions.js";
import { checkBatchShape, oversizedDetail, parseJsonRpcBody, postAnswerMode } from "./body.js";
import { EventStream, SessionEventStore } from "./event-store.js";
import { SseWriter } from "./sse.js";
import { StatelessFront } from "./stateless/front.js";
import { eraOfHeaders } from "./stateless/answer.js";

type Params = { connection: string };

/**
 * The answer to one POST that carried requests: an SSE stream, or a JSON body sent at the end.
 * The SSE stream is resumable: when the client's connection drops before every request is
 * answered, the answers are kept (with their event ids) for a GET with Last-Event-ID.
 */
class PostResponse {
  readonly #waiting = new Set<string>();
  readonly #collected: JsonRpcMessage[] = [];
  readonly #stream?: EventStream;
  #done = false;

  constructor(
    private readonly reply: FastifyReply,
    requestIds: JsonRpcId[],
    private readonly mode: "sse" | "json",
    private readonly batch: boolean,
    private readonly headers: Record<string, string>,
    private readonly onFinish: (ids: string[]) => void,
    maxUnreadBytes: number,
    newStream: () => EventStream,
  ) {
    for (const id of requestIds) this.#waiting.add(idKey(id));
    if (mode === "sse") {
      reply.hijack();
      const writer = new SseWriter(reply.raw, headers, maxUnreadBytes);
      this.#stream = newStream();
      this.#stream.attach(writer);
    } else {
      reply.raw.on("close", () => this.#finish());
    }
  }

  /** The stream a GET with Last-Event-ID resumes (SSE only). */
  get stream(): EventStream | undefined {
    return this.#stream;
  }

  get open(): boolean {
    return !this.#done;
  }

  /** Related messages may go on this POST's stream (kept for resumption when its connection dropped). */
  get canStream(): boolean {
    return this.mode === "sse" && !this.#done;
  }

  /** A client connection carries the stream now. */
  get live(): boolean {
    return this.canStream && this.#stream!.live;
  }

  /** Still waiting for the answer to this request. */
  waitsFor(id: JsonRpcId): boolean {
    return !this.#done && this.#waiting.has(idKey(id));
  }

  /** A message related to this POST's requests (progress, a server request…). SSE only. */
  sendRelated(msg: JsonRpcMessage): boolean {
    return this.canStream && this.#stream!.send(JSON.stringify(msg));
  }

  sendResponse(id: JsonRpcId, msg: JsonRpcMessage): boolean {
    if (this.#done) return false;
    this.#waiting.delete(idKey(id));
    let ok = true;
    if (this.mode === "sse") ok = this.#stream!.send(JSON.stringify(msg));
    else this.#collected.push(msg);
    if (this.#waiting.size === 0) this.#complete();
    return ok;
  }

  #complete(): void {
    if (this.mode === "sse") this.#stream!.end();
    else {
      void this.reply
        .code(200)
        .headers({ ...this.headers, "content-type": "application/json" })
        .send(JSON.stringify(this.batch ? this.#collected : this.#collected[0]));
    }
    this.#finish();
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.onFinish([...this.#waiting]);
  }
}

/** Routes a session's server→client messages to the right HTTP stream. */
export class StreamableHttpSink implements ClientSink {
  readonly #byRequest = new Map<string, PostResponse>();
  /** The session's events kept for Last-Event-ID resumption (bounded: event-store.ts). */
  readonly events = new SessionEventStore();
  #get?: { writer: SseWriter; stream: EventStream };
  /** Messages that had no stream to go to (serialised), delivered when the client opens its GET stream. Bounded in count and bytes. */
  readonly #backlog: string[] = [];
  #backlogBytes = 0;
  static readonly BACKLOG_MAX = 1000;

  /**
   * `maxBytes`: limits.clientBufferBytes, the bound of the backlog too. `protocolVersion`: the
   * session's negotiated revision (2025-11-25 streams start with a priming event).
   */
  constructor(
    private readonly maxBytes: number,
    private readonly protocolVersion: () => string | undefined = () => undefined,
  ) {}

  newStream(): EventStream {
    return new EventStream(this.events, () => (this.protocolVersion() ?? "") >= "2025-11-25");
  }

  attach(ids: JsonRpcId[], post: PostResponse): void {
    for (const id of ids) this.#byRequest.set(idKey(id), post);
  }

  detach(keys: string[]): void {
    for (const k of keys) this.#byRequest.delete(k);
  }

  /** Whether a POST stream is still waiting for the answer to this request. */
  waitsFor(id: JsonRpcId): boolean {
    return this.#byRequest.get(idKey(id))?.waitsFor(id) ?? false;
  }

  /** A new GET stream for server-initiated messages; `resumed`: the earlier GET stream it continues, with the events it missed. */
  openGet(writer: SseWriter, resumed?: { stream: EventStream; replay: Array<{ id: string; data: string }> }): void {
    const stream = resumed?.stream ?? this.newStream();
    const previous = this.#get;
    if (previous && previous.stream !== stream) previous.stream.end();
    // When the writer closes, the stream stays resumable: only a new GET stream, or the session's end, ends it.
    this.#get = { writer, stream };
    stream.attach(writer, resumed?.replay ?? []);
    for (const text of this.#backlog.splice(0)) stream.send(text);
    this.#backlogBytes = 0;
  }

  get hasGet(): boolean {
    return this.#get !== undefined && !this.#get.writer.closed;
  }

  /**
   * What a GET with Last-Event-ID resumes: a POST's stream still waiting for answers (or ended:
   * then only the replay), or the session's earlier GET stream. Unknown or partly dropped: refused.
   */
  resume(lastEventId: string): { kind: "post" | "get"; stream: EventStream; replay: Array<{ id: string; data: string }> } {
    const r = this.events.after(lastEventId);
    if (!r.ok) {
      throw new CountersignError("CS_ERR_RESUME_UNAVAILABLE", r.reason === "dropped" ? "events after this id were dropped at the session's event store bound" : "no stream of this session has this event id");
    }
    if (this.#get?.stream.id === r.stream) return { kind: "get", stream: this.#get.stream, replay: r.events };
    const post = [...this.#byRequest.values()].find((p) => p.stream?.id === r.stream);
    if (post?.stream) return { kind: "post", stream: post.stream, replay: r.events };
    // A stream that has ended: what it carried is replayed, then the response ends.
    const ended = new EventStream(this.events, () => false);
    ended.end();
    return { kind: "post", stream: ended, replay: r.events };
  }

  deliver(msg: JsonRpcMessage, route: { responseTo?: JsonRpcId | undefined; relatedTo?: JsonRpcId | undefined }): boolean {
    if (route.responseTo !== undefined) {
      const post = this.#byRequest.get(idKey(route.responseTo));
      this.#byRequest.delete(idKey(route.responseTo));
      return post ? post.sendResponse(route.responseTo, msg) : false;
    }
    // A message tied to a request goes on that request's stream; others on the GET stream; if
    // there is none, on the newest request stream a client is reading, or kept until a GET stream opens.
    const related = route.relatedTo === undefined ? undefined : this.#byRequest.get(idKey(route.relatedTo));
    if (related?.canStream) return related.sendRelated(msg);
    if (this.hasGet) return this.#get!.stream.send(JSON.stringify(msg));
    const newest = [...this.#byRequest.values()].reverse().find((p) => p.live);
    if (newest) return newest.sendRelated(msg);
    const text = JSON.stringify(msg);
    if (this.#backlog.length >= StreamableHttpSink.BACKLOG_MAX || this.#backlogBytes + text.length > this.maxBytes) return false;
    this.#backlog.push(text);
    this.#backlogBytes += text.length;
    return true;
  }

  end(): void {
    this.#get?.stream.end();
    for (const post of new Set(this.#byRequest.values())) post.stream?.end();
  }
}

export interface FrontDeps {
  sessions: SessionRegistry;
  rejections: RejectionLog;
  authenticator: Authenticator;
  /** Several replicas: relays requests for sessions another replica holds (absent: no relay). */
  cluster?: ClusterRelay | undefined;
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export function registerStreamableHttpFront(app: FastifyInstance, deps: FrontDeps): void {
  const { sessions, rejections, authenticator, cluster } = deps;
  const stateless = new StatelessFront({ sessions, rejections });

  /** authenticate: the first stage, before the body is even parsed. */
  const authenticate = (req: FastifyRequest<{ Params: Params }>) =>
    authenticator.authenticate(connectionOf(req), header(req, "authorization"), callerAddress(req), undefined, req.id);

  /**
   * A session another replica holds: its request is relayed there (after this replica has
   * authenticated the caller; the owner authenticates again). True when the answer has been sent.
   */
  const relayed = async (req: FastifyRequest<{ Params: Params }>, reply: FastifyReply): Promise<boolean> => {
    const sid = header(req, "mcp-session-id");
    if (!cluster || !sid || sessions.get(sid)) return false;
    return cluster.relay(req, reply, sid, { connection: req.params.connection, front: "streamable_http" });
  };

  const lookup = (req: FastifyRequest<{ Params: Params }>, identity: Identity): McpSession => {
    const sid = header(req, "mcp-session-id");
    if (!sid) throw new CountersignError("CS_ERR_SESSION_REQUIRED");
    const session = sessions.get(sid);
    if (!session || session.connection.name !== req.params.connection || session.frontTransport !== "streamable_http") {
      throw new CountersignError("CS_ERR_UNKNOWN_SESSION");
    }
    authenticator.checkSessionOwner(session.connection.name, session.id, session.identity, identity);
    const version = header(req, "mcp-protocol-version");
    if (version !== undefined && !(SUPPORTED_PROTOCOL_VERSIONS as readonly string[]).includes(version)) {
      throw new CountersignError("CS_ERR_UNSUPPORTED_PROTOCOL_VERSION", `${version}; supported: ${SUPPORTED_PROTOCOL_VERSIONS.join(", ")}`);
    }
    return session;
  };

  /** Answers a refused request, recording it (see RejectionLog.recordError for which codes count as bad input). */
  const refuse = (req: FastifyRequest<{ Params: Params }>, reply: FastifyReply, e: CountersignError, id: JsonRpcId | null = null) => {
    const known = sessions.connection(req.params.connection);
    const sid = header(req, "mcp-session-id");
    rejections.recordError(e.code, { connection: known?.name ?? null, sessionId: (sid && known && sessions.get(sid)?.connection.name === known.name ? sid : null), requestId: req.id }, {
      remoteAddress: callerAddress(req),
      httpMethod: req.method,
      ...(known ? {} : { requestedConnection: req.params.connection.slice(0, 200) }),
      ...(e.detail ? { detail: e.detail } : {}),
      ...(e.code === "CS_ERR_BODY_TOO_LARGE" ? oversizedDetail(req.body) : {}),
    });
    return sendError(reply, e, { id, era: eraOfHeaders(req.headers) });
  };

  const connectionOf = (req: FastifyRequest<{ Params: Params }>) => {
    const connection = sessions.connection(req.params.connection);
    if (!connection) throw new CountersignError("CS_ERR_UNKNOWN_CONNECTION", `'${req.params.connection}'`);
    return connection;
  };

  app.post<{ Params: Params }>("/mcp/:connection", async (req, reply) => {
    let requestId: JsonRpcId | null = null;
    try {
      const connection = connectionOf(req);
      // Authenticated before the body was read (early-auth.ts).
      const identity = earlyIdentity(req) ?? (await authenticate(req));
      // Refusals are recorded once, by `refuse` (parse errors, unknown sessions, batches…).
      const { messages, batch } = parseJsonRpcBody(req.body);
      // MCP 2026-07-28: chosen per request, by the body's _meta (or a modern MCP-Protocol-Version header).
      const modern = header(req, "mcp-session-id") ? undefined : batch ? stateless.refuseBatch(req, messages) : stateless.claims(req, messages[0]!);
      if (modern) return await stateless.post(req, reply, connection, identity, messages[0]!, modern);
      const init = messages.find((m) => m.c.method === "initialize" && m.c.kind === "request");
      if (init) requestId = init.c.id ?? null;

      // Every POST must accept both JSON and SSE (2025-03-26 and later); the client's ranking picks.
      const mode = postAnswerMode(header(req, "accept"));
      let session: McpSession;
      if (init) {
        if (messages.length > 1 || batch) throw new CountersignError("CS_ERR_INVALID_REQUEST", "initialize must be sent alone, not in a batch");
        if (header(req, "mcp-session-id")) throw new CountersignError("CS_ERR_INVALID_REQUEST", "initialize must not carry an Mcp-Session-Id");
        session = await sessions.open(connection, "streamable_http", { identity, remoteAddress: callerAddress(req), userAgent: header(req, "user-agent") });
        session.sink = new StreamableHttpSink(sessions.clientBufferBytes, () => session.protocolVersion);
        sessions.noteClientInfo(session, init.msg.params as Record<string, unknown> | undefined);
      } else {
        if (await relayed(req, reply)) return reply;
        session = lookup(req, identity);
        if (batch && !batchesAllowed(session.protocolVersion)) {
          throw new CountersignError("CS_ERR_BATCH_NOT_ALLOWED", `negotiated ${session.protocolVersion}`);
        }
        if (batch) checkBatchShape(messages);
      }
      const sink = session.sink as StreamableHttpSink;
      const hints = { justification: header(req, "x-countersign-justification"), requestId: req.id };
      const requestIds = messages.flatMap((m) => (m.c.kind === "request" ? [m.c.id] : []));

      if (requestIds.length === 0) {
        // Only notifications and responses: 202 once each is recorded and forwarded.
        for (const m of messages) await session.fromClient(m.msg, m.c, hints);
        return reply.code(202).send();
      }

      const post = new PostResponse(reply, requestIds, mode, batch, { "mcp-session-id": session.id }, (keys) => sink.detach(keys), sessions.clientBufferBytes, () => sink.newStream());
      sink.attach(requestIds, post);
      for (const m of messages) {
        try {
          await session.fromClient(m.msg, m.c, hints);
        } catch (err) {
          // A notification in a mixed batch failed: its requests still get their own answers.
          req.log.warn({ err: String(err) }, "a notification in a batch was not forwarded");
        }
      }
      return reply;
    } catch (err) {
      if (reply.sent || reply.raw.headersSent) return reply;
      const e = asCountersignError(err);
      return refuse(req, reply, e, requestId);
    }
  });

  app.get<{ Params: Params }>("/mcp/:connection", async (req, reply) => {
    try {
      const identity = await authenticate(req);
      if (await relayed(req, reply)) return reply;
      const session = lookup(req, identity);
      if (!(header(req, "accept") ?? "").includes("text/event-stream")) throw new CountersignError("CS_ERR_NOT_ACCEPTABLE");
      const sink = session.sink as StreamableHttpSink;
      const lastEventId = header(req, "last-event-id");
      // Resuming a POST's stream does not conflict with the GET stream; a second GET stream does.
      const resumed = lastEventId === undefined ? undefined : sink.resume(lastEventId.slice(0, 200));
      if (resumed?.kind !== "post" && sink.hasGet) throw new CountersignError("CS_ERR_STREAM_CONFLICT");
      reply.hijack();
      const writer = new SseWriter(reply.raw, { "mcp-session-id": session.id }, sessions.clientBufferBytes);
      // A session with an open stream is never idle (no eviction); a client that stops reading it is cut, on record.
      session.openStreams++;
      writer.onClose((reason) => {
        session.openStreams--;
        if (reason === "too_slow") sessions.recordTooSlow(session);
      });
      if (resumed?.kind === "post") resumed.stream.attach(writer, resumed.replay);
      else sink.openGet(writer, resumed);
      return reply;
    } catch (err) {
      const e = asCountersignError(err);
      return refuse(req, reply, e);
    }
  });

  app.delete<{ Params: Params }>("/mcp/:connection", async (req, reply) => {
    try {
      const identity = await authenticate(req);
      if (await relayed(req, reply)) return reply;
      const session = lookup(req, identity);
      await session.close("client_delete");
      return reply.code(200).send();
    } catch (err) {
      const e = asCountersignError(err);
      return refuse(req, reply, e);
    }
  });
}
