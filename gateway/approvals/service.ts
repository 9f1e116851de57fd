// The approvals service: what the session calls when policy says require_approval, and what the
// bot (or the CLI) calls when someone decides. State lives in Postgres (gateway/store/approvals.ts); this process
// keeps only waiters. Decisions reach waiters on every replica through LISTEN/NOTIFY on a plain
// `pg` client, with polling as the fallback when notifications are down or missed.
//
//   request() ─▶ store.open ─▶ (new) notifier.requested, retried with back-off
//   vote()    ─▶ self-approval and group checks ─▶ store.vote (atomic) ─▶ notifier.decided
//   waitForDecision() ◀─ NOTIFY / poll        claimForward() ─▶ one UPDATE, true exactly once
//   sweep (each replica, every sweepIntervalMs): expiry, reminders, escalation, unsynced Slack work
import { randomBytes } from "node:crypto";
import type { Recorder } from "../audit/recorder.js";
import type { EventReason } from "../audit/events.js";
import type { Logger } from "../log.js";
import { canonicalArgumentsHash } from "./canonical.js";
import { approverKey, DECIDE_INSTEAD, judgeApprover } from "./four-eyes.js";
import { ApprovalStore, NOTIFY_CHANNEL } from "../store/approvals.js";
import type { ChannelListener, ListenHub } from "../store/listener.js";
import type { Pool } from "../store/pools.js";
import type { ApprovalNotifier, ApprovalRequest, ApproverDirectory, NewApprovalRequest, SecurityAlert, VoteInput, VoteOutcome } from "./types.js";
import { SecurityAlerts } from "./security-alerts.js";
import { systemClock, type Clock, type ClockTimer } from "../clock.js";

export interface ApprovalServiceOptions {
  /** The store's background pool (gateway/store/pools.ts): the service does not own it. */
  pool: Pool;
  /** The replica's LISTEN hub; without it (or with listen: false) decisions from other replicas arrive by polling alone. */
  hub?: ListenHub | undefined;
  recorder: Recorder;
  directory: ApproverDirectory;
  log: Logger;
  notifier?: ApprovalNotifier | undefined;
  sweepIntervalMs?: number;
  pollIntervalMs?: number;
  /** false: no LISTEN; decisions from other replicas arrive by polling alone. */
  listen?: boolean | undefined;
  reminderEveryMs?: number | undefined;
  escalation?: { afterMs: number; group: string } | undefined;
  /** Attempts to post one message (with back-off) before leaving it to the sweep. */
  postAttempts?: number;
  /** First back-off delay; doubled per attempt up to 10 s. */
  retryBaseMs?: number;
  /** Keys the stored arguments hash (arguments-key.ts); the same on every replica. */
  argumentsKey?: Buffer | undefined;
  /** The connection's masking, applied to the tool or URI, the justification and the caller's client before they are stored or shown. */
  maskText?: ((connection: string, text: string) => string) | undefined;
  /** The timers of the sweep, the poll and a held call's wait (tests move it); default: the system's. */
  clock?: Clock | undefined;
}

export interface ApprovalServiceStatus {
  /** Postgres notifications are being received (otherwise polling alone releases waiters). */
  listening: boolean;
  waiters: number;
  slack: { healthy: boolean; failures: number; lastError?: string | undefined; lastFailureAt?: string | undefined };
}

/** How long one replica holds the right to post or update a request's message. */
const SLACK_LEASE_MS = 30_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms).unref());

export function newApprovalId(): string {
  return `apr_${randomBytes(9).toString("base64url").replace(/[-_]/g, "x")}`;
}

/** Whether `approver` is, or may be, the requester (four-eyes.ts): either way their vote does not count. */
export function isSelfApproval(req: ApprovalRequest, approverEmail: string, token?: { subject?: string | undefined; issuer?: string | undefined }, via: VoteInput["via"] = "api"): boolean {
  return judgeApprover(req.requester, { email: approverEmail, subject: token?.subject, issuer: token?.issuer }, via).verdict !== "other";
}

/** The groups whose members may decide: the approver group, and the escalation group once escalated. */
const deciderGroups = (req: ApprovalRequest): string[] => [req.approverGroup, ...(req.escalationGroup ? [req.escalationGroup] : [])];

/** A token-authenticated approver's subject and issuer, for the recorded events. */
const tokenOf = (a: VoteInput["approver"]) => (a.subject ? { approverSubject: a.subject, approverIssuer: a.issuer ?? null } : {});

