// `countersign verify` and `countersign checkpoint`: the work behind the two commands in
// gateway/cli.ts, which only parse options.
import type { GatewayConfig } from "../../config/load.js";
import { takeCheckpoint } from "./checkpoint.js";
import { loadCheckpointKeys } from "./keys.js";
import { closeChainClient, connectChainClient } from "../../store/chain/pg.js";
import { sealAll } from "./sealer.js";
import { formatVerifyResult, verifyChain } from "./verify.js";
import { progressFor } from "../../progress.js";

export interface VerifyCommandOptions {
  since?: string;
  until?: string;
  checkpoints?: string;
  json?: boolean;
  /** Rows deleted before they were sealed are a warning, not a failure. */
  allowMissing?: boolean;
  /** Fail unless a recent checkpoint outside the database vouches for the chain. */
  requireAnchor?: boolean;
}

/** "2026-11-24T10:00:00Z", "2026-11-24", or a duration ago: 30m, 2h, 7d. */
export function parseTime(option: string, text: string): Date {
  const rel = /^(\d+)([smhd])$/.exec(text);
  if (rel) return new Date(Date.now() - Number(rel[1]) * { s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 }[rel[2] as "s"]);
  const d = new Date(text);
  if (Number.isNaN(d.getTime())) throw new UsageError(`${option}: '${text}' is neither an ISO time nor a duration like 30m, 2h, 7d`);
  return d;
}

export class UsageError extends Error {}

/** Runs the verification and prints the result; returns the exit code (0 only when everything verified). */
export async function verifyCommand(cfg: GatewayConfig, databaseUrl: string, opts: VerifyCommandOptions): Promise<number> {
  const since = opts.since ? parseTime("--since", opts.since) : undefined;
  const until = opts.until ? parseTime("--until", opts.until) : undefined;
  const keys = loadCheckpointKeys(cfg, false);
  const client = await connectChainClient(databaseUrl);
  const bar = progressFor("verifying the audit chain", opts);
  try {
    const result = await verifyChain(client, {
      since,
      until,
      checkpointsDir: opts.checkpoints ?? cfg.audit.checkpoint?.directory,
      keys: keys.verifiers,
      checkpointIntervalMinutes: cfg.audit.checkpoint?.intervalMinutes ?? 60,
      allowMissing: opts.allowMissing,
      requireAnchor: opts.requireAnchor,
      onProgress: (done, total) => bar.update(done, total),
    });
    bar.done();
    if (keys.warning && keys.verifiers.size > 0) result.warnings.push(keys.warning);
    process.stdout.write(opts.json ? JSON.stringify(result, null, 2) + "\n" : formatVerifyResult(result) + "\n");
    return result.ok ? 0 : 1;
  } finally {
    bar.done();
    await closeChainClient(client);
  }
}

/** Seals what is queued and signs the head now; prints the checkpoint. */
export async function checkpointCommand(cfg: GatewayConfig, databaseUrl: string, opts: { json?: boolean }): Promise<number> {
  const keys = loadCheckpointKeys(cfg, true);
  if (!keys.signer) throw new UsageError(keys.warning ?? "no checkpoint key is configured (audit.checkpoint.keys)");
  if (keys.warning) process.stderr.write(`countersign: WARNING: ${keys.warning}\n`);
  const client = await connectChainClient(databaseUrl);
  const bar = progressFor("sealing the queued records", opts);
  try {
    await sealAll(client, Number.POSITIVE_INFINITY, 1000, (done, total) => bar.update(done, total));
    bar.done();
    const cp = await takeCheckpoint(client, keys.signer, { directory: cfg.audit.checkpoint?.directory });
    process.stdout.write(
      opts.json
        ? JSON.stringify(cp, null, 2) + "\n"
        : `checkpoint #${cp.id}: seq ${cp.body.sequence}, head ${cp.body.head}, ${cp.body.time}, signed by '${cp.body.keyId}'\n`,
    );
    return 0;
  } finally {
    bar.done();
    await closeChainClient(client);
  }
}
