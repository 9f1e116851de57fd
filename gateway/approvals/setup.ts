// Builds the approvals layer from the configuration: the service (state in Postgres), the
// e-mail directory of approver groups, and, when Slack is configured, the bot (loaded only then,
// so the gateway does not depend on Slack unless it is used).
import type { ListenHub } from "../store/listener.js";
import type { Pool } from "../store/pools.js";
import type { FastifyInstance } from "fastify";
import type { Recorder } from "../audit/recorder.js";
import type { ApprovalsConfig } from "../config/load.js";
import type { Logger } from "../log.js";
import { EmailDirectory } from "./directory.js";
import { ApprovalService } from "./service.js";
import type { ArgumentsKey } from "./arguments-key.js";
import type { Clock } from "../clock.js";

export interface Approvals {
  service: ApprovalService;
  /** The hold in force now (a reload may change it; sessions opened after it use the new one). */
  readonly holdForMs: number;
  /**
   * A reload's approver groups, holdFor, reminders and escalation, in force when it returns. The
   * rest of approvals (Slack, intervals, listen, argumentsKey) is read only at start.
   */
  apply(next: ApprovalsConfig): void;
  /** Mounts /slack/events when the bot runs in HTTP mode. */
  registerRoutes(app: FastifyInstance): void;
  stop(): Promise<void>;
}

/** Whether the rule `ruleId` of `connection` asks approvers to confirm (approval.confirm: true). */
export function ruleAsksConfirm(config: { connections: Array<{ name: string; policy?: { rules?: Array<{ id: string; approval?: { confirm?: boolean } | undefined }> } | undefined }> }, connection: string, ruleId: string | null): boolean {
  if (!ruleId) return false;
  const c = config.connections.find((x) => x.name === connection);
  return c?.policy?.rules?.find((r) => r.id === ruleId)?.approval?.confirm === true;
}

export async function startApprovals(cfg: ApprovalsConfig, deps: { pool: Pool; hub: ListenHub; recorder: Recorder; log: Logger; argumentsKey?: ArgumentsKey | undefined; maskText?: ((connection: string, text: string) => string) | undefined; confirmRule?: ((connection: string, ruleId: string | null) => boolean) | undefined; sessionPage?: ((sessionId: string) => string) | undefined; clock?: Clock | undefined }): Promise<Approvals> {
  if (deps.argumentsKey?.warning) deps.log.warn({ source: deps.argumentsKey.source }, deps.argumentsKey.warning);
  // One record of groups, shared by the e-mail directory, the bot's directory and its notifier:
  // a reload replaces its entries in place, so every reader sees the new approvers at once.
  const groups: ApprovalsConfig["groups"] = { ...cfg.groups };
  let holdForMs = cfg.holdForMs;
  cfg = { ...cfg, groups };
  const service = new ApprovalService({
    pool: deps.pool,
    hub: deps.hub,
    recorder: deps.recorder,
    directory: new EmailDirectory(groups),
    log: deps.log,
    sweepIntervalMs: cfg.sweepIntervalMs,
    pollIntervalMs: cfg.pollIntervalMs,
    listen: cfg.listen,
    reminderEveryMs: cfg.reminderEveryMs,
    escalation: cfg.escalation,
    argumentsKey: deps.argumentsKey?.key,
    maskText: deps.maskText,
    clock: deps.clock,
    ...(cfg.slack ? { postAttempts: cfg.slack.postAttempts } : {}),
  });
  await service.start();
  let bot: Awaited<ReturnType<typeof import("../../bot/index.js").createSlackBot>> | undefined;
  let mount: ((app: FastifyInstance) => void) | undefined;
  if (cfg.slack) {
    const [{ createSlackBot }, { registerSlackRoutes }] = await Promise.all([import("../../bot/index.js"), import("../../bot/http.js")]);
    const created = await createSlackBot({ approvals: cfg, service, log: deps.log, confirmRule: deps.confirmRule, sessionPage: deps.sessionPage });
    bot = created;
    await created.start();
    if (created.mode === "http") mount = (app) => void registerSlackRoutes(app, { bot: created, recorder: deps.recorder, log: deps.log });
  }
  return {
    service,
    get holdForMs() {
      return holdForMs;
    },
    apply: (next) => {
      for (const name of Object.keys(groups)) delete groups[name];
      Object.assign(groups, next.groups);
      holdForMs = next.holdForMs;
      service.applySchedule({ reminderEveryMs: next.reminderEveryMs, escalation: next.escalation });
    },
    registerRoutes: (app) => mount?.(app),
    stop: async () => {
      await bot?.stop();
      await service.stop();
    },
  };
}
