// HTTP mode: Slack's Events and interactivity requests arrive at POST /slack/events on the
// gateway's own Fastify server. Fastify has no Bolt receiver, so this is one: it keeps the raw
// body (the signature is computed over it), verifies the request, and hands Bolt the parsed body
// with an ack that answers the HTTP request (within Slack's 3 s, whatever the handler does).
//
// Verification, in order: a per-address budget of refusals (beyond it, 429 without work);
// timestamp no older than 5 minutes and no more than 60 s ahead; the v0 HMAC-SHA256 signature;
// the workspace (team_id) and app (api_app_id). Refusals are counted and recorded as one
// aggregated event per reason per interval, never one row per forged request. A signed request
// seen before (a replay) is acknowledged and changes nothing; so is Slack's own retry of an
// action already processed (the approvals store recognises the action).
import { LRUCache } from "lru-cache";
import { createHmac, timingSafeEqual } from "node:crypto";
import type { FastifyInstance } from "fastify";
import type { Recorder } from "../gateway/audit/recorder.js";
import type { Logger } from "../gateway/log.js";
import type { App, Receiver } from "@slack/bolt";
import type { SlackConfig } from "../gateway/config/load.js";

const MAX_AGE_S = 5 * 60;
const MAX_FUTURE_S = 60;
const ACK_DEADLINE_MS = 2500;

export type RefusalReason = "bad_signature" | "missing_signature" | "stale_timestamp" | "future_timestamp" | "wrong_team" | "wrong_app" | "rate_limited" | "malformed_body";

/** A receiver that does nothing on its own: the gateway's server owns the socket. */
export class FastifyReceiver implements Receiver {
  app: App | undefined;
  init(app: App): void {
    this.app = app;
  }
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
}

export interface SlackRoutesDeps {
  /** The bot in HTTP mode (createSlackBot): its receiver and its Slack settings. */
  bot: { receiver?: FastifyReceiver | undefined; slack: SlackConfig };
  recorder: Recorder;
  log: Logger;
  path?: string;
  /** How often refusal counts are written as one event per reason (default 10 s). */
  refusalFlushMs?: number;
  /** Refusals per address per minute before requests get 429 without verification. */
  refusalsPerMinute?: number;
  now?: () => number;
}

export interface SlackRoutes {
  /** Refusals by reason since start. */
  refused: Record<string, number>;
  /** Writes pending refusal counts now (also runs on an interval and when the server closes). */
  flushRefusals(): void;
}

