// MCP tasks (protocol 2025-11-25) for the calls the gateway holds or wraps.
//
// Design. A client that can use tasks sends `tools/call` with `params.task`; instead of holding the
// request open while a person decides, the gateway answers at once with a task and the client polls
// (`tasks/get`), waits (`tasks/result`), lists (`tasks/list`) or cancels (`tasks/cancel`).
//
//   initialize ─▶ when the connection has approval rules (and approvals are configured) and the
//                 protocol is 2025-11-25 or later, the gateway merges
//                 `tasks: { list, cancel, requests.tools.call }` into the upstream's capabilities,
//                 and tools/list marks each tool `execution.taskSupport: "optional"` (a tool the
//                 upstream itself runs as a task keeps its own value).
//   tools/call + task, held     ─▶ a gateway task (working, "waiting for approval by …"); the
//                                  decision is awaited detached from the client's request, up to
//                                  the approval's expiry. Approved: forwarded once (claimForward),
//                                  without `task`, under a gateway request id; the upstream's answer
//                                  completes the task. Denied or expired: the task fails, and
//                                  tasks/result returns the same tool error a plain call would get.
//   tools/call + task, refused  ─▶ a task that has already failed with the refusal (tool error).
//   tools/call + task, allowed  ─▶ passed through untouched when the upstream runs that tool as a
//                                  task (its task ids are its own and their tasks/* go to it);
//                                  otherwise wrapped like an approved call: a gateway task, the
//                                  call forwarded without `task`, the answer completing the task.
//   tasks/* with a gateway task id (prefix `cst_`) ─▶ answered by the gateway; other ids go to the
//                                  upstream. tasks/list answers the gateway's tasks, followed on the
//                                  first page by the upstream's when the upstream lists tasks.
//
// Every request and answer passes the session's record(in) / record(out), like any message; the
// forwarded call is recorded as the gateway's own request before it is sent. tasks/result is masked
// for the caller at delivery, exactly like a direct response (with the same role exemptions and
// justification), so results are kept here unmasked only in memory, never in the store.
//
// State: tasks live in this gateway process, shared by its sessions, and outlive the session that
// created them (until their ttl), so a client may reconnect and read its result. They do not survive
// a restart; the approval does (PostgreSQL), so the identical call after a restart still gets its
// decision. Each task belongs to the caller's identity (issuer + subject; an anonymous caller's to its
// session) and to the connection: anyone else gets "task not found", the same answer as for an id that
// never existed. Ids carry 192 random bits.
//
// Cancelling a task that waits for approval ends the wait but leaves the approval open, as a
// cancel mid-hold does: the identical call later picks up the decision. Cancelling a forwarded call
// sends notifications/cancelled upstream.
import { randomBytes } from "node:crypto";
import type { Identity } from "../auth/identity.js";
import { CountersignError } from "../errors.js";
import { systemClock, type Clock, type ClockTimer } from "../clock.js";

export type TaskStatus = "working" | "input_required" | "completed" | "failed" | "cancelled";

export const TASK_ID_PREFIX = "cst_";
export const RELATED_TASK = "io.modelcontextprotocol/related-task";
export const IMMEDIATE_RESPONSE = "io.modelcontextprotocol/model-immediate-response";

/** Task lifetime bounds: a client may ask for less or more; the gateway keeps to these. */
export const TASK_TTL = { defaultMs: 60 * 60_000, minMs: 60_000, maxMs: 24 * 60 * 60_000, afterExpiryMs: 15 * 60_000 } as const;
/** Tasks one caller may have on this gateway at once (finished ones count until they expire). */
export const TASKS_PER_OWNER = 100;
/** Tasks this gateway process keeps at once, all callers together (bound of TaskRegistry). */
export const TASKS_TOTAL = 10_000;
/** Bytes of kept outcomes (serialised) this process holds for tasks/result, all tasks together. */
export const TASK_RESULT_BYTES = 64 * 1024 * 1024;

/** What tasks/result returns: the underlying call's result, or its JSON-RPC error. */
export type TaskOutcome = { result: Record<string, unknown> } | { error: Record<string, unknown> };

