// Where an exchange runs. The stages never see a session: they see this context, which a session
// implements for its messages and a stateless request can implement for one exchange (invariant 9).
import type { CountersignError } from "../errors.js";
import type { ApprovalService } from "../approvals/service.js";
import type { Recorder } from "../audit/recorder.js";
import type { Identity } from "../auth/identity.js";
import type { ConnectionConfig } from "../config/load.js";
import type { Logger } from "../log.js";
import type { JsonRpcId, JsonRpcMessage } from "../mcp/jsonrpc.js";
import type { GatewayTask, TaskOutcome, TaskRegistry } from "../mcp/tasks.js";
import type { Metrics } from "../metrics.js";
import type { PolicyDecision } from "../policy/engine.js";
import type { ToolPins } from "../pinning/service.js";
import type { ApprovalRequest } from "../approvals/types.js";
import type { Restorer as PseudonymMap } from "../masking/restore/index.js";
import type { ForwardClaims, PendingRequest } from "./exchange.js";
import type { PendingRequests } from "./pending.js";

/** The services every exchange shares, fixed at start (a reload swaps the connection, not these). */
export interface PipelineDeps {
  recorder: Recorder;
  log: Logger;
  metrics?: Metrics | undefined;
  /** Tool pins shared by the replicas; absent: no pinning. */
  pins?: ToolPins | undefined;
  /** Where require_approval calls are held; absent: such calls fail closed. */
  approvals?: { service: ApprovalService; holdForMs: number; tasks?: TaskRegistry | undefined } | undefined;
  /** The pseudonym map of the restore and mask stages (gateway/masking/restore); absent: nothing is restored. */
  restorer?: PseudonymMap | undefined;
  upstreamTimeoutMs: number;
  notificationsPerSecond: number;
  /** One info log line per answered client request (log.requests). */
  logRequests?: boolean | undefined;
}

export type Route = { responseTo?: JsonRpcId | undefined; relatedTo?: JsonRpcId | undefined };

/**
 * MCP tasks as another way of answering a call (pipeline/tasks/): the stages call these, the
 * task module implements them. Declared here so the stages do not depend on the task module.
 */
export interface TaskAnswering {
  readonly offered: boolean;
  offer(msg: JsonRpcMessage): JsonRpcMessage;
  decorateResponse(msg: JsonRpcMessage, p: PendingRequest): JsonRpcMessage;
  upstreamRunsAsTask(msg: JsonRpcMessage): boolean;
  answersRequest(msg: JsonRpcMessage, id: JsonRpcId, method: string): boolean;
  handleRequest(msg: JsonRpcMessage, id: JsonRpcId, method: string): Promise<void>;
  holdAsTask(msg: JsonRpcMessage, id: JsonRpcId, decision: PolicyDecision, request: ApprovalRequest, taskParams: { ttl?: number }, claims: ForwardClaims): Promise<void>;
  wrap(msg: JsonRpcMessage, id: JsonRpcId): Promise<void>;
  refuse(p: PendingRequest, result: Record<string, unknown>): Promise<void>;
  finish(task: GatewayTask, outcome: TaskOutcome): void;
}

export interface ExchangeContext {
  readonly deps: PipelineDeps;
  /** The session the exchange belongs to, or null for a stateless exchange. */
  readonly sessionId: string | null;
  readonly identity: Identity;
  /** The connection as configured now: a reload applies to what is in flight too. */
  readonly connection: ConnectionConfig;
  /** Client requests in flight, their progress tokens and holds (bounded). */
  readonly requests: PendingRequests;
  /** Tool name → fingerprint of the definition this caller was shown (tool pinning). */
  readonly toolHashes: Map<string, string>;
  /** No more messages move: pending requests are being answered. */
  readonly ended: boolean;
  /** Shutting down: new requests are refused so the drain can end. */
  readonly draining: boolean;
  readonly tasks: TaskAnswering | undefined;
  sendUpstream(msg: JsonRpcMessage): Promise<void>;
  /** Hands a committed message to the client's stream; false when there is none to take it. */
  toClient(msg: JsonRpcMessage, route: Route): boolean;
  /** Whether a client stream is attached at all (for the undeliverable event's reason). */
  readonly hasClientStream: boolean;
  /** The upstream answered initialize (sessions learn the protocol version here). */
  initialized(result: Record<string, unknown>): void;
  /**
   * For callers that take a held call's answer as an input_required result (MCP 2026-07-28
   * multi-round-trip requests: the stateless front): the result that answers a call whose approval
   * is pending, at once, instead of waiting. Absent: the call waits (or becomes a task).
   */
  readonly heldAsInputRequired?: ((msg: JsonRpcMessage, request: ApprovalRequest) => Record<string, unknown>) | undefined;
  /** With heldAsInputRequired: why this caller could not follow a hold's answer (refused before any approval request is opened). */
  readonly holdRefusal?: ((msg: JsonRpcMessage) => CountersignError | undefined) | undefined;
}

