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
// The upstream's own requests during a bridged call (elicitation, sampling, roots) are rounds of
// input_required too (rounds.ts): the upstream call stays in flight, parked, and the retry with
// the round's sealed requestState answers the upstream's requests and resumes it.
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
import type { CallerContext } from "../../../pipeline/exchange.js";
import { recordMessage } from "../../../pipeline/record.js";
import { progressTokenOf, type Classified, type JsonRpcMessage } from "../../jsonrpc.js";
import type { McpSession } from "../../mcp-session.js";
import type { SessionRegistry } from "../../sessions.js";
import { SseWriter } from "../sse.js";
import { eraOfHeaders, relatedToModern, toModern, type CacheScope } from "./answer.js";
import { discoverResult, initializeBridge } from "./bridge.js";
import { chooseEra, CLIENT_CAPABILITIES_KEY, validate, type EraChoice, type StatelessHeaders } from "./ladder.js";
import { checkParamHeaders } from "./param-headers.js";
import { alsoServed, passesThrough, passthroughAnswer, passthroughStatus, startPassthrough } from "./passthrough.js";
import { RequestStateSeal, type Resumes } from "./request-state.js";
import { BridgedCall, capabilityFor, declares, INPUT_REQUIRED_METHODS, MAX_PARKED_CALLS, ROUND_TIMEOUT_MS, type Ask } from "./rounds.js";
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

/** A held call is answered with a URL elicitation: refused (-32021) when the request's envelope does not declare elicitation.url. */
function urlElicitationMissing(msg: JsonRpcMessage): CountersignError | undefined {
  const meta = ((msg.params ?? {}) as { _meta?: Record<string, unknown> })._meta;
  const declared = (meta?.[CLIENT_CAPABILITIES_KEY] ?? {}) as { elicitation?: { url?: unknown } };
  if (declared.elicitation?.url !== undefined) return undefined;
  return new CountersignError("CS_ERR_MISSING_CLIENT_CAPABILITY", "elicitation.url: this call is held for an approval followed at a URL", { data: { requiredCapabilities: { elicitation: { url: {} } } } });
}

/** Log levels, least severe first (RFC 5424, as MCP names them). */
const LOG_LEVELS = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"];
const LOG_LEVEL_KEY = "io.modelcontextprotocol/logLevel";

function logLevelOf(msg: JsonRpcMessage): number {
  const meta = ((msg.params ?? {}) as { _meta?: Record<string, unknown> })._meta;
  const level = meta?.[LOG_LEVEL_KEY];
  return typeof level === "string" ? LOG_LEVELS.indexOf(level) : -1;
}

/** Whether a 2025-era upstream's log message reaches a 2026 caller that asked for `wanted` (-1: none asked). */
function logWanted(msg: JsonRpcMessage, wanted: number): boolean {
  if (wanted < 0) return false;
  const level = LOG_LEVELS.indexOf(String((msg.params as { level?: unknown } | undefined)?.level));
  return level < 0 || level >= wanted;
}

/** The key of the approval's input request in an input_required result. */
export const APPROVAL_INPUT_KEY = "countersign/approval";

export class StatelessFront {
  readonly #seal: RequestStateSeal;
  readonly #publicUrl: string;
  readonly #approvals: ApprovalService | undefined;

  constructor(private readonly deps: StatelessDeps) {
    const support = deps.sessions.heldCallSupport;
    this.#seal = new RequestStateSeal(support.requestStateKeys);
    this.#publicUrl = support.publicUrl;
    this.#approvals = support.approvals;
  }

  /** The era of a POST without Mcp-Session-Id carrying one message; undefined: the session path's. */
  claims(req: FastifyRequest, posted: Posted): Extract<EraChoice, { era: "modern" }> | undefined {
    const choice = chooseEra(headersOf(req), posted.msg);
    return choice.era === "modern" ? choice : undefined;
  }

