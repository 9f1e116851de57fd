// What every console route group shares: the gateway's parts it reads, the login cookies, and
// the one way a console action is recorded (an event with the person's identity).
import type { Pool } from "../store/pools.js";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Approvals } from "../approvals/setup.js";
import type { Recorder } from "../audit/recorder.js";
import type { EventReason } from "../audit/events.js";
import type { GatewayConfig } from "../config/load.js";
import type { Db } from "../store/client.js";
import type { Logger } from "../log.js";
import type { ToolPins } from "../pinning/service.js";
import type { DevIssuerKey } from "../auth/dev-issuer.js";
import type { KeyRing } from "../keys/ring.js";
import { renderPage, type PageContext } from "./render.js";
import type { Roles } from "./roles.js";
import type { ConsoleLogin, ConsoleSessions } from "./session.js";

export interface ConsoleDeps {
  config: GatewayConfig;
  /** The configuration in force now (a reload may change admin.groups and approvals.groups, which decide roles). */
  currentConfig?: (() => GatewayConfig) | undefined;
  db: Db;
  /** The store's background pool (gateway/store/pools.ts). */
  pool: Pool;
  recorder: Recorder;
  log: Logger;
  approvals?: Approvals | undefined;
  pins?: ToolPins | undefined;
  devIssuer?: { url: string; key: DevIssuerKey } | undefined;
  /** The keyring's console keys (cookies, CSRF tokens, login state); absent: built from the configuration. */
  keys?: KeyRing | undefined;
  /** More pages mounted inside the console (its login, CSRF and layout): the OAuth consent page. */
  pages?: Array<(scope: FastifyInstance, ctx: ConsoleContext) => void> | undefined;
}

export interface ConsoleRequestState {
  login?: ConsoleLogin | undefined;
  roles?: Roles | undefined;
  csrf: string;
}

export interface ConsoleContext {
  deps: ConsoleDeps;
  sessions: ConsoleSessions;
  /** Login, roles and CSRF token of this request (set by the console's preHandler). */
  state(req: FastifyRequest): ConsoleRequestState;
  /** Records a console action with the identity of the person logged in. */
  record(req: FastifyRequest, reason: EventReason<"console">, detail?: Record<string, unknown>, extra?: { sessionId?: string | null; connection?: string | null }): Promise<void>;
  page(req: FastifyRequest, reply: FastifyReply, template: string, ctx: Omit<PageContext, "login" | "roles" | "csrf">, view?: Record<string, unknown>, status?: number): FastifyReply;
  /** 403 with a page, recorded. */
  forbidden(req: FastifyRequest, reply: FastifyReply, what: string): Promise<FastifyReply>;
}

const STATE = Symbol("consoleState");

export function createContext(deps: ConsoleDeps, sessions: ConsoleSessions): ConsoleContext {
  const state = (req: FastifyRequest): ConsoleRequestState => (req as unknown as { [STATE]?: ConsoleRequestState })[STATE] ?? { csrf: "" };
  const ctx: ConsoleContext = {
    deps,
    sessions,
    state,
    async record(req, reason, detail = {}, extra = {}) {
      const login = state(req).login;
      try {
        await deps.recorder.event({
          type: "console",
          reason,
          subject: login?.subject ?? null,
          // The session acted on goes in the detail: the console's events are not part of that session's exchange.
          connection: extra.connection ?? null,
          requestId: req.id,
          detail: { ...(login ? { issuer: login.issuer, email: login.email ?? null, via: login.via } : {}), remoteAddress: req.ip, ...(extra.sessionId ? { sessionId: extra.sessionId } : {}), ...detail },
        });
      } catch (err) {
        // The audit store is down: the action is refused by the caller of record() where it matters.
        deps.log.error({ reason, err }, "console: could not record event");
        throw err;
      }
    },
    page(req, reply, template, pageCtx, view = {}, status = 200) {
      const s = state(req);
      return reply.code(status).type("text/html; charset=utf-8").send(renderPage(template, { ...pageCtx, login: s.login, roles: s.roles, csrf: s.csrf }, view));
    },
    async forbidden(req, reply, what) {
      await ctx.record(req, "forbidden", { what, path: req.url.split("?")[0] }).catch(() => {});
      return ctx.page(req, reply, "error", { title: "Not allowed" }, { heading: "Not allowed", message: `Your groups do not allow ${what}.` }, 403);
    },
  };
  return ctx;
}

export function setState(req: FastifyRequest, s: ConsoleRequestState): void {
  (req as unknown as { [STATE]?: ConsoleRequestState })[STATE] = s;
}
