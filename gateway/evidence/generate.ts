// One digest from start to end: compute the sections, seal (hash and sign) the content, store it
// with its digest_generated event, and optionally post it. Used by the scheduler and the CLI.
import type { ChainClient } from "../store/pools.js";
import type { SignerKey, VerifierKey } from "../audit/chain/keys.js";
import { computeDigest, type DigestContent } from "./digest.js";
import { renderDigest } from "./render.js";
import { sealDigest, type DigestSeal } from "./sign.js";
import { markPosted, recordPostFailure, storeDigest, storedDigest, type StoredDigest } from "../store/digests.js";
import type { IsoWeek } from "./week.js";

/** Where a digest is posted (the Slack side lives in bot/digest.ts; the gateway does not depend on it). */
export interface DigestPoster {
  channel: string;
  /** Posts the summary, then the report; `uploadError`: the summary is there, the report is not. */
  post(digest: { content: DigestContent; seal: DigestSeal; markdown: string; filename: string }): Promise<{ ts: string; fileId: string | null; uploadError?: string | undefined }>;
}

/** The summary reached the channel but the report could not be uploaded (the summary says so). */
export class DigestUploadError extends Error {
  constructor(
    readonly week: string,
    readonly channel: string,
    readonly ts: string,
    readonly reason: string,
  ) {
    super(`the digest of ${week} was posted to ${channel}, but its report could not be uploaded: ${reason}`);
  }
}

export interface GenerateOptions {
  week: IsoWeek;
  trigger: "scheduled" | "on_demand";
  signer?: SignerKey | undefined;
  verifiers: Map<string, VerifierKey>;
  generatedBy?: string | null;
  onProgress?: ((done: number, total: number) => void) | undefined;
}

export interface GeneratedDigest {
  stored: StoredDigest;
  content: DigestContent;
  seal: DigestSeal;
}

export async function generateDigest(client: ChainClient, opts: GenerateOptions): Promise<GeneratedDigest> {
  const content = await computeDigest(client, {
    week: opts.week,
    verifiers: opts.verifiers,
    generatedBy: opts.generatedBy ?? null,
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
  });
  const seal = sealDigest(content, opts.signer);
  const stored = await storeDigest(client, content, seal, opts.trigger);
  return { stored, content, seal };
}

export interface WeekDigest {
  content: DigestContent;
  seal: DigestSeal;
  /** The stored digest (complete weeks only); undefined for a partial week. */
  stored?: StoredDigest | undefined;
  /** An existing stored digest was reused (nothing new was stored or signed). */
  reused: boolean;
}

/**
 * The digest of a week for any format: a complete week's stored, signed digest (computed, signed
 * and stored the first time only); a week not over yet is computed and rendered, never stored or
 * signed (its figures would change).
 */
export async function digestForWeek(client: ChainClient, opts: GenerateOptions & { now?: Date; publicKey?: string | null }): Promise<WeekDigest> {
  const now = opts.now ?? new Date();
  if (opts.week.end > now) {
    const content = await computeDigest(client, { week: opts.week, verifiers: opts.verifiers, generatedBy: opts.generatedBy ?? null, now, ...(opts.onProgress ? { onProgress: opts.onProgress } : {}) });
    return { content, seal: sealDigest(content, undefined), reused: false };
  }
  const existing = await storedDigest(client, opts.week.label, opts.week.timeZone);
  if (existing) return { content: existing.content, seal: storedSeal(existing, opts.publicKey ?? null), stored: existing, reused: true };
  const g = await generateDigest(client, opts);
  return { content: g.content, seal: g.seal, stored: g.stored, reused: false };
}

/** The seal of a stored digest (the public key is not stored: it comes from the configuration). */
export function storedSeal(d: StoredDigest, publicKey: string | null = null): DigestSeal {
  return { sha256: d.sha256.trim(), signature: d.signature, keyId: d.keyId, publicKey };
}

export function digestFilename(content: DigestContent): string {
  return `countersign-digest-${content.week}.md`;
}

/**
 * Posts a stored digest (message and Markdown report) and records the outcome; throws on failure.
 * A summary posted without its report counts as posted (it is not posted again) and throws
 * DigestUploadError, so the failure is reported as what it is.
 */
export async function postDigest(client: ChainClient, poster: DigestPoster, d: StoredDigest, seal: DigestSeal): Promise<{ ts: string; fileId: string | null }> {
  const markdown = renderDigest(d.content, seal, "md");
  let res;
  try {
    res = await poster.post({ content: d.content, seal, markdown, filename: digestFilename(d.content) });
  } catch (err) {
    await recordPostFailure(client, d, poster.channel, (err as Error).message).catch(() => {});
    throw err;
  }
  await markPosted(client, d, { channel: poster.channel, ts: res.ts, fileId: res.fileId });
  if (res.uploadError) {
    await recordPostFailure(client, d, poster.channel, `report upload failed: ${res.uploadError}`).catch(() => {});
    throw new DigestUploadError(d.week, poster.channel, res.ts, res.uploadError);
  }
  return { ts: res.ts, fileId: res.fileId };
}
