// The MCP 2026-07-28 front on /mcp/<connection>: one POST, one request, no session. The caller is
// authenticated by the Streamable HTTP front before this runs; here the request climbs the
// validation ladder, then goes through the caller's bridge session (the gateway's own upstream
// session for this caller on this connection) and the same pipeline stages as a session's
// request: admit, restore, decide, record(in), forward | refuse | hold, then mask, record(out),
// deliver. The answer is JSON, or SSE when the caller accepts it and progress comes first.
//
// Held calls: a call a rule holds is answered at once with input_required: a URL-mode elicitation
// pointing at the console's page of its approval request, and a sealed requestState bound to the
// caller, connection, tool, arguments and approval. The retry with that state is checked (seal,
// binding, expiry, and that the approval's one forward is unused), then goes through the pipeline
// again, where the identical call finds its approval: approved, it is forwarded once.
//
// Records: a stateless request is recorded under its bridge session's id (a session row with
// front "stateless", bound to the caller's identity) and its HTTP request id. The JSON-RPC id on
// record is the bridge's own (countersign-<n>), the one the upstream saw; the caller's id is
// restored in its answer.
import type { FastifyReply, FastifyRequest } from "fastify";
import type { ApprovalService } from "../../../approvals/service.js";
import type { ApprovalRequest } from "../../../approvals/types.js";
import type { RejectionLog } from "../../../audit/rejections.js";
import { consoleUrlFor } from "../../../console/links.js";
import { hasToolRules } from "../../../auth/access.js";
import type { Identity } from "../../../auth/identity.js";
import { callerAddress } from "../../../cluster/relayed.js";
import type { ConnectionConfig } from "../../../config/load.js";
import { asCountersignError, CountersignError, jsonRpcErrorResponse, sendError } from "../../../errors.js";
import { maskForRecord } from "../../../pipeline/mask.js";
import { recordMessage } from "../../../pipeline/record.js";
import { progressTokenOf, type Classified, type JsonRpcMessage } from "../../jsonrpc.js";
import type { McpSession } from "../../mcp-session.js";
import type { SessionRegistry } from "../../sessions.js";
import { SseWriter } from "../sse.js";
import { relatedToModern, toModern, type CacheScope } from "./answer.js";
import { discoverResult, initializeBridge } from "./bridge.js";
import { alsoServed, passesThrough, passthroughAnswer, passthroughStatus, startPassthrough } from "./passthrough.js";
import { chooseEra, validate, type EraChoice, type StatelessHeaders } from "./ladder.js";
import { RequestStateSeal } from "./request-state.js";
import type { StatelessSink } from "./sink.js";

export interface StatelessDeps {
  sessions: SessionRegistry;
  rejections: RejectionLog;
}

type Posted = { msg: JsonRpcMessage; c: Classified };

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function headersOf(req: FastifyRequest): StatelessHeaders {
  return { protocolVersion: header(req, "mcp-protocol-version"), method: header(req, "mcp-method"), name: header(req, "mcp-name") };
}

/** Private when what the gateway answers depends on the caller (per-caller tool lists, masking pseudonyms). */
export function cacheScopeFor(connection: ConnectionConfig): CacheScope {
  return hasToolRules(connection.access) || connection.masker ? "private" : "public";
}

/** What a held request names: its tool, or its resource, or its method (as the approval does). */
function targetOf(params: Record<string, unknown>, method: string): string {
  return typeof params.name === "string" ? params.name : typeof params.uri === "string" ? params.uri : method;
}

/** The key of the approval's input request in an input_required result. */
export const APPROVAL_INPUT_KEY = "countersign/approval";

export class StatelessFront {
  readonly #seal: RequestStateSeal;
  readonly #publicUrl: string;
  readonly #approvals: ApprovalService | undefined;

  constructor(private readonly deps: StatelessDeps) {
    const support = deps.sessions.heldCallSupport;
    this.#seal = new RequestStateSeal(support.keyMaterial);
    this.#publicUrl = support.publicUrl;
    this.#approvals = support.approvals;
  }

  /** The era of a POST without Mcp-Session-Id carrying one message; undefined: the session path's. */
  claims(req: FastifyRequest, posted: Posted): Extract<EraChoice, { era: "modern" }> | undefined {
    const choice = chooseEra(headersOf(req), posted.msg);
    return choice.era === "modern" ? choice : undefined;
  }

