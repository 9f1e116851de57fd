// The audit chain inside a running gateway: the sealer (leader only, by advisory lock) and, on
// the leader, checkpoints every `intervalMinutes` and retention after each checkpoint.
import type { GatewayConfig } from "../../config/load.js";
import type { Logger } from "../../log.js";
import { checkpointDue, takeCheckpoint } from "./checkpoint.js";
import { loadCheckpointKeys, type CheckpointKeys } from "./keys.js";
import { purgeExpired } from "./retention.js";
import { sealAll, Sealer } from "./sealer.js";

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
  const sealer = new Sealer(databaseUrl, {
    intervalMs: config.audit.sealIntervalMs,
    log,
    ...(opts.leaderRetryMs ? { leaderRetryMs: opts.leaderRetryMs } : {}),
    leaderTickMs: Math.min(opts.checkpointCheckMs ?? 30_000, intervalMinutes * 60_000),
    leaderTick: signer
      ? async (client) => {
          if (!(await checkpointDue(client, intervalMinutes))) return;
          await sealAll(client, 100_000);
          try {
            const cp = await takeCheckpoint(client, signer, { directory });
            log.info({ checkpoint: cp.id, seq: cp.body.sequence, head: cp.body.head }, "audit chain: checkpoint signed");
          } catch (err) {
            // Stored but not written to the directory (or not stored): say so, keep sealing; the
            // next check retries when no checkpoint was stored.
            log.error({ error: (err as Error).message }, "audit chain: checkpoint failed");
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
