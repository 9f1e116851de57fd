// The digest schedule inside a running gateway: signs with the audit chain's checkpoint key and,
// when digest.slackChannel is set, posts with the approvals bot (loaded only then, so the gateway
// does not depend on Slack unless it is used).
import type { CheckpointKeys } from "../audit/chain/keys.js";
import type { GatewayConfig } from "../config/load.js";
import type { Logger } from "../log.js";
import type { DigestPoster } from "./generate.js";
import { DigestScheduler } from "./scheduler.js";
import type { Pool } from "../store/pools.js";
import type { SecurityAlert } from "../approvals/types.js";

export async function startDigestSchedule(
  config: GatewayConfig,
  databaseUrl: string,
  pool: Pool,
  keys: CheckpointKeys,
  log: Logger,
  instanceId: string,
  onChainFailure?: (alert: SecurityAlert) => void,
): Promise<DigestScheduler> {
  const d = config.digest;
  let poster: DigestPoster | undefined;
  if (d.slackChannel && config.approvals?.slack) {
    const { createSlackDigestPoster } = await import("../../bot/digest.js");
    // Few quick retries here: the scheduler retries a failed post itself, with back-off.
    poster = createSlackDigestPoster(config.approvals.slack, d.slackChannel, { retryConfig: { retries: 2, factor: 1, minTimeout: 500, maxTimeout: 2000 } });
  }
  if (!keys.signer) log.warn("digest: no checkpoint key is configured: weekly digests are stored unsigned");
  const scheduler = new DigestScheduler({
    databaseUrl,
    pool,
    schedule: d.schedule,
    timeZone: d.timeZone,
    checkIntervalMs: d.checkIntervalMs,
    signer: keys.signer,
    verifiers: keys.verifiers,
    poster,
    log: log.child({ component: "digest" }),
    instanceId,
    onChainFailure,
  });
  scheduler.start();
  return scheduler;
}