export class ApprovalService {
  readonly store: ApprovalStore;
  #opts: ApprovalServiceOptions;
  #notifier: ApprovalNotifier | undefined;
  #directory: ApproverDirectory;
  readonly #waiters = new Map<string, Set<(req: ApprovalRequest) => void>>();
  #listener: ChannelListener | undefined;
  #running = false;
  #timers: ClockTimer[] = [];
  #sweeping = false;
  #inflight = new Set<Promise<unknown>>();
  #slack: ApprovalServiceStatus["slack"] = { healthy: true, failures: 0 };
  readonly #alerts: SecurityAlerts;

  constructor(opts: ApprovalServiceOptions) {
    this.#opts = opts;
    this.#notifier = opts.notifier;
    this.#directory = opts.directory;
    this.store = new ApprovalStore(opts.pool);
    this.#alerts = new SecurityAlerts(opts.log);
  }

  /** A reload's reminder interval and escalation: the next sweep uses them. */
  applySchedule(schedule: Pick<ApprovalServiceOptions, "reminderEveryMs" | "escalation">): void {
    this.#opts = { ...this.#opts, reminderEveryMs: schedule.reminderEveryMs, escalation: schedule.escalation };
  }

  /** The bot's directory knows Slack user groups: it replaces the e-mail-only one when the bot starts. */
  setDirectory(directory: ApproverDirectory): void {
    this.#directory = directory;
  }

  /** The bot is built after the service (it needs it): attach it here. */
  setNotifier(notifier: ApprovalNotifier | undefined): void {
    this.#notifier = notifier;
  }

  /**
   * Posts a security alert now (security-alerts.ts); resolves false when nobody could be told.
   * Never throws: the detection it reports is already recorded.
   */
  securityAlert(alert: SecurityAlert): Promise<boolean> {
    return this.#alerts.send(this.#notifier, alert);
  }

