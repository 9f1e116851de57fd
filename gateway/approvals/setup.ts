// Builds the approvals layer from the configuration: the service (state in Postgres), the
// e-mail directory of approver groups, and, when Slack is configured, the bot (loaded only then,
// so the gateway does not depend on Slack unless it is used).
import type { FastifyInstance } from "fastify";
import type { Recorder } from "../audit/recorder.js";
import type { ApprovalsConfig } from "../config/load.js";
import type { Logger } from "../log.js";
import { EmailDirectory } from "./directory.js";
import { ApprovalService } from "./service.js";
import type { ArgumentsKey } from "./arguments-key.js";

export interface Approvals {
  service: ApprovalService;
  holdForMs: number;
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

export async function startApprovals(cfg: ApprovalsConfig, deps: { databaseUrl: string; recorder: Recorder; log: Logger; argumentsKey?: ArgumentsKey | undefined; maskText?: ((connection: string, text: string) => string) | undefined; confirmRule?: ((connection: string, ruleId: string | null) => boolean) | undefined; sessionPage?: ((sessionId: string) => string) | undefined }): Promise<Approvals> {
  if (deps.argumentsKey?.warning) deps.log.warn({ source: deps.argumentsKey.source }, deps.argumentsKey.warning);
  const service = new ApprovalService({
    databaseUrl: deps.databaseUrl,
    recorder: deps.recorder,
    directory: new EmailDirectory(cfg.groups),
    log: deps.log,
    sweepIntervalMs: cfg.sweepIntervalMs,
    pollIntervalMs: cfg.pollIntervalMs,
    listen: cfg.listen,
    reminderEveryMs: cfg.reminderEveryMs,
    escalation: cfg.escalation,
    argumentsKey: deps.argumentsKey?.key,
    maskText: deps.maskText,
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
    holdForMs: cfg.holdForMs,
    registerRoutes: (app) => mount?.(app),
    stop: async () => {
      await bot?.stop();
      await service.stop();
    },
  };
}
