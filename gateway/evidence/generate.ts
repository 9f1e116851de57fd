// One digest from start to end: compute the sections, seal (hash and sign) the content, store it
// with its digest_generated event, and optionally post it. Used by the scheduler and the CLI.
import type pg from "pg";
import type { SignerKey, VerifierKey } from "../audit/chain/keys.js";
import { computeDigest, type DigestContent } from "./digest.js";
import { renderDigest } from "./render.js";
import { sealDigest, type DigestSeal } from "./sign.js";
import { markPosted, recordPostFailure, storeDigest, type StoredDigest } from "./store.js";
import type { IsoWeek } from "./week.js";

/** Where a digest is posted (the Slack side lives in bot/digest.ts; the gateway does not depend on it). */
export interface DigestPoster {
  channel: string;
  post(digest: { content: DigestContent; seal: DigestSeal; markdown: string; filename: string }): Promise<{ ts: string; fileId: string | null }>;
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

export async function generateDigest(client: pg.Client, opts: GenerateOptions): Promise<GeneratedDigest> {
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

/** The seal of a stored digest (the public key is not stored: it comes from the configuration). */
export function storedSeal(d: StoredDigest, publicKey: string | null = null): DigestSeal {
  return { sha256: d.sha256.trim(), signature: d.signature, keyId: d.keyId, publicKey };
}

export function digestFilename(content: DigestContent): string {
  return `countersign-digest-${content.week}.md`;
}

/** Posts a stored digest (message and Markdown report) and records the outcome; throws on failure. */
export async function postDigest(client: pg.Client, poster: DigestPoster, d: StoredDigest, seal: DigestSeal): Promise<{ ts: string; fileId: string | null }> {
  const markdown = renderDigest(d.content, seal, "md");
  try {
    const res = await poster.post({ content: d.content, seal, markdown, filename: digestFilename(d.content) });
    await markPosted(client, d, { channel: poster.channel, ts: res.ts, fileId: res.fileId });
    return res;
  } catch (err) {
    await recordPostFailure(client, d, poster.channel, (err as Error).message).catch(() => {});
    throw err;
  }
}
