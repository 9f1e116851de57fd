// The digest on schedule. Every replica checks, every `checkIntervalMs` and once at start,
// whether the digest for the latest scheduled time (digest.schedule, a cron expression read in
// digest.timeZone) has been generated and posted. If not, it tries a PostgreSQL advisory lock
// for that week: the one replica that gets it generates (or reuses the stored scheduled digest)
// and posts; the others see the week done on a later check. A lock holder that dies drops its
// connection and so its lock, and another replica takes over. Runs missed while every replica was
// down are caught up at the next start, oldest first, back to the last week already done (at most
// CATCH_UP_WEEKS), so the weekly series has no gap; a first run ever does the latest week only.
import { Cron } from "croner";
import type { SignerKey, VerifierKey } from "../audit/chain/keys.js";
import { closeChainClient, connectChainClient } from "../store/chain/pg.js";
import type { Logger } from "../log.js";
import { DigestUploadError, generateDigest, postDigest, storedSeal, type DigestPoster } from "./generate.js";
import { anyScheduledDone, releaseWeekLock, scheduledDigest, storedDigest, tryWeekLock, weekPosted } from "../store/digests.js";
import type { ChainClient, Pool } from "../store/pools.js";
import { chainFailureAlert } from "./alert.js";
import type { SecurityAlert } from "../approvals/types.js";
import { lastCompleteWeek, type IsoWeek } from "./week.js";

export interface DigestSchedulerOptions {
  databaseUrl: string;
  /** The store's background pool: each check reads what is due here; a week to do gets a connection of its own. */
  pool: Pool;
  schedule: string;
  timeZone: string;
  checkIntervalMs: number;
  signer?: SignerKey | undefined;
  verifiers: Map<string, VerifierKey>;
  /** Absent: digests are generated and stored, not posted. */
  poster?: DigestPoster | undefined;
  log: Logger;
  instanceId: string;
  /** The clock (tests move it). */
  now?: () => Date;
  /** Told at once when a digest's verification of the audit chain fails (the security alert). */
  onChainFailure?: ((alert: SecurityAlert) => void) | undefined;
}

export type TickOutcome = "not_due" | "done" | "locked" | "generated" | "posted" | "backing_off" | "failed";

/** How far back a catch-up looks for the last week already done. */
export const CATCH_UP_WEEKS = 12;

export class DigestScheduler {
  #cron: Cron;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<TickOutcome> | undefined;
  #stopped = false;
  #failures = 0;
  #retryAt = 0;
  #checks = 0;

  constructor(private readonly opts: DigestSchedulerOptions) {
    this.#cron = new Cron(opts.schedule, { timezone: opts.timeZone, paused: true });
  }

  /** Checks at once (the catch-up), then every checkIntervalMs. */
  start(): void {
    void this.tick();
    this.#timer = setInterval(() => void this.tick(), this.opts.checkIntervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#running?.catch(() => {});
  }

  /** Checks finished since start, whatever their outcome. */
  get checks(): number {
    return this.#checks;
  }

  /** The latest scheduled time at or before now, if any. */
  lastScheduledAt(now = this.#now()): Date | undefined {
    return this.#cron.previousRuns(1, now)[0];
  }

  /** One check; checks never overlap. */
  tick(): Promise<TickOutcome> {
    if (this.#stopped) return Promise.resolve("not_due");
    if (!this.#running) {
      this.#running = this.#tick()
        .catch((err: unknown) => {
          this.#failures++;
          this.#retryAt = Date.now() + Math.min(60 * 60_000, 30_000 * 2 ** Math.min(this.#failures - 1, 7));
          this.opts.log.error({ err }, "digest: the scheduled digest failed; retrying later");
          return "failed" as const;
        })
        .finally(() => {
          this.#running = undefined;
          this.#checks++;
        });
    }
    return this.#running;
  }

  #now(): Date {
    return this.opts.now?.() ?? new Date();
  }

  async #tick(): Promise<TickOutcome> {
    const runs = this.#cron.previousRuns(CATCH_UP_WEEKS, this.#now()); // newest first
    if (runs.length === 0) return "not_due";
    if (Date.now() < this.#retryAt) return "backing_off";
    // The weeks to do: from the newest back to the last one already done (none done: the newest).
    const due: Array<{ at: Date; week: IsoWeek }> = [];
    for (const at of runs) {
      const week = lastCompleteWeek(at, this.opts.timeZone);
      if (due.some((d) => d.week.label === week.label)) continue;
      if (await this.#done(this.opts.pool, week.label)) break;
      due.push({ at, week });
    }
    if (due.length === 0) return "done";
    if (!(await anyScheduledDone(this.opts.pool, this.opts.timeZone, Boolean(this.opts.poster)))) due.splice(1); // a first run ever: the latest week only
    // The week's lock is held by a session: a connection of its own, for this run only.
    const client = await connectChainClient(this.opts.databaseUrl, undefined, "countersign-digest");
    try {
      let outcome: TickOutcome = "done";
      for (const { at, week } of due.reverse()) {
        outcome = await this.#runWeek(client, week, at);
        if (outcome === "locked") return outcome; // another replica is at it; it will go on
      }
      return outcome;
    } finally {
      await closeChainClient(client);
    }
  }

  /** Generates (or reuses) and posts one week's digest under that week's lock. */
  async #runWeek(client: ChainClient, week: IsoWeek, due: Date): Promise<TickOutcome> {
    if (!(await tryWeekLock(client, `${week.label}/${week.timeZone}`))) return "locked";
    try {
      // Another replica may have finished between the first look and the lock.
      if (await this.#done(client, week.label)) return "done";
      let stored = await storedDigest(client, week.label, week.timeZone);
      let seal = stored ? storedSeal(stored) : undefined;
      if (!stored) {
        this.opts.log.info({ week: week.label, timeZone: week.timeZone, scheduledAt: due.toISOString() }, "digest: generating the scheduled weekly digest");
        const g = await generateDigest(client, { week, trigger: "scheduled", signer: this.opts.signer, verifiers: this.opts.verifiers, generatedBy: this.opts.instanceId });
        stored = g.stored;
        seal = g.seal;
        const alert = chainFailureAlert(g.content);
        if (alert) this.opts.onChainFailure?.(alert);
      }
      if (!this.opts.poster) {
        this.#failures = 0;
        return "generated";
      }
      let res;
      try {
        res = await postDigest(client, this.opts.poster, stored, seal!);
      } catch (err) {
        if (!(err instanceof DigestUploadError)) throw err;
        // Posted (not posted again); the summary says the report is missing.
        this.opts.log.error({ week: week.label, channel: err.channel, ts: err.ts, err: err.reason }, "digest: posted the summary, but the report could not be uploaded");
        this.#failures = 0;
        return "posted";
      }
      this.opts.log.info({ week: week.label, channel: this.opts.poster.channel, ts: res.ts }, "digest: posted the weekly digest");
      this.#failures = 0;
      return "posted";
    } finally {
      await releaseWeekLock(client, `${week.label}/${week.timeZone}`).catch(() => {});
    }
  }

  async #done(client: Pool | ChainClient, week: string): Promise<boolean> {
    if (this.opts.poster) return weekPosted(client, week, this.opts.timeZone);
    return (await storedDigest(client, week, this.opts.timeZone)) !== undefined;
  }
}