export interface GatewayTask {
  readonly taskId: string;
  readonly owner: string;
  readonly connection: string;
  readonly sessionId: string;
  readonly createdAt: Date;
  readonly ttlMs: number;
  readonly pollIntervalMs: number;
  /** The caller's justification on the call: masking exemptions at tasks/result depend on it. */
  readonly justification: string | undefined;
  status: TaskStatus;
  statusMessage: string | undefined;
  lastUpdatedAt: Date;
  outcome: TaskOutcome | undefined;
  /** The outcome is the upstream's answer (masked at delivery), not the gateway's own refusal. */
  fromUpstream: boolean;
  /** The approval request a held call waits for. */
  approvalId: string | undefined;
  /** The call has been sent to the upstream. */
  forwarded: boolean;
  /** Stops whatever the task waits for (the approval wait, or the forwarded call). */
  stop: ((why: "cancelled" | "expired") => void) | undefined;
  /** Serialised size of the kept outcome (counted against the registry's byte budget). */
  outcomeBytes?: number;
}

const TERMINAL: ReadonlySet<TaskStatus> = new Set(["completed", "failed", "cancelled"]);
export const isTerminal = (s: TaskStatus) => TERMINAL.has(s);

/** Who a task belongs to: the authenticated identity, or the session for an anonymous caller. */
export function taskOwner(identity: Identity, sessionId: string): string {
  return identity.kind === "anonymous" ? `session:${sessionId}` : `${identity.issuer}\u0000${identity.subject}`;
}

export const isGatewayTaskId = (id: unknown): id is string => typeof id === "string" && id.startsWith(TASK_ID_PREFIX);

/** The `task` of a task-augmented request's params, or undefined when the request has none. */
export function taskParamsOf(params: unknown): { ttl?: number } | undefined {
  const t = (params as { task?: unknown } | undefined)?.task;
  return t !== null && typeof t === "object" && !Array.isArray(t) ? (t as { ttl?: number }) : undefined;
}

/** Picks the ttl: the client's wish within bounds, and never shorter than `atLeastMs`. */
export function chooseTtl(requested: unknown, atLeastMs = 0): number {
  const wish = typeof requested === "number" && Number.isFinite(requested) && requested > 0 ? requested : TASK_TTL.defaultMs;
  return Math.round(Math.max(Math.min(Math.max(wish, TASK_TTL.minMs), TASK_TTL.maxMs), atLeastMs));
}

/** The tasks of this gateway process. */
export class TaskRegistry {
  /** Bounded: at most `maxTasks` (TASKS_TOTAL), and TASKS_PER_OWNER per caller; CS_ERR_TASK_LIMIT beyond. */
  readonly #tasks = new Map<string, GatewayTask>();
  readonly #waiters = new Map<string, Set<() => void>>();
  readonly #sweeper: ClockTimer;
  readonly #clock: Clock;
  readonly #maxTasks: number;
  readonly #maxResultBytes: number;
  #resultBytes = 0;

  constructor(opts: { sweepEveryMs?: number; maxTasks?: number; maxResultBytes?: number; clock?: Clock } = {}) {
    this.#maxTasks = opts.maxTasks ?? TASKS_TOTAL;
    this.#maxResultBytes = opts.maxResultBytes ?? TASK_RESULT_BYTES;
    this.#clock = opts.clock ?? systemClock;
    this.#sweeper = this.#clock.setInterval(() => this.sweep(), opts.sweepEveryMs ?? 30_000);
    this.#sweeper.unref();
  }

  /** Bytes of outcomes kept now. */
  get resultBytes(): number {
    return this.#resultBytes;
  }

  get size(): number {
    return this.#tasks.size;
  }