  /** A batch in which a message claims 2026-07-28: refused (-32600), as the revision has no batches. */
  refuseBatch(req: FastifyRequest, messages: readonly Posted[]): undefined {
    const modern = eraOfHeaders(req.headers) === "stateless" || messages.some((m) => chooseEra(headersOf(req), m.msg).era === "modern");
    if (modern) throw new CountersignError("CS_ERR_INVALID_REQUEST", "MCP 2026-07-28 has no JSON-RPC batches: send one request per POST");
    return undefined;
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
        s.holdRefusal = (msg) => urlElicitationMissing(msg);
        return passesThrough(s) ? startPassthrough(s) : initializeBridge(s, req.id);
      });
      const scope = cacheScopeFor(session.connection);
      if (valid.method === "server/discover" && !passesThrough(session)) return await this.#discover(req, reply, session, posted, scope);
      const info = valid.clientInfo;
      const caller: CallerContext = {
        clientName: typeof info?.name === "string" ? info.name : undefined,
        clientVersion: typeof info?.version === "string" ? info.version : undefined,
        remoteAddress: meta.remoteAddress,
        userAgent: meta.userAgent,
      };
      return await this.#forward(req, reply, session, posted as Posted & { c: { kind: "request" } }, valid.method, scope, valid.clientCapabilities, caller);
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
   * and arguments and it has not expired. It resumes either a held call (its approval's one
   * forward unused; the MRTR fields are the gateway's, not the upstream's: the request goes on
   * without them) or a bridged call's round (rounds.ts). A request with inputResponses and no
   * requestState is a new request: it goes on untouched.
   */
  async #resume(session: McpSession, msg: JsonRpcMessage, method: string, httpRequestId: string): Promise<{ msg: JsonRpcMessage } | { call: BridgedCall }> {
    const params = (msg.params ?? {}) as Record<string, unknown>;
    if (!("requestState" in params)) return { msg };
    // A 2026-07-28 upstream's own round: its state and the caller's responses are the upstream's to judge.
    if (passesThrough(session) && !this.#seal.issued(params.requestState)) return { msg };
    const call = { identity: session.identity, connection: session.connection.name, method, tool: targetOf(params, method), arguments: params.arguments };
    const resumes = this.#seal.open(params.requestState, call);
    if (resumes.kind === "input") return { call: await this.#resumeRound(session, resumes, params.inputResponses, httpRequestId) };
    const approval = await this.#approvals?.store.get(resumes.approval);
    if (!approval) throw new CountersignError("CS_ERR_REQUEST_STATE_INVALID", `approval request ${resumes.approval} is not known here`);
    if (approval.forwardedAt) throw new CountersignError("CS_ERR_REQUEST_STATE_REPLAYED", `approval request ${resumes.approval} was used at ${approval.forwardedAt.toISOString()}`);
    const { requestState: _state, inputResponses: _responses, ...rest } = params;
    return { msg: { ...msg, params: rest } };
  }

  /**
   * The retry of a bridged call's round: the parked call it names, still waiting for this round
   * (once only: the round moves on), and the caller's responses given to the upstream's open
   * requests, through the pipeline (restored, recorded). Keys the round did not ask are ignored;
   * a request left unanswered is asked again.
   */
  async #resumeRound(session: McpSession, r: Extract<Resumes, { kind: "input" }>, responses: unknown, httpRequestId: string): Promise<BridgedCall> {
    const sink = session.sink as StatelessSink;
    if (r.session !== session.id) throw new CountersignError("CS_ERR_REQUEST_STATE_INVALID", "it was issued on a bridge session that has ended: send the call again without requestState");
    const call = sink.parked.get(r.call);
    if (!call) {
      if (sink.parked.wasDone(r.call)) throw new CountersignError("CS_ERR_REQUEST_STATE_REPLAYED", "the call it resumes has been answered");
      throw new CountersignError("CS_ERR_REQUEST_STATE_INVALID", "no call waits for it (its round expired, or it was cancelled)");
    }
    if (!call.parked || call.round !== r.round) throw new CountersignError("CS_ERR_REQUEST_STATE_REPLAYED", `round ${r.round} of this call has been answered`);
    call.resume();
    sink.parked.release(call.bridgeId, false);
    const given = responses !== null && typeof responses === "object" && !Array.isArray(responses) ? (responses as Record<string, unknown>) : {};
    for (const { ask, response } of call.take(given)) {
      const answer: JsonRpcMessage = { jsonrpc: "2.0", id: ask.id, result: response as Record<string, unknown> };
      await session.fromClient(answer, { kind: "response", id: ask.id }, { requestId: httpRequestId });
    }
    return call;
  }

  /**
   * A bridged call given up: its open upstream requests answered with an error, the call cancelled
   * upstream (unless answered), and it no longer waits for a retry.
   */
  #abandon(session: McpSession, call: BridgedCall, why: string, httpRequestId: string | undefined): void {
    const sink = session.sink as StatelessSink;
    sink.parked.release(call.bridgeId, false);
    call.stop();
    for (const ask of call.drain()) sink.answerUpstream?.({ jsonrpc: "2.0", id: ask.id, error: { code: -32603, message: `Countersign: the stateless caller did not answer: ${why}` } });
    if (call.done) return;
    sink.forget(call.bridgeId);
    const cancelled: JsonRpcMessage = { jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: call.bridgeId, reason: why } };
    void session.fromClient(cancelled, { kind: "notification", method: "notifications/cancelled" }, { requestId: httpRequestId }).catch(() => {});
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
    caller: CallerContext,
  ): Promise<FastifyReply> {
    const sink = session.sink as StatelessSink;
    const params = (posted.msg.params ?? {}) as Record<string, unknown>;
    if (method === "tools/call" && typeof params.name === "string") checkParamHeaders(sink.headerParams.get(params.name), params.arguments, req.headers);
    const resumed = await this.#resume(session, posted.msg, method, req.id);
    const token = progressTokenOf(posted.msg);
    const wantsSse = (header(req, "accept") ?? "").includes("text/event-stream");
    let sse: SseWriter | undefined;
    let call: BridgedCall;
    if ("call" in resumed) call = resumed.call;
    else {
      const bridgeId = sink.nextId();
      let fwd: JsonRpcMessage = { ...resumed.msg, id: bridgeId };
      if (token !== undefined) {
        // The caller's progress token, like its id, may collide with another client's: the bridge's is unique.
        const params = resumed.msg.params as Record<string, unknown>;
        fwd = { ...fwd, params: { ...params, _meta: { ...(params._meta as Record<string, unknown>), progressToken: bridgeId } } };
      }
      const started = new BridgedCall(bridgeId, method);
      call = started;
      const waiting = sink.expect(bridgeId, {
        answer: (msg) => started.answered(msg),
        related: (msg) => started.related?.(msg) ?? false,
        ...(INPUT_REQUIRED_METHODS.has(method) ? { ask: (msg: JsonRpcMessage) => started.asked(msg), running: () => !started.parked && !started.done } : {}),
      });
      if (!waiting) throw new CountersignError("CS_ERR_TOO_MANY_IN_FLIGHT", "on this caller's bridge session");
      // The caller's client goes with the request: a held call's approvers see it (no session row says it).
      const hints = { justification: header(req, "x-countersign-justification"), requestId: req.id, caller };
      try {
        await session.fromClient(fwd, { kind: "request", id: bridgeId, method }, hints);
      } catch (err) {
        sink.forget(bridgeId);
        throw err;
      }
    }
    let settled = false;
    const logLevel = logLevelOf(posted.msg);
    call.related = (msg) => {
      // 2026-07-28: log messages only for a request that asks for them, at or above its level.
      if (msg.method === "notifications/message" && !logWanted(msg, logLevel)) return true;
      if (!wantsSse || settled || reply.raw.destroyed) return false;
      if (!sse) {
        reply.hijack();
        sse = new SseWriter(reply.raw, {}, this.deps.sessions.clientBufferBytes);
      }
      return sse.send(JSON.stringify(relatedToModern(msg, token)));
    };
    // Closing the request is the caller's cancellation in 2026-07-28: the pipeline ends or cancels it upstream.
    reply.raw.on("close", () => {
      if (!settled) this.#abandon(session, call, "the caller closed its request", req.id);
    });
    const outcome = await call.next();
    settled = true;
    call.related = undefined;
    const send = (out: string): FastifyReply => {
      if (!sse) return reply.code(200).type("application/json").send(out);
      sse.send(out);
      sse.end();
      return reply;
    };
    const refuse = (refusal: CountersignError): FastifyReply => {
      if (!sse) throw refusal;
      this.deps.rejections.recordError(refusal.code, { connection: session.connection.name, sessionId: null, subject: session.identity.subject, requestId: req.id }, { remoteAddress: callerAddress(req), httpMethod: req.method, era: "2026-07-28", method });
      sse.send(JSON.stringify(jsonRpcErrorResponse(posted.c.id, refusal, "stateless")));
      sse.end();
      return reply;
    };
    if (outcome.kind === "input") {
      const round = await this.#inputRound(req, session, posted, call, outcome.asks, method, capabilities);
      return round instanceof CountersignError ? refuse(round) : send(round);
    }
    sink.parked.release(call.bridgeId, true);
    const answer = outcome.msg;
    if (method === "tools/list") sink.learnTools((answer.result as { tools?: unknown } | undefined)?.tools);
    // A held call the caller could not follow (refused by the hold before any approval request, see holdRefusal).
    const error = answer.error as { data?: { code?: unknown } } | undefined;
    if (error?.data?.code === "CS_ERR_MISSING_CLIENT_CAPABILITY" && !sse) {
      this.deps.rejections.recordError("CS_ERR_MISSING_CLIENT_CAPABILITY", { connection: session.connection.name, sessionId: null, subject: session.identity.subject, requestId: req.id }, { remoteAddress: callerAddress(req), httpMethod: req.method, era: "2026-07-28", method });
      return reply.code(400).type("application/json").send(JSON.stringify(toModern(answer, posted.c.id, method, scope)));
    }
    const through = passesThrough(session);
    const modern = toModern(answer, posted.c.id, method, scope);
    const out = JSON.stringify(through ? passthroughAnswer(modern, method) : modern);
    // An upstream's own 2026-07-28 error keeps its HTTP status (400 for header, capability and version errors, 404 for a method).
    if (!sse && through) return reply.code(passthroughStatus(modern)).type("application/json").send(out);
    return send(out);
  }

  /**
   * A round of the upstream's requests, as the caller's input_required answer (recorded), with the
   * call parked for the retry; or the refusal when the caller did not declare a capability they
   * need (-32021, the call cancelled upstream) or the bridge already parks its most calls.
   */
  async #inputRound(req: FastifyRequest, session: McpSession, posted: Posted & { c: { kind: "request" } }, call: BridgedCall, asks: Ask[], method: string, capabilities: Record<string, unknown>): Promise<string | CountersignError> {
    const sink = session.sink as StatelessSink;
    const missing: Record<string, Record<string, unknown>> = {};
    for (const ask of asks) {
      const needed = capabilityFor(ask) ?? {};
      if (declares(capabilities, needed)) continue;
      for (const [k, v] of Object.entries(needed)) missing[k] = { ...missing[k], ...(v as Record<string, unknown>) };
    }
    if (Object.keys(missing).length > 0) {
      this.#abandon(session, call, "the caller did not declare the client capability the upstream's request needs", req.id);
      return new CountersignError("CS_ERR_MISSING_CLIENT_CAPABILITY", `${Object.keys(missing).join(", ")}: the upstream asks for it during this call`, { data: { requiredCapabilities: missing } });
    }
    if (!sink.parked.park(call)) {
      this.#abandon(session, call, "the bridge session parks its most calls waiting for input", req.id);
      return new CountersignError("CS_ERR_TOO_MANY_IN_FLIGHT", `${MAX_PARKED_CALLS} calls of this caller already wait for input responses`);
    }
    // Well within the upstream timeout, so that the gateway, not the timeout, ends a call nobody answers.
    const ttl = Math.min(ROUND_TIMEOUT_MS, Math.floor(session.deps.upstreamTimeoutMs / 2));
    call.park(ttl, () => this.#abandon(session, call, `no retry came within ${ttl} ms`, undefined));
    const params = (posted.msg.params ?? {}) as Record<string, unknown>;
    const bound = { identity: session.identity, connection: session.connection.name, method, tool: targetOf(params, method), arguments: params.arguments };
    const out: JsonRpcMessage = {
      jsonrpc: "2.0",
      id: posted.c.id,
      result: {
        resultType: "input_required",
        inputRequests: Object.fromEntries(asks.map((a) => [a.key, { method: a.method, params: a.params }])),
        requestState: this.#seal.sealInput(bound, { session: session.id, call: call.bridgeId, method, round: call.round }, Date.now() + ttl),
      },
    };
    const view = maskForRecord(session, out);
    await recordMessage(session, "out", "gateway", view.masked, { kind: "response", id: posted.c.id }, method, view.hits, req.id);
    return JSON.stringify(out);
  }
}