  async start(): Promise<void> {
    this.#running = true;
    if (this.#opts.listen !== false && this.#opts.hub) {
      // Decisions taken while not listening: the poll picks them up on its next tick.
      this.#listener = this.#opts.hub.channel({
        channel: NOTIFY_CHANNEL,
        name: "approvals",
        onNotify: (id) => {
          if (!this.#waiters.has(id)) return;
          void this.store.get(id).then((r) => r && r.status !== "pending" && this.#release(r), () => {});
        },
      });
      await this.#listener.start();
    }
    const clock = this.#opts.clock ?? systemClock;
    const sweep = clock.setInterval(() => void this.sweep(), this.#opts.sweepIntervalMs ?? 1000);
    const poll = clock.setInterval(() => void this.#poll(), this.#opts.pollIntervalMs ?? 1000);
    sweep.unref();
    poll.unref();
    this.#timers.push(sweep, poll);
  }

  async stop(): Promise<void> {
    this.#running = false;
    for (const t of this.#timers) (this.#opts.clock ?? systemClock).clearInterval(t);
    this.#timers = [];
    await Promise.allSettled([...this.#inflight]);
    await this.#listener?.stop();
  }

  status(): ApprovalServiceStatus {
    return { listening: this.#listener?.listening ?? false, waiters: [...this.#waiters.values()].reduce((n, s) => n + s.size, 0), slack: { ...this.#slack } };
  }

  // ── for the session ───────────────────────────────────────────────────────────────────────

  /**
   * Opens an approval request, or returns the one already open for an identical call (same
   * caller, connection, method, tool or URI, canonical arguments, rule and approver group) within its lifetime: its stored decision
   * then applies (approved → forward once, denied → the denial, pending → hold again).
   */
  async request(original: NewApprovalRequest): Promise<{ request: ApprovalRequest; created: boolean }> {
    const mask = this.#opts.maskText;
    const tool = mask ? mask(original.connection, original.tool) : original.tool;
    const justification = mask && original.justification !== undefined ? mask(original.connection, original.justification) : original.justification;
    // The client's name, version and user agent are the caller's words too.
    const c = original.client;
    const client = c && mask ? { ...c, name: c.name && mask(original.connection, c.name), version: c.version && mask(original.connection, c.version), userAgent: c.userAgent && mask(original.connection, c.userAgent) } : c;
    const input = { ...original, tool, justification, client };
    // Two URIs that mask alike are still different calls: the original goes into the hash.
    const hash = canonicalArgumentsHash(tool === original.tool ? original.arguments : { arguments: original.arguments, tool: original.tool }, this.#opts.argumentsKey);
    const opened = await this.store.open(newApprovalId(), input, hash);
    if (opened.created) {
      const r = opened.request;
      await this.#event("requested", r, r.requester.subject, {
        tool: r.tool,
        approverGroup: r.approverGroup,
        approvalsNeeded: r.approvalsNeeded,
        ruleId: r.ruleId,
        expiresAt: r.expiresAt.toISOString(),
        justification: r.justification,
      });
      this.#track(this.#post(r.id, false));
    }
    return opened;
  }

  /**
   * Resolves with the request once decided, or with it still pending when `timeoutMs` passes or
   * `signal` aborts (the caller then answers "approval pending"). Never rejects on timeout.
   */
  async waitForDecision(id: string, signal?: AbortSignal, timeoutMs = 45_000): Promise<ApprovalRequest> {
    const current = await this.store.get(id);
    if (!current) throw new Error(`no approval request ${id}`);
    if (current.status !== "pending" || timeoutMs <= 0 || signal?.aborted) return current;
    const clock = this.#opts.clock ?? systemClock;
    return new Promise<ApprovalRequest>((resolve) => {
      let done = false;
      const finish = (req: ApprovalRequest | undefined) => {
        if (done) return;
        done = true;
        clock.clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        const set = this.#waiters.get(id);
        set?.delete(onDecision);
        if (set?.size === 0) this.#waiters.delete(id);
        if (req) resolve(req);
        else this.store.get(id).then((r) => resolve(r ?? current), () => resolve(current));
      };
      const onDecision = (req: ApprovalRequest) => finish(req);
      const onAbort = () => finish(undefined);
      const timer = clock.setTimeout(() => finish(undefined), timeoutMs);
      timer.unref();
      signal?.addEventListener("abort", onAbort, { once: true });
      let set = this.#waiters.get(id);
      if (!set) this.#waiters.set(id, (set = new Set()));
      set.add(onDecision);
      // A decision committed between the read above and registering is caught here.
      void this.store.get(id).then((r) => r && r.status !== "pending" && finish(r), () => {});
    });
  }

  /**
   * True exactly once per approved request, on whichever replica asks first: the first phase of
   * a forward. Then either `confirmForward` once the send resolved (the evidence says forwarded
   * only then) or `releaseForward` when it never went out (the identical retry may use it).
   */
  async claimForward(id: string): Promise<boolean> {
    return this.store.claimForward(id);
  }

  /** The claimed call reached the upstream: recorded as forwarded. */
  async confirmForward(id: string): Promise<void> {
    const r = await this.store.get(id);
    if (r) await this.#opts.recorder.event({ type: "approval", reason: "forwarded", sessionId: r.sessionId, connection: r.connection, subject: r.requester.subject, detail: { requestId: id, tool: r.tool } });
  }

  /** The claimed call did not go out (session ended, cancelled, a later hold refused, the send failed). */
  async releaseForward(id: string): Promise<void> {
    await this.store.releaseForward(id);
  }

  // ── for approvers (bot, CLI) ──────────────────────────────────────────────────────────────

  /**
   * The checks a click passes before it may count: not the requester (four-eyes, admins too),
   * a member of the approver group (or of the escalation group once escalated), shown to be
   * someone other than the requester (four-eyes.ts), the request still pending. A refusal is recorded and returned; undefined means the approver may decide.
   * The Deny button asks this before opening its reason modal.
   */
  async admit(requestId: string, approver: VoteInput["approver"], decision: VoteInput["decision"], via: VoteInput["via"]): Promise<Exclude<VoteOutcome, { kind: "recorded" | "decided" }> | undefined> {
    const req = await this.store.get(requestId);
    if (!req) return { kind: "not_found" };
    const who = approverKey(approver.email);
    const click = { requestId: req.id, decision, via, slackUserId: approver.slackUserId ?? null, ...tokenOf(approver) };
    const fourEyes = judgeApprover(req.requester, approver, via);
    if (fourEyes.verdict === "self") {
      await this.#event("self_approval_refused", req, who, click);
      return { kind: "self_approval_refused", request: req };
    }
    const groups = deciderGroups(req);
    if (!(await this.mayDecide(req, approver))) {
      await this.#event("unauthorized_click", req, who, { ...click, groups });
      return { kind: "unauthorized", request: req, groups };
    }
    // A member of the group who cannot be told apart from the requester: told where to decide instead.
    if (fourEyes.verdict === "unproven") {
      await this.#event("approver_unproven", req, who, { ...click, why: fourEyes.why });
      return { kind: "approver_unproven", request: req, message: `Your vote was not counted: ${fourEyes.why}. ${DECIDE_INSTEAD.replaceAll("<id>", req.id)} It was recorded.` };
    }
    if (req.status !== "pending") return { kind: "already_decided", request: req };
    return undefined;
  }

  /** Whether `approver` is in the request's approver group (or its escalation group); says nothing of self-approval. */
  async mayDecide(req: ApprovalRequest, approver: VoteInput["approver"]): Promise<boolean> {
    const email = approverKey(approver.email);
    for (const g of deciderGroups(req)) if (await this.#directory.isMember(g, { ...approver, email })) return true;
    return false;
  }

  /** One approver's decision, with every rule of decision applied; every outcome is recorded. */
  async vote(v: VoteInput): Promise<VoteOutcome> {
    const refused = await this.admit(v.requestId, v.approver, v.decision, v.via);
    // A decided request still goes through the store: a replayed action must read as a duplicate.
    if (refused && refused.kind !== "already_decided") return refused;
    const req = refused?.request ?? (await this.store.get(v.requestId))!;
    const who = approverKey(v.approver.email);
    const click = { requestId: req.id, decision: v.decision, via: v.via, slackUserId: v.approver.slackUserId ?? null, ...tokenOf(v.approver) };
    const result = await this.store.vote(v, who);
    switch (result.kind) {
      case "not_found":
        return result;
      case "expired_now":
        await this.#event("expired", result.request, null, { requestId: req.id });
        this.#track(this.#showDecision(req.id, false));
        return { kind: "already_decided", request: result.request };
      case "duplicate_action":
        await this.#event("duplicate_action", result.request, who, click);
        return result;
      case "already_decided":
      case "already_voted":
        await this.#event(result.kind, result.request, who, { ...click, status: result.request.status });
        return result;
      case "recorded":
      case "decided": {
        const r = result.request;
        await this.#event("vote", r, who, { ...click, reason: v.reason ?? null, approveCount: r.approveCount, approvalsNeeded: r.approvalsNeeded });
        if (result.kind === "decided") {
          const secondsToDecision = r.decidedAt ? (r.decidedAt.getTime() - r.createdAt.getTime()) / 1000 : null;
          await this.#event(r.status === "approved" ? "approved" : "denied", r, who, { requestId: r.id, reason: r.decisionReason, decidedBy: r.decidedBy, secondsToDecision });
          this.#release(r);
          this.#track(this.#showDecision(r.id, false));
        }
        return result;
      }
    }
  }

  // ── periodic work ─────────────────────────────────────────────────────────────────────────

  /** Expiry, reminders, escalation and Slack work left undone (by a crash, an outage, another replica). */
  async sweep(): Promise<void> {
    if (this.#sweeping || !this.#running) return;
    this.#sweeping = true;
    try {
      for (const r of await this.store.expireDue()) {
        await this.#event("expired", r, null, { requestId: r.id, expiresAt: r.expiresAt.toISOString() });
        this.#release(r);
        this.#track(this.#showDecision(r.id, false));
      }
      const n = this.#notifier;
      if (!n) return;
      if (this.#opts.reminderEveryMs) {
        for (const r of await this.store.claimReminders(this.#opts.reminderEveryMs)) {
          this.#opts.recorder.eventBestEffort({ type: "approval", reason: "reminder", sessionId: r.sessionId, connection: r.connection, detail: { requestId: r.id, count: r.reminderCount } });
          this.#track(n.reminder(r).catch((err) => this.#slackFailure(r.id, err, false)));
        }
      }
      if (this.#opts.escalation) {
        for (const r of await this.store.claimEscalations(this.#opts.escalation.afterMs, this.#opts.escalation.group)) {
          this.#opts.recorder.eventBestEffort({ type: "approval", reason: "escalated", sessionId: r.sessionId, connection: r.connection, detail: { requestId: r.id, group: r.escalationGroup } });
          this.#track(
            n.escalated(r).then(
              (copy) => copy && this.#event("notified", r, null, { channel: copy.channel, ts: copy.ts, escalation: true, group: r.escalationGroup }),
              (err) => this.#slackFailure(r.id, err, false),
            ),
          );
        }
      }
      const work = await this.store.claimSlackWork(this.#opts.postAttempts ?? 6, SLACK_LEASE_MS);
      for (const r of work) {
        this.#track(r.status === "pending" ? this.#post(r.id, true) : this.#showDecision(r.id, true));
      }
    } catch (err) {
      this.#opts.log.warn({ err }, "approvals: sweep failed");
    } finally {
      this.#sweeping = false;
    }
  }

  // ── internals ─────────────────────────────────────────────────────────────────────────────

  #track(p: Promise<unknown>): void {
    const q = p.catch((err) => this.#opts.log.warn({ err }, "approvals: background work failed"));
    this.#inflight.add(q);
    void q.finally(() => this.#inflight.delete(q));
  }

  /** Posts the approval message, retrying with back-off while the request is pending. */
  async #post(id: string, claimed: boolean): Promise<void> {
    const n = this.#notifier;
    if (!n) return;
    let req = claimed ? await this.store.get(id) : await this.store.claimSlack(id, SLACK_LEASE_MS);
    if (!req) return;
    if (req.slack.ts) {
      // Posted already (by the sweep on another replica): only the lease taken here is given back.
      await this.store.releaseSlack(id);
      if (req.status !== "pending") await this.#showDecision(id, false);
      return;
    }
    const attempts = this.#opts.postAttempts ?? 6;
    for (let i = 0; i < attempts && this.#running; i++) {
      if (req.status !== "pending") break;
      try {
        const refs = await n.requested(req);
        await this.store.slackPosted(id, refs);
        this.#slackOk();
        this.#opts.recorder.eventBestEffort({ type: "approval", reason: "notified", sessionId: req.sessionId, connection: req.connection, detail: { requestId: id, channel: refs.channel, ts: refs.ts, attempt: i + 1 } });
        break;
      } catch (err) {
        await this.#slackFailure(id, err, true);
        if (i + 1 < attempts) await sleep(Math.min(10_000, (this.#opts.retryBaseMs ?? 250) * 2 ** i));
        req = (await this.store.get(id)) ?? req;
      }
    }
    await this.store.releaseSlack(id);
    // Decided while the message was being posted: show the decision now.
    const after = await this.store.get(id);
    if (after && after.status !== "pending") await this.#showDecision(id, false);
  }

  /** Updates the message in place with the decision and follows up with the requester. */
  async #showDecision(id: string, claimed: boolean): Promise<void> {
    const n = this.#notifier;
    if (!n) return;
    const req = claimed ? await this.store.get(id) : await this.store.claimSlack(id, SLACK_LEASE_MS);
    if (!req || req.status === "pending") return;
    if (!req.slack.ts) {
      // Never posted: nothing to update (a post still in progress shows it when it ends).
      if (req.slack.state === "failed" || claimed) await this.store.decisionShown(id);
      else await this.store.releaseSlack(id);
      return;
    }
    const attempts = this.#opts.postAttempts ?? 6;
    for (let i = 0; i < attempts && this.#running; i++) {
      try {
        await n.decided(req);
        await this.store.decisionShown(id);
        this.#slackOk();
        return;
      } catch (err) {
        await this.#slackFailure(id, err, true);
        if (i + 1 < attempts) await sleep(Math.min(10_000, (this.#opts.retryBaseMs ?? 250) * 2 ** i));
      }
    }
    // Left for a later sweep once the lease runs out.
  }

  async #slackFailure(id: string, err: unknown, store: boolean): Promise<void> {
    const message = describeSlackError(err);
    this.#slack = { healthy: false, failures: this.#slack.failures + 1, lastError: message, lastFailureAt: (this.#opts.clock ?? systemClock).date().toISOString() };
    this.#opts.log.warn({ requestId: id, err: message }, "approvals: Slack call failed");
    if (store) await this.store.slackFailed(id, message).catch(() => {});
    this.#opts.recorder.eventBestEffort({ type: "approval", reason: "notify_failed", detail: { requestId: id, error: message } });
  }

  #slackOk(): void {
    if (!this.#slack.healthy) this.#slack = { ...this.#slack, healthy: true };
  }

  async #event(reason: EventReason<"approval">, r: ApprovalRequest, subject: string | null, detail: Record<string, unknown>): Promise<void> {
    try {
      await this.#opts.recorder.event({ type: "approval", reason, sessionId: r.sessionId, connection: r.connection, subject, detail: { requestId: r.id, ...detail } });
    } catch (err) {
      // The decision itself is committed in approval_requests; the event's loss is logged.
      this.#opts.log.error({ approvalId: r.id, reason, err }, "approvals: could not record event");
    }
  }

  #release(r: ApprovalRequest): void {
    const set = this.#waiters.get(r.id);
    if (!set) return;
    for (const w of [...set]) w(r);
  }

  async #poll(): Promise<void> {
    const ids = [...this.#waiters.keys()];
    if (ids.length === 0) return;
    try {
      for (const r of await this.store.decided(ids)) this.#release(r);
    } catch {
      // The database is down; the next tick tries again.
    }
  }
}

export function describeSlackError(err: unknown): string {
  const e = err as { code?: string; data?: { error?: string }; message?: string };
  if (e?.data?.error) return `slack: ${e.data.error}`;
  return (e?.message ?? String(err)).split("\n")[0]!.slice(0, 300);
}