  create(init: { owner: string; connection: string; sessionId: string; ttlMs: number; pollIntervalMs: number; justification: string | undefined; statusMessage?: string | undefined }): GatewayTask {
    this.sweep();
    let held = 0;
    for (const t of this.#tasks.values()) if (t.owner === init.owner) held++;
    if (held >= TASKS_PER_OWNER) throw new CountersignError("CS_ERR_TASK_LIMIT", `${held} tasks are open or kept for you; the limit is ${TASKS_PER_OWNER}`);
    if (this.#tasks.size >= this.#maxTasks) throw new CountersignError("CS_ERR_TASK_LIMIT", `this gateway keeps at most ${this.#maxTasks} tasks for all callers together`);
    const now = this.#clock.date();
    const task: GatewayTask = {
      taskId: `${TASK_ID_PREFIX}${randomBytes(24).toString("base64url")}`,
      owner: init.owner,
      connection: init.connection,
      sessionId: init.sessionId,
      createdAt: now,
      ttlMs: init.ttlMs,
      pollIntervalMs: init.pollIntervalMs,
      justification: init.justification,
      status: "working",
      statusMessage: init.statusMessage,
      lastUpdatedAt: now,
      outcome: undefined,
      fromUpstream: false,
      approvalId: undefined,
      forwarded: false,
      stop: undefined,
    };
    this.#tasks.set(task.taskId, task);
    return task;
  }

  /** The caller's task, or undefined (unknown, expired, or someone else's: the caller cannot tell which). */
  find(taskId: unknown, owner: string, connection: string): GatewayTask | undefined {
    if (typeof taskId !== "string") return undefined;
    const t = this.#tasks.get(taskId);
    if (!t || t.owner !== owner || t.connection !== connection) return undefined;
    if (this.#expired(t, this.#clock.now())) {
      this.#drop(t);
      return undefined;
    }
    return t;
  }

  /** The caller's tasks on one connection, newest first. */
  list(owner: string, connection: string): GatewayTask[] {
    this.sweep();
    return [...this.#tasks.values()].filter((t) => t.owner === owner && t.connection === connection).sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
  }

  /** Moves a task on; a terminal task never changes again. Returns whether it changed. */
  update(task: GatewayTask, status: TaskStatus, statusMessage?: string | undefined, outcome?: TaskOutcome): boolean {
    if (isTerminal(task.status)) return false;
    task.status = status;
    if (statusMessage !== undefined) task.statusMessage = statusMessage;
    if (outcome) this.#keep(task, outcome);
    task.lastUpdatedAt = this.#clock.date();
    if (isTerminal(status)) {
      task.stop = undefined;
      const set = this.#waiters.get(task.taskId);
      this.#waiters.delete(task.taskId);
      for (const w of set ?? []) w();
    }
    return true;
  }

  /** Resolves once the task is terminal (at once if it is). */
  whenTerminal(task: GatewayTask): Promise<void> {
    if (isTerminal(task.status)) return Promise.resolve();
    return new Promise((resolve) => {
      let set = this.#waiters.get(task.taskId);
      if (!set) this.#waiters.set(task.taskId, (set = new Set()));
      set.add(resolve);
    });
  }

  /** Drops tasks past their ttl; one still running is stopped first. */
  sweep(): void {
    const now = this.#clock.now();
    for (const t of this.#tasks.values()) if (this.#expired(t, now)) this.#drop(t);
  }

  stop(): void {
    this.#clock.clearInterval(this.#sweeper);
    for (const t of this.#tasks.values()) t.stop?.("expired");
  }

  #expired(t: GatewayTask, now: number): boolean {
    return now > t.createdAt.getTime() + t.ttlMs;
  }

  /**
   * Keeps an outcome for tasks/result within the byte budget. Over it, the task keeps a clear
   * error instead (the full answer is in the audit record), so no caller can grow memory unbounded.
   */
  #keep(task: GatewayTask, outcome: TaskOutcome): void {
    this.#resultBytes -= task.outcomeBytes ?? 0;
    let bytes = Buffer.byteLength(JSON.stringify(outcome));
    if (this.#resultBytes + bytes > this.#maxResultBytes) {
      outcome = { error: new CountersignError("CS_ERR_TASK_RESULT_NOT_KEPT", `${bytes} bytes; ${this.#resultBytes} of ${this.#maxResultBytes} are in use`).toJsonRpcError() };
      bytes = Buffer.byteLength(JSON.stringify(outcome));
      task.status = "failed";
      task.statusMessage = "the result was too large to keep for tasks/result";
    }
    task.outcome = outcome;
    task.outcomeBytes = bytes;
    this.#resultBytes += bytes;
  }

  #drop(t: GatewayTask): void {
    t.stop?.("expired");
    this.update(t, "failed", "the task expired (its ttl ran out)", t.outcome ?? { error: new CountersignError("CS_ERR_TASK_NOT_FOUND", "the task expired").toJsonRpcError() });
    this.#resultBytes -= t.outcomeBytes ?? 0;
    t.outcomeBytes = 0;
    this.#tasks.delete(t.taskId);
  }
}

/** The Task object of the protocol. */
export function taskWire(t: GatewayTask): Record<string, unknown> {
  return {
    taskId: t.taskId,
    status: t.status,
    ...(t.statusMessage !== undefined ? { statusMessage: t.statusMessage } : {}),
    createdAt: t.createdAt.toISOString(),
    lastUpdatedAt: t.lastUpdatedAt.toISOString(),
    ttl: t.ttlMs,
    pollInterval: t.pollIntervalMs,
  };
}

/** The status a tool result gives its task: a tool error fails the task (as the protocol says). */
export function statusOfOutcome(o: TaskOutcome): "completed" | "failed" {
  if ("error" in o) return "failed";
  return (o.result as { isError?: unknown }).isError === true ? "failed" : "completed";
}

/** A short status message for an outcome. */
export function messageOfOutcome(o: TaskOutcome): string | undefined {
  if ("error" in o) return String((o.error as { message?: unknown }).message ?? "the call failed").slice(0, 500);
  if ((o.result as { isError?: unknown }).isError !== true) return undefined;
  const first = (o.result as { content?: Array<{ type?: unknown; text?: unknown }> }).content?.find((c) => c.type === "text");
  return typeof first?.text === "string" ? first.text.slice(0, 500) : "the tool reported an error";
}

/** The initialize result with the gateway's task support merged into the upstream's capabilities. */
export function advertiseTasks(result: Record<string, unknown>): Record<string, unknown> {
  const caps = (result.capabilities ?? {}) as Record<string, unknown>;
  const upstream = (caps.tasks ?? {}) as { requests?: { tools?: Record<string, unknown> } & Record<string, unknown> } & Record<string, unknown>;
  const tasks = {
    ...upstream,
    list: {},
    cancel: {},
    requests: { ...(upstream.requests ?? {}), tools: { ...(upstream.requests?.tools ?? {}), call: {} } },
  };
  return { ...result, capabilities: { ...caps, tasks } };
}

/** The upstream's own tool task support, from its initialize result (undefined: none). */
export function upstreamTaskSupport(result: Record<string, unknown>): { toolsCall: boolean; list: boolean; any: boolean } {
  const t = (result.capabilities as { tasks?: { list?: unknown; requests?: { tools?: { call?: unknown } } } } | undefined)?.tasks;
  return { toolsCall: !!t?.requests?.tools?.call, list: !!t?.list, any: !!t };
}

/**
 * Marks every tool as callable as a task. `upstreamTools` collects the tools the upstream runs as
 * tasks itself (optional or required), which keep their own value and are passed through.
 */
export function markTaskSupport(result: Record<string, unknown>, upstreamRunsTasks: boolean, upstreamTools: Map<string, string>): Record<string, unknown> {
  const tools = result.tools;
  if (!Array.isArray(tools)) return result;
  return {
    ...result,
    tools: tools.map((tool: Record<string, unknown>) => {
      if (tool === null || typeof tool !== "object") return tool;
      const execution = (tool.execution ?? {}) as Record<string, unknown>;
      const own = execution.taskSupport;
      if (upstreamRunsTasks && (own === "optional" || own === "required") && typeof tool.name === "string") {
        upstreamTools.set(tool.name, own);
        return tool;
      }
      return { ...tool, execution: { ...execution, taskSupport: "optional" } };
    }),
  };
}
