// The in-flight exchange and what the data path keeps about it: the shapes every stage shares,
// with no dependency on a session, so a stateless request can carry them as well as a session's.
import type { Classified, JsonRpcId, JsonRpcMessage } from "../mcp/jsonrpc.js";
import type { GatewayTask } from "../mcp/tasks.js";
import type { RequestLifecycle } from "./request-state.js";

/** Where committed server→client messages go: implemented by each front transport. */
export interface ClientSink {
  /** `responseTo`: the message answers this client request. `relatedTo`: it belongs to that request's stream. */
  deliver(msg: JsonRpcMessage, route: { responseTo?: JsonRpcId | undefined; relatedTo?: JsonRpcId | undefined }): boolean;
  /** The session is over: end the client's streams. */
  end(): void;
  /** Whether a client stream still waits for the answer to this request (a POST's stream; absent: none does). */
  waitsFor?(id: JsonRpcId): boolean;
}

/**
 * The client a request came from, where no session says it: a 2026-07-28 request names its
 * client in each request, and comes from its own address. Caller-supplied: shown escaped.
 */
export interface CallerContext {
  clientName?: string | undefined;
  clientVersion?: string | undefined;
  remoteAddress?: string | undefined;
  userAgent?: string | undefined;
}

/** What the front knows of a request besides its body. */
export interface RequestHints {
  /** From the X-Countersign-Justification header. */
  justification?: string | undefined;
  /** The HTTP request's id (the log's reqId): stored with the records it causes. */
  requestId?: string | undefined;
  /** The request's own client (2026-07-28); a session's is on its row. */
  caller?: CallerContext | undefined;
}

/** A message as recorded (fully masked) and as delivered to this caller (with its exemptions). */
export interface CallerView {
  record: JsonRpcMessage;
  deliver: JsonRpcMessage;
  hits: Record<string, number> | null;
  exempted: Record<string, number> | undefined;
}

/** Approvals claimed for one call's forward (two-phase): confirmed once sent, else released. */
export interface ForwardClaims {
  claimed: string[];
  /** Sent and confirmed, or handed to a task that settles the claims itself. */
  settled: boolean;
}

export interface PendingRequest {
  id: JsonRpcId;
  method: string;
  /** Where the request is: received → decided → held → forwarding → forwarded → answered | failed | cancelled. */
  lifecycle: RequestLifecycle;
  progressToken?: JsonRpcId | undefined;
  justification?: string | undefined;
  /** The HTTP request that carried it (its response's record carries the same id, in the requestId column). */
  httpRequestId?: string | undefined;
  /** The request's own client, where it said it (what approvers see of a held call's client). */
  caller?: CallerContext | undefined;
  /** The upstream timeout: armed when the request is forwarded (a held call is not waiting on the upstream). */
  timer?: NodeJS.Timeout | undefined;
  /** performance.now() when the request reached the gateway, and when it was forwarded. */
  receivedAt: number;
  forwardedAt?: number | undefined;
  /** The tool, resource or prompt it names (for the request log line). */
  target?: string | undefined;
  /** What the gateway decided, for the request log line: allow, block, held→approved, … */
  decision?: string | undefined;
  /** A task-augmented tools/call the gateway answers with a task (see tasks.ts). */
  taskParams?: { ttl?: number } | undefined;
  /** The gateway's own forward of a task's call: the answer completes the task instead of being delivered. */
  task?: GatewayTask | undefined;
  /** A first-page tasks/list the upstream answers: the gateway's tasks are added to it. */
  mergeTasks?: boolean | undefined;
}

/** One client message on its way through the stages (pipeline/inbound.ts). */
export interface Exchange {
  /** As received, then as restored: what is decided on and forwarded. */
  message: JsonRpcMessage;
  readonly c: Classified;
  readonly hints: RequestHints | undefined;
  /** The pending request this message is (requests only). */
  readonly pending: PendingRequest | undefined;
  /** The method its record carries (a client's answer: the method of the upstream request it answers). */
  readonly method: string | null;
  readonly httpRequestId: string | null;
  /** The caller's stated reason (policy/justification.ts: `_meta` wins, the header is percent-decoded). */
  readonly justification: string | undefined;
}
