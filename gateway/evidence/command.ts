// `countersign digest`: generates (signs, stores, records) the digest of one ISO week on demand,
// prints it in the format asked for, and posts it to the managers' channel with --post. Progress
// goes to stderr, the report to stdout (or --out).
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { hostname, userInfo } from "node:os";
import { loadCheckpointKeys, type SignerKey } from "../audit/chain/keys.js";
import { closeChainClient, connectChainClient } from "../store/chain/pg.js";
import type { GatewayConfig } from "../config/load.js";
import type { DigestContent } from "./digest.js";
import { DigestUploadError, digestForWeek, postDigest } from "./generate.js";
import { digestBytes, verifyDigestSignature } from "./sign.js";
import { DIGEST_FORMATS, renderDigest, type DigestFormat } from "./render.js";
import { lastCompleteWeek, parseIsoWeek, WeekError } from "./week.js";
import { earlierDigests } from "../store/digests.js";
import { progressFor } from "../progress.js";

export class DigestUsageError extends Error {}

export interface DigestCommandOptions {
  week?: string;
  format?: string;
  post?: boolean;
  out?: string;
}

function who(): string {
  let user = "unknown";
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (containers): keep "unknown".
  }
  return `cli:${user}@${hostname()}`;
}

export async function digestCommand(cfg: GatewayConfig, databaseUrl: string, opts: DigestCommandOptions, now = new Date()): Promise<number> {
  const format = (opts.format ?? "md") as DigestFormat;
  if (!DIGEST_FORMATS.includes(format)) throw new DigestUsageError(`--format: '${opts.format}' is not one of ${DIGEST_FORMATS.join(", ")}`);
  const zone = cfg.digest.timeZone;
  let week;
  try {
    week = opts.week ? parseIsoWeek(opts.week, zone) : lastCompleteWeek(now, zone);
  } catch (err) {
    if (err instanceof WeekError) throw new DigestUsageError(`--week: ${err.message}`);
    throw err;
  }
  if (week.start > now) throw new DigestUsageError(`--week: ${week.label} has not started yet (in ${zone})`);
  let poster;
  if (opts.post) {
    const slack = cfg.approvals?.slack;
    if (!cfg.digest.slackChannel || !slack) {
      throw new DigestUsageError("--post needs digest.slackChannel (the managers' channel) and approvals.slack (the bot's token) in the configuration");
    }
    const { createSlackDigestPoster } = await import("../../bot/digest.js");
    poster = createSlackDigestPoster(slack, cfg.digest.slackChannel, { retryConfig: { retries: 2 } });
  }

  let signer: SignerKey | undefined;
  let verifiers;
  try {
    const keys = loadCheckpointKeys(cfg, true);
    signer = keys.signer;
    verifiers = keys.verifiers;
    if (!signer) process.stderr.write(`countersign: WARNING: the digest is not signed: ${keys.warning ?? "no checkpoint key is configured"}\n`);
  } catch (err) {
    process.stderr.write(`countersign: WARNING: the digest is not signed: ${(err as Error).message}\n`);
    verifiers = loadCheckpointKeys(cfg, false).verifiers;
  }

  const bar = progressFor("verifying the audit chain", { json: format === "json" });
  process.stderr.write(`digest ${week.label} (${week.firstDay} to ${week.lastDay}, ${zone})${week.end > now ? ": the week is not over, figures are partial (shown, not stored or signed)" : ""}\n`);
  const onProgress = (done: number, total: number) => bar.update(done, total);
  const partial = week.end > now;
  if (partial && poster) throw new DigestUsageError(`--post: ${week.label} is not over yet (in ${zone}); a partial week is shown, never posted, stored or signed`);
  const client = await connectChainClient(databaseUrl, undefined, "countersign-digest");
  try {
    const started = Date.now();
    const g = await digestForWeek(client, { week, trigger: "on_demand", signer, verifiers, generatedBy: who(), onProgress, now });
    bar.done();
    const what = `${g.content.summary.exceptions} exception(s), sha256 ${g.seal.sha256.slice(0, 16)}…`;
    process.stderr.write(
      partial
        ? `digest of the partial week ${week.label} computed in ${Date.now() - started} ms: ${what}; not stored, not signed (the week is not over)\n`
        : g.reused
          ? `digest #${g.stored!.id} of ${week.label} reused (stored ${g.stored!.generatedAt.toISOString()}): ${what}${g.seal.keyId ? `, signed with '${g.seal.keyId}'` : ", unsigned"}\n`
          : `digest #${g.stored!.id} stored and recorded in ${Date.now() - started} ms: ${what}${g.seal.keyId ? `, signed with '${g.seal.keyId}'` : ", unsigned"}\n`,
    );
    const output = renderDigest(g.content, g.seal, format, { history: await earlierDigests(client, week.label, zone) });
    if (opts.out) {
      writeFileSync(opts.out, output);
      process.stderr.write(`written to ${opts.out}\n`);
    } else process.stdout.write(output);
    if (poster && g.stored) {
      try {
        const res = await postDigest(client, poster, g.stored, g.seal);
        process.stderr.write(`posted to ${poster.channel} (ts ${res.ts}${res.fileId ? `, file ${res.fileId}` : ""})\n`);
      } catch (err) {
        // The digest exists and is stored: what failed is the post (or only the report's upload).
        process.stderr.write(
          err instanceof DigestUploadError
            ? `countersign: ${err.message} (the summary in Slack says so)\n`
            : `countersign: the digest of ${week.label} is stored, but posting it to ${poster.channel} failed: ${(err as Error).message.split("\n")[0]}\n`,
        );
        return 3;
      }
    }
    return 0;
  } finally {
    bar.done();
    await closeChainClient(client);
  }
}

/**
 * `countersign digest --verify <file>`: checks a digest saved with --format json against the
 * configured checkpoint public keys (never the key printed in the file). Exit 0 only when valid.
 */
export function verifyDigestFile(cfg: GatewayConfig, file: string): number {
  let saved: { digest?: DigestContent; sha256?: string; signature?: string | null; keyId?: string | null };
  try {
    saved = JSON.parse(readFileSync(file, "utf8")) as typeof saved;
  } catch (err) {
    throw new DigestUsageError(`--verify: cannot read ${file} as JSON: ${(err as Error).message.split("\n")[0]}`);
  }
  if (!saved.digest || saved.digest.format !== "countersign-digest/1") throw new DigestUsageError(`--verify: ${file} is not a digest saved with --format json`);
  const sha256 = createHash("sha256").update(digestBytes(saved.digest)).digest("hex");
  const what = `digest ${saved.digest.week} (${saved.digest.timeZone}), generated ${saved.digest.generatedAt}`;
  if (sha256 !== saved.sha256) {
    process.stdout.write(`FAILED: ${what}: its content does not match its SHA-256 (changed after signing)\n`);
    return 1;
  }
  if (!saved.signature || !saved.keyId) {
    process.stdout.write(`FAILED: ${what} is not signed (sha256 ${sha256})\n`);
    return 1;
  }
  const key = loadCheckpointKeys(cfg, false).verifiers.get(saved.keyId);
  if (!key) {
    process.stdout.write(`FAILED: ${what} is signed with key '${saved.keyId}', which is not among the configured checkpoint keys (audit.checkpoint)\n`);
    return 1;
  }
  if (!verifyDigestSignature(saved.digest, saved.signature, key.key)) {
    process.stdout.write(`FAILED: ${what}: the signature does not verify with key '${saved.keyId}'\n`);
    return 1;
  }
  process.stdout.write(`OK: ${what}: sha256 ${sha256}, signed with '${saved.keyId}'\n`);
  return 0;
}
