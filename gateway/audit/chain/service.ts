// The audit chain inside a running gateway: the sealer (leader only, by advisory lock) and, on
// the leader, checkpoints every `intervalMinutes` and retention after each checkpoint.
import type { GatewayConfig } from "../../config/load.js";
import type { Logger } from "../../log.js";
import { checkpointDue, takeCheckpoint, writeHeadAnchor } from "./checkpoint.js";
import { loadCheckpointKeys, type CheckpointKeys } from "./keys.js";
import { purgeExpired } from "../../store/chain/retention.js";
import { readHead, sealAll, Sealer } from "./sealer.js";
import type { ChainClient } from "../../store/pools.js";

/** The head anchor is rewritten at most this often while rows are sealed (and at every checkpoint check). */
const HEAD_ANCHOR_EVERY_MS = 1000;

export interface AuditChain {
  sealer: Sealer;
  keys: CheckpointKeys;
  stop(): Promise<void>;
}

export interface AuditChainOptions {
  /** How often the leader checks whether a checkpoint is due (default 30 s). */
  checkpointCheckMs?: number;
  leaderRetryMs?: number;
}

export function startAuditChain(config: GatewayConfig, databaseUrl: string, log: Logger, opts: AuditChainOptions = {}): AuditChain {
  const keys = loadCheckpointKeys(config, true);
  if (keys.warning) log.warn(`WARNING: ${keys.warning}`);
  const intervalMinutes = config.audit.checkpoint?.intervalMinutes ?? 60;
  const directory = config.audit.checkpoint?.directory;
  const signer = keys.signer;
  const retentionDays = config.audit.retentionDays;
  // The head, signed, outside the database (checkpoint.ts): a failed write is logged, never stops sealing.
  let anchoredSeq = -1n;
  let anchoredAt = 0;
  const anchorHead = async (client: ChainClient, force: boolean) => {
    if (!signer || !directory || (!force && Date.now() - anchoredAt < HEAD_ANCHOR_EVERY_MS)) return;
    const head = await readHead(client);
    if (head.seq === anchoredSeq) return;
    anchoredAt = Date.now();
    try {
      writeHeadAnchor(directory, head, signer);
      anchoredSeq = head.seq;
    } catch (err) {
      log.error({ err }, "audit chain: could not write the head anchor");
    }
  };
  const sealer = new Sealer(databaseUrl, {
    intervalMs: config.audit.sealIntervalMs,
    log,
    ...(opts.leaderRetryMs ? { leaderRetryMs: opts.leaderRetryMs } : {}),
    leaderTickMs: Math.min(opts.checkpointCheckMs ?? 30_000, intervalMinutes * 60_000),
    afterBatch: (client) => anchorHead(client, false),
    leaderTick: signer
      ? async (client) => {
          await anchorHead(client, true);
          if (!(await checkpointDue(client, intervalMinutes))) return;
          await sealAll(client, 100_000);
          try {
            const cp = await takeCheckpoint(client, signer, { directory });
            log.info({ checkpoint: cp.id, seq: cp.body.sequence, head: cp.body.head }, "audit chain: checkpoint signed");
          } catch (err) {
            // Stored but not written to the directory (or not stored): say so, keep sealing; the
            // next check retries when no checkpoint was stored.
            log.error({ err }, "audit chain: checkpoint failed");
            return;
          }
          if (retentionDays !== undefined) {
            const r = await purgeExpired(client, retentionDays);
            if (r.throughSequence !== null) log.info({ throughSequence: r.throughSequence, deleted: r.deleted }, "audit chain: retention deleted expired records");
          }
        }
      : undefined,
  });
  sealer.start();
  return { sealer, keys, stop: () => sealer.stop() };
}
