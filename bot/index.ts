// The Slack bot: a Bolt app in HTTP mode (requests reach the gateway's Fastify server at
// /slack/events, see http.ts) or in Socket Mode (an app-level token; no public URL). It
// implements the approvals notifier and handles the clicks; the gateway never depends on it.
import { App, LogLevel, type Logger as BoltLogger } from "@slack/bolt";
import type { WebClientOptions } from "@slack/web-api";
import type { ApprovalService } from "../gateway/approvals/service.js";
import type { ApprovalsConfig, SlackConfig } from "../gateway/config/load.js";
import type { Logger } from "../gateway/log.js";
import { SlackDirectory } from "./directory.js";
import { registerHandlers } from "./handlers.js";
import { FastifyReceiver } from "./http.js";
import { SlackNotifier } from "./notifier.js";

export { registerSlackRoutes, FastifyReceiver, verifySlackSignature, type SlackRoutes, type SlackRoutesDeps } from "./http.js";

export interface SlackBot {
  app: App;
  mode: "http" | "socket";
  slack: SlackConfig;
  notifier: SlackNotifier;
  directory: SlackDirectory;
  /** HTTP mode: pass to registerSlackRoutes. */
  receiver?: FastifyReceiver | undefined;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface SlackBotOptions {
  approvals: ApprovalsConfig;
  service: ApprovalService;
  log: Logger;
  /** Whether a rule asks approvers to confirm Approve (approval.confirm: true). */
  confirmRule?: ((connection: string, ruleId: string | null) => boolean) | undefined;
  /** The web console's page of a recorded session (the message links the caller's session to it). */
  sessionPage?: ((sessionId: string) => string) | undefined;
  /** Extra Web API client options (tests: `retryConfig: { retries: 0 }`). */
  clientOptions?: WebClientOptions | undefined;
}

function boltLogger(log: Logger): BoltLogger {
  const child = log.child({ component: "slack" });
  let level = LogLevel.INFO;
  return {
    debug: (...m: unknown[]) => child.debug(m.map(String).join(" ")),
    info: (...m: unknown[]) => child.info(m.map(String).join(" ")),
    warn: (...m: unknown[]) => child.warn(m.map(String).join(" ")),
    error: (...m: unknown[]) => child.error(m.map(String).join(" ")),
    setLevel: (l) => void (level = l),
    getLevel: () => level,
    setName: () => {},
  };
}

export async function createSlackBot(opts: SlackBotOptions): Promise<SlackBot> {
  const slack = opts.approvals.slack;
  if (!slack) throw new Error("approvals.slack is not configured");
  // Socket Mode's client takes only installerOptions.clientOptions: the API URL goes there too.
  const clientOptions: WebClientOptions = { slackApiUrl: slack.apiUrl, ...opts.clientOptions };
  const logger = boltLogger(opts.log);
  const receiver = slack.mode === "http" ? new FastifyReceiver() : undefined;
  const app = new App({
    token: slack.botToken.reveal(),
    logger,
    clientOptions,
    deferInitialization: true,
    ...(receiver
      ? { receiver }
      : { socketMode: true, appToken: slack.appToken!.reveal(), installerOptions: { clientOptions } }),
  });
  await app.init();
  // Requests from another workspace or app are dropped (HTTP mode refuses them before Bolt).
  app.use(async (args) => {
    const b = args.body as { team?: { id?: string }; team_id?: string; api_app_id?: string };
    const team = b.team?.id ?? b.team_id;
    if ((slack.teamId && team !== slack.teamId) || (slack.appId && b.api_app_id !== slack.appId)) {
      // Acknowledged so it is not redelivered, and otherwise ignored.
      await (args as { ack?: () => Promise<void> }).ack?.();
      opts.log.warn({ team, app: b.api_app_id }, "slack: ignored a request for another workspace or app");
      return;
    }
    await args.next();
  });
  const directory = new SlackDirectory(app.client, opts.approvals.groups, slack.users);
  const notifier = new SlackNotifier(app.client, opts.approvals, directory, opts.service.store, opts.log, { confirmRule: opts.confirmRule, sessionPage: opts.sessionPage });
  registerHandlers(app, { service: opts.service, directory, notifier, log: opts.log });
  opts.service.setDirectory(directory);
  opts.service.setNotifier(notifier);
  return {
    app,
    mode: slack.mode,
    slack,
    notifier,
    directory,
    receiver,
    start: async () => {
      if (slack.mode === "socket") await app.start();
    },
    stop: async () => {
      opts.service.setNotifier(undefined);
      if (slack.mode === "socket") await app.stop();
    },
  };
}
