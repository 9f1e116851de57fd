// The sealer: appends committed audit rows to the chain. Rows are recorded without touching the
// chain (the hot path never waits on it); a trigger queues each row in audit_unsealed inside the
// inserting transaction, so a row enters the queue exactly when it commits. One sealer per
// database (the holder of a session-level advisory lock; another replica takes over within
// `leaderRetryMs` when the holder's connection ends) polls the queue every `intervalMs`, and in
// one transaction gives the queued rows the next sequence numbers and hashes and removes them
// from the queue.
//
// Order: the chain follows the order in which rows became visible to the sealer (commit order,
// as far as it can be observed), queue id breaking ties within one batch. Ids from sequences are
// not commit order: a row that commits late with a smaller id is simply in a later batch; it is
// never skipped, because the queue is a work list, not a high-water mark.
//
// The window between commit and seal is one poll interval plus one batch (about 200-400 ms by
// default; seconds only when the sealer falls behind or no replica holds the lock). `verify`
// reports rows in that window as an unsealed tail, not as tampering.
import type { Logger } from "../../log.js";
import { closeChainClient, connectChainClient, tryLeaderLock } from "../../store/chain/pg.js";
import { sealAll, sealBatch } from "../../store/chain/seal.js";
import type { ChainClient } from "../../store/pools.js";

export { readHead, sealAll, sealBatch, type ChainHead } from "../../store/chain/seal.js";

export interface SealerStatus {
  leader: boolean;
  sealedRows: number;
  batches: number;
  lastError?: string;
  lastSealAt?: Date;
}

export interface SealerOptions {
  intervalMs: number;
  /** How often a replica that does not hold the lock tries to take it. */
  leaderRetryMs?: number;
  batchSize?: number;
  log: Logger;
  /** Periodic work for the leader (checkpoints, retention), run between batches on its connection. */
  leaderTick?: (client: ChainClient) => Promise<void>;
  leaderTickMs?: number;
  /** After each batch that sealed rows, on the leader's connection (the head anchor: checkpoint.ts). */
  afterBatch?: (client: ChainClient) => Promise<void> | void;
}

export class Sealer {
  #client: ChainClient | undefined;
  #stopped = false;
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  #nextTick = 0;
  #status: SealerStatus = { leader: false, sealedRows: 0, batches: 0 };

  constructor(private readonly url: string, private readonly opts: SealerOptions) {}

  get status(): SealerStatus {
    return { ...this.#status };
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** Stops polling; the leader seals what is queued (bounded by `finalSealMs`) and releases the lock. */
  async stop(finalSealMs = 3000): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    const deadline = Date.now() + finalSealMs;
    // A batch in flight on a dead connection must not hold up shutdown.
    const loopEnded = await withinMs(this.#loop ?? Promise.resolve(), finalSealMs);
    const client = this.#client;
    this.#client = undefined;
    if (client && loopEnded && this.#status.leader) {
      await withinMs(sealAll(client).catch(() => 0), Math.max(0, deadline - Date.now()));
    }
    this.#status.leader = false;
    await closeChainClient(client, 1000); // ending the session releases the lock
  }

  async #run(): Promise<void> {
    const batch = this.opts.batchSize ?? 1000;
    let failures = 0;
    while (!this.#stopped) {
      try {
        if (!this.#client) {
          // The name lets an operator (and tests) see which process holds the sealer lock.
          const client = await connectChainClient(this.url, (err) => this.#noteError(err), `countersign-sealer pid=${process.pid}`);
          if (this.#stopped) {
            await closeChainClient(client);
            break;
          }
          this.#client = client;
        }
        if (!this.#status.leader) {
          if (!(await tryLeaderLock(this.#client))) {
            await this.#sleep(this.opts.leaderRetryMs ?? 2000);
            continue;
          }
          this.#status.leader = true;
          this.opts.log.info("audit chain: this instance is the sealer");
        }
        const n = await sealBatch(this.#client, batch);
        if (n > 0) {
          this.#status.sealedRows += n;
          this.#status.batches++;
          this.#status.lastSealAt = new Date();
          await this.opts.afterBatch?.(this.#client);
        }
        if (this.opts.leaderTick && Date.now() >= this.#nextTick) {
          this.#nextTick = Date.now() + (this.opts.leaderTickMs ?? 30_000);
          await this.opts.leaderTick(this.#client);
        }
        if (failures > 0) this.opts.log.warn("audit chain: sealing again");
        failures = 0;
        delete this.#status.lastError;
        if (n < batch) await this.#sleep(this.opts.intervalMs);
      } catch (err) {
        if (this.#stopped) break;
        this.#noteError(err as Error);
        if (failures++ === 0) this.opts.log.error({ error: this.#status.lastError }, "audit chain: sealing failed; retrying");
        // Start over on a fresh connection; the lock (if held) ended with the old session.
        const old = this.#client;
        this.#client = undefined;
        this.#status.leader = false;
        await closeChainClient(old, 500);
        await this.#sleep(Math.min(5000, 250 * 2 ** Math.min(failures, 5)));
      }
    }
  }

  #noteError(err: Error): void {
    this.#status.lastError = (err.message ?? String(err)).split("\n")[0]!.slice(0, 300);
  }

  #sleep(ms: number): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }
}

/** True when `work` settled within `ms`. */
async function withinMs(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = await Promise.race([
    work.then(() => true, () => true),
    new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms))),
  ]);
  clearTimeout(timer);
  return settled;
}