  async post(req: FastifyRequest, reply: FastifyReply, connection: ConnectionConfig, identity: Identity, posted: Posted, choice: Extract<EraChoice, { era: "modern" }>): Promise<FastifyReply> {
    const id = posted.c.kind === "request" ? posted.c.id : null;
    try {
      if (choice.refusal) throw choice.refusal;
      const valid = validate(headersOf(req), posted.msg, posted.c.kind === "request", await alsoServed(this.deps.sessions, connection, posted.msg.method));
      // 2026-07-28 defines no client notification over HTTP: accepted, not forwarded.
      if (posted.c.kind !== "request") return await reply.code(202).send();
      const meta = { identity, remoteAddress: callerAddress(req), userAgent: header(req, "user-agent") };
      const session = await this.deps.sessions.bridge(connection, meta, (s) => {
        s.heldAsInputRequired = (msg, request) => this.#inputRequired(s, msg, request);
        return passesThrough(s) ? startPassthrough(s) : initializeBridge(s, req.id);
      });
      const scope = cacheScopeFor(session.connection);
      if (valid.method === "server/discover" && !passesThrough(session)) return await this.#discover(req, reply, session, posted, scope);
      return await this.#forward(req, reply, session, posted as Posted & { c: { kind: "request" } }, valid.method, scope, valid.clientCapabilities);
    } catch (err) {
      if (reply.sent || reply.raw.headersSent) return reply;
      const e = asCountersignError(err);
      if (e.code === "CS_ERR_INTERNAL") req.log.error({ err }, "unexpected error on a stateless request");
      this.deps.rejections.recordError(e.code, { connection: connection.name, sessionId: null, subject: identity.subject, requestId: req.id }, {
        remoteAddress: callerAddress(req),
        httpMethod: req.method,
        era: "2026-07-28",
        method: typeof posted.msg.method === "string" ? posted.msg.method.slice(0, 100) : null,
        ...(e.detail ? { detail: e.detail } : {}),
      });
      return sendError(reply, e, { id, era: "stateless" });
    }
  }