export function verifySlackSignature(secret: string, timestamp: string, rawBody: Buffer | string, signature: string): boolean {
  const expected = `v0=${createHmac("sha256", secret).update(`v0:${timestamp}:`).update(rawBody).digest("hex")}`;
  const a = Buffer.from(expected);
  const b = Buffer.from(signature);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function registerSlackRoutes(app: FastifyInstance, deps: SlackRoutesDeps): SlackRoutes {
  const path = deps.path ?? "/slack/events";
  const { receiver, slack } = deps.bot;
  const signingSecret = slack.signingSecret?.reveal();
  if (!receiver || !signingSecret) throw new Error("registerSlackRoutes needs the bot in HTTP mode with approvals.slack.signingSecret");
  const now = deps.now ?? (() => Date.now());
  const refused: Record<string, number> = {};
  let pending: Record<string, number> = {};
  // Bound: 10,000 addresses, least recently refused evicted first (an evicted address starts a new window).
  const perAddress = new LRUCache<string, { windowStart: number; count: number }>({ max: 10_000 });
  const budget = deps.refusalsPerMinute ?? 30;
  // Signatures of verified requests, for the replay window (a signature covers timestamp + body).
  const seen = new Map<string, number>();

  const flushRefusals = () => {
    const counts = pending;
    pending = {};
    if (Object.keys(counts).length === 0) return;
    deps.recorder.eventBestEffort({ type: "approval", reason: "slack_request_refused", detail: { counts, path, aggregated: true } });
  };
  const flushTimer = setInterval(flushRefusals, deps.refusalFlushMs ?? 10_000);
  flushTimer.unref();
  const sweepSeen = setInterval(() => {
    const cutoff = now() - (MAX_AGE_S + MAX_FUTURE_S) * 1000;
    for (const [k, at] of seen) if (at < cutoff) seen.delete(k);
  }, 60_000);
  sweepSeen.unref();

  const refuse = (address: string, reason: RefusalReason) => {
    refused[reason] = (refused[reason] ?? 0) + 1;
    pending[reason] = (pending[reason] ?? 0) + 1;
    const t = now();
    const a = perAddress.get(address);
    if (!a || t - a.windowStart > 60_000) perAddress.set(address, { windowStart: t, count: 1 });
    else a.count++;
  };
  const overBudget = (address: string) => {
    const a = perAddress.get(address);
    return a !== undefined && now() - a.windowStart <= 60_000 && a.count >= budget;
  };

  void app.register(async (scope) => {
    scope.addHook("onClose", async () => {
      clearInterval(flushTimer);
      clearInterval(sweepSeen);
      flushRefusals();
    });
    // Raw bytes for the signature; parsing happens after verification.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "buffer" }, (_req, body, done) => done(null, body));

    scope.post(path, async (req, reply) => {
      const address = req.ip;
      if (overBudget(address)) {
        refuse(address, "rate_limited");
        return reply.code(429).header("retry-after", "60").send({ ok: false, error: "rate_limited" });
      }
      const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.from(typeof req.body === "string" ? req.body : "");
      const tsHeader = req.headers["x-slack-request-timestamp"];
      const sigHeader = req.headers["x-slack-signature"];
      const ts = typeof tsHeader === "string" && /^\d{1,12}$/.test(tsHeader) ? Number(tsHeader) : NaN;
      if (typeof sigHeader !== "string" || Number.isNaN(ts)) {
        refuse(address, "missing_signature");
        return reply.code(401).send({ ok: false, error: "missing_signature" });
      }
      const nowS = Math.floor(now() / 1000);
      if (nowS - ts > MAX_AGE_S) {
        refuse(address, "stale_timestamp");
        return reply.code(401).send({ ok: false, error: "stale_timestamp" });
      }
      if (ts - nowS > MAX_FUTURE_S) {
        refuse(address, "future_timestamp");
        return reply.code(401).send({ ok: false, error: "future_timestamp" });
      }
      if (!verifySlackSignature(signingSecret, tsHeader as string, raw, sigHeader)) {
        refuse(address, "bad_signature");
        return reply.code(401).send({ ok: false, error: "bad_signature" });
      }

      let body: Record<string, unknown>;
      try {
        body = parseSlackBody(raw, String(req.headers["content-type"] ?? ""));
      } catch {
        refuse(address, "malformed_body");
        return reply.code(400).send({ ok: false, error: "malformed_body" });
      }
      if (body.type === "url_verification") return reply.send({ challenge: body.challenge });

      const team = (body.team as { id?: string } | undefined)?.id ?? (body.team_id as string | undefined);
      if (slack.teamId && team !== slack.teamId) {
        refuse(address, "wrong_team");
        return reply.code(401).send({ ok: false, error: "wrong_team" });
      }
      if (slack.appId && body.api_app_id !== slack.appId) {
        refuse(address, "wrong_app");
        return reply.code(401).send({ ok: false, error: "wrong_app" });
      }

      // The same signed request again: acknowledged, nothing done.
      if (seen.has(sigHeader)) return reply.code(200).send();
      seen.set(sigHeader, now());

      const bolt = receiver.app;
      if (!bolt) return reply.code(503).send({ ok: false, error: "not_ready" });
      const retryHeader = req.headers["x-slack-retry-num"];
      const retryNum = typeof retryHeader === "string" && /^\d+$/.test(retryHeader) ? Number(retryHeader) : undefined;
      const retryReason = typeof req.headers["x-slack-retry-reason"] === "string" ? req.headers["x-slack-retry-reason"] : undefined;

      let answer!: (v: unknown) => void;
      const answered = new Promise<unknown>((resolve) => (answer = resolve));
      let acked = false;
      const deadline = setTimeout(() => answer(undefined), ACK_DEADLINE_MS);
      void bolt
        .processEvent({
          body,
          ...(retryNum !== undefined ? { retryNum } : {}),
          ...(retryReason ? { retryReason } : {}),
          ack: async (response?: unknown) => {
            if (acked) return;
            acked = true;
            answer(response);
          },
        })
        .catch((err: unknown) => deps.log.warn({ err }, "slack: handler failed"))
        .finally(() => answer(undefined));
      const response = await answered;
      clearTimeout(deadline);
      if (response === undefined || response === null || response === "") return reply.code(200).send();
      return typeof response === "string" ? reply.code(200).type("text/plain").send(response) : reply.code(200).send(response);
    });
  });

  return { refused, flushRefusals };
}

/** Interactivity is form-encoded `payload=<json>`; the Events API is JSON. */
export function parseSlackBody(raw: Buffer, contentType: string): Record<string, unknown> {
  const text = raw.toString("utf8");
  if (contentType.startsWith("application/x-www-form-urlencoded")) {
    const form = new URLSearchParams(text);
    const payload = form.get("payload");
    if (payload !== null) return JSON.parse(payload) as Record<string, unknown>;
    return Object.fromEntries(form.entries());
  }
  const parsed: unknown = JSON.parse(text);
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("not an object");
  return parsed as Record<string, unknown>;
}