  /** server/discover: answered by the gateway from the upstream's initialize; both directions on record. */
  async #discover(req: FastifyRequest, reply: FastifyReply, session: McpSession, posted: Posted, scope: CacheScope): Promise<FastifyReply> {
    const sink = session.sink as StatelessSink;
    const out: JsonRpcMessage = { jsonrpc: "2.0", id: posted.c.id!, result: discoverResult(sink, scope) };
    const inView = maskForRecord(session, posted.msg);
    await recordMessage(session, "in", "client", inView.masked, posted.c, "server/discover", inView.hits, req.id);
    const outView = maskForRecord(session, out);
    await recordMessage(session, "out", "gateway", outView.masked, { kind: "response", id: posted.c.id! }, "server/discover", outView.hits, req.id);
    return reply.code(200).type("application/json").send(JSON.stringify(outView.masked));
  }

  /** A held call's answer: where to follow its approval, and the sealed state for the retry. */
  #inputRequired(session: McpSession, msg: JsonRpcMessage, request: ApprovalRequest): Record<string, unknown> {
    const params = (msg.params ?? {}) as Record<string, unknown>;
    const call = { identity: session.identity, connection: session.connection.name, tool: targetOf(params, String(msg.method)), arguments: params.arguments };
    const until = request.expiresAt.toISOString();
    return {
      resultType: "input_required",
      inputRequests: {
        [APPROVAL_INPUT_KEY]: {
          method: "elicitation/create",
          params: {
            mode: "url",
            url: consoleUrlFor(request.id, this.#publicUrl),
            message: `Countersign holds this call for an approval by ${request.approverGroup} (request ${request.id}, until ${until}). Follow it at the link; then send the call again with the requestState.`,
          },
        },
      },
      requestState: this.#seal.seal(call, request.id, request.expiresAt),
    };
  }

  /**
   * A retry's requestState: refused unless the gateway sealed it for this caller, connection, tool
   * and arguments, it has not expired, and its approval's one forward is unused. The MRTR fields
   * are the gateway's, not the upstream's: the request goes on without them.
   */
  async #resume(session: McpSession, msg: JsonRpcMessage, method: string): Promise<JsonRpcMessage> {
    const params = (msg.params ?? {}) as Record<string, unknown>;
    if (!("requestState" in params) && !("inputResponses" in params)) return msg;
    // A 2026-07-28 upstream's own round: its state and the caller's responses are the upstream's to judge.
    if (passesThrough(session) && !this.#seal.issued(params.requestState)) return msg;
    const call = { identity: session.identity, connection: session.connection.name, tool: targetOf(params, method), arguments: params.arguments };
    const approvalId = this.#seal.open(params.requestState, call);
    const approval = await this.#approvals?.store.get(approvalId);
    if (!approval) throw new CountersignError("CS_ERR_REQUEST_STATE_INVALID", `approval request ${approvalId} is not known here`);
    if (approval.forwardedAt) throw new CountersignError("CS_ERR_REQUEST_STATE_REPLAYED", `approval request ${approvalId} was used at ${approval.forwardedAt.toISOString()}`);
    const { requestState: _state, inputResponses: _responses, ...rest } = params;
    return { ...msg, params: rest };
  }

  /** Every other method: through the bridge session's pipeline, under the bridge's own request id. */
  async #forward(
    req: FastifyRequest,
    reply: FastifyReply,
    session: McpSession,
    posted: Posted & { c: { kind: "request" } },
    method: string,
    scope: CacheScope,
    capabilities: Record<string, unknown>,
  ): Promise<FastifyReply> {
    const sink = session.sink as StatelessSink;
    const resumed = await this.#resume(session, posted.msg, method);
    const bridgeId = sink.nextId();
    const token = progressTokenOf(resumed);
    let fwd: JsonRpcMessage = { ...resumed, id: bridgeId };
    if (token !== undefined) {
      // The caller's progress token, like its id, may collide with another client's: the bridge's is unique.
      const params = resumed.params as Record<string, unknown>;
      fwd = { ...fwd, params: { ...params, _meta: { ...(params._meta as Record<string, unknown>), progressToken: bridgeId } } };
    }
    const wantsSse = (header(req, "accept") ?? "").includes("text/event-stream");
    let sse: SseWriter | undefined;
    let answered = false;
    let resolve!: (msg: JsonRpcMessage) => void;
    const done = new Promise<JsonRpcMessage>((r) => (resolve = r));
    const waiting = sink.expect(bridgeId, {
      answer: (msg) => resolve(msg),
      related: (msg) => {
        if (!wantsSse || answered || reply.raw.destroyed) return false;
        if (!sse) {
          reply.hijack();
          sse = new SseWriter(reply.raw, {}, this.deps.sessions.clientBufferBytes);
        }
        return sse.send(JSON.stringify(relatedToModern(msg, token)));
      },
    });
    if (!waiting) throw new CountersignError("CS_ERR_TOO_MANY_IN_FLIGHT", "on this caller's bridge session");
    // Closing the request is the caller's cancellation in 2026-07-28: the pipeline ends or cancels it upstream.
    reply.raw.on("close", () => {
      if (answered) return;
      sink.forget(bridgeId);
      const cancelled: JsonRpcMessage = { jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: bridgeId, reason: "the caller closed its request" } };
      void session.fromClient(cancelled, { kind: "notification", method: "notifications/cancelled" }, { requestId: req.id }).catch(() => {});
    });
    const hints = { justification: header(req, "x-countersign-justification"), requestId: req.id };
    try {
      await session.fromClient(fwd, { kind: "request", id: bridgeId, method }, hints);
    } catch (err) {
      sink.forget(bridgeId);
      throw err;
    }
    const answer = await done;
    answered = true;
    // A held call asks for a URL elicitation: a caller that did not declare it cannot follow it.
    const result = answer.result as { resultType?: unknown; inputRequests?: Record<string, unknown> } | undefined;
    const elicitation = capabilities.elicitation as { url?: unknown } | undefined;
    if (result?.resultType === "input_required" && result.inputRequests?.[APPROVAL_INPUT_KEY] !== undefined && elicitation?.url === undefined) {
      const refusal = new CountersignError("CS_ERR_MISSING_CLIENT_CAPABILITY", "elicitation.url: this call is held for an approval followed at a URL", { data: { requiredCapabilities: { elicitation: { url: {} } } } });
      if (!sse) throw refusal;
      sse.send(JSON.stringify(jsonRpcErrorResponse(posted.c.id, refusal, "stateless")));
      sse.end();
      return reply;
    }
    const through = passesThrough(session);
    const modern = toModern(answer, posted.c.id, method, scope);
    const out = JSON.stringify(through ? passthroughAnswer(modern, method) : modern);
    if (sse) {
      sse.send(out);
      sse.end();
      return reply;
    }
    return reply.code(through ? passthroughStatus(modern) : 200).type("application/json").send(out);
  }
}

