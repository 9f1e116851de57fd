// `countersign verify`: recomputes the chain from its first kept entry (or a signed checkpoint)
// and checks every checkpoint's signature against the configured public keys. It reports the
// range verified, or the first bad sequence number and what is wrong:
//   modified   a record's content (or its stored hash) differs from what was sealed
//   missing    a sealed record or chain entry is gone (and no retention record explains it)
//   reordered  the record sealed at N is found at another position
//   inserted   an entry that was never sealed sits in the chain, or rows bypassed the seal queue
//   truncated  the chain ends before the sequence a signed checkpoint vouches for
//   rewritten  the chain is self-consistent but differs from a signed checkpoint (re-hashed)
//   forged_checkpoint  a checkpoint's signature, key, window or link to its predecessor is wrong
//   unanchored  (--require-anchor) no checkpoint outside the database vouches for the chain, or
//              the newest one is too old to vouch for its tail
// Rows committed but not yet sealed are reported as the unsealed tail, never as tampering. Rows
// deleted while queued for sealing (sealed as `missing`) fail verification: only
// `allowMissing` (--allow-missing) turns them into a warning.
import { GENESIS_HASH, recordHash } from "./canonical.js";
import { checkHeadSignature, checkSignature, checkpointDigest, listCheckpoints, readCheckpointFiles, readHeadAnchor, type SignedCheckpoint } from "./checkpoint.js";
import type { VerifierKey } from "./keys.js";
import { chainBounds, entriesAfter, hashAt, lastSeqSealedBy, rowsOutsideChain, sealedAtOf, sealedRetentionThrough, sourcesInUse, unsealedQueue, type Entry } from "../../store/chain/reads.js";
import { fetchRecords, recordKey } from "../../store/chain/records.js";
import type { ChainClient } from "../../store/pools.js";

export type ProblemKind = "modified" | "missing" | "reordered" | "inserted" | "truncated" | "rewritten" | "forged_checkpoint" | "unanchored";

export interface Problem {
  /** The first sequence number affected; null for rows that never entered the chain. */
  seq: number | null;
  kind: ProblemKind;
  detail: string;
}

export interface VerifyOptions {
  since?: Date | undefined;
  until?: Date | undefined;
  /** A directory of checkpoint files (copies kept outside PostgreSQL). */
  checkpointsDir?: string | undefined;
  keys: Map<string, VerifierKey>;
  /** For the "latest checkpoint is old" warning. */
  checkpointIntervalMinutes?: number | undefined;
  /** Rows deleted before they were sealed (sealed as `missing`) are a warning, not a failure. */
  allowMissing?: boolean | undefined;
  /**
   * Fail unless a checkpoint outside the database (checkpointsDir) vouches for the chain and is
   * recent (within two checkpoint intervals): what is not anchored outside could be cut unnoticed.
   */
  requireAnchor?: boolean | undefined;
  onProgress?: (done: number, total: number) => void;
  batchSize?: number;
  now?: Date;
}

export interface VerifyResult {
  ok: boolean;
  /** The entries recomputed; null when there were none. */
  range: { from: number; to: number; fromTime: string | null; toTime: string | null; records: number } | null;
  head: { seq: number; hash: string } | null;
  /** The problem with the lowest sequence number. */
  firstBad: Problem | null;
  problems: Problem[];
  checkpoints: { stored: number; files: number; valid: number; latest: { id?: string; seq: number; time: string } | null };
  unsealed: { count: number; oldestQueuedAt: string | null };
  warnings: string[];
}

interface TrustedCheckpoint extends SignedCheckpoint {
  label: string;
}

/** How far ahead a mismatch looks for a displaced record when telling reordering from modification. */
const REORDER_WINDOW = 256;

export async function verifyChain(client: ChainClient, opts: VerifyOptions): Promise<VerifyResult> {
  const problems: Problem[] = [];
  const warnings: string[] = [];
  const now = opts.now ?? new Date();

  // 1. Checkpoints: each signed by a configured key within its window, each naming its predecessor.
  const stored = await listCheckpoints(client);
  const trusted: TrustedCheckpoint[] = [];
  let previous: SignedCheckpoint | undefined;
  for (const cp of stored) {
    const label = `checkpoint #${cp.id} (seq ${cp.body.sequence}, ${cp.body.time})`;
    const bad = checkSignature(cp, opts.keys);
    if (bad) problems.push({ seq: cp.body.sequence, kind: "forged_checkpoint", detail: `${label}: ${bad}` });
    else if (previous && cp.body.previous !== checkpointDigest(previous)) {
      problems.push({ seq: cp.body.sequence, kind: "forged_checkpoint", detail: `${label} does not follow the checkpoint before it: a checkpoint was removed or inserted` });
    } else if (!previous && cp.body.previous !== null) {
      problems.push({ seq: cp.body.sequence, kind: "forged_checkpoint", detail: `${label} names a previous checkpoint that is not in the database: earlier checkpoints were removed` });
    } else if (previous && (cp.body.sequence < previous.body.sequence || cp.body.time <= previous.body.time)) {
      problems.push({ seq: cp.body.sequence, kind: "forged_checkpoint", detail: `${label} goes back in sequence or time` });
    } else trusted.push({ ...cp, label });
    previous = cp;
  }
  let files = 0;
  /** Signed heads found outside the database (checkpoint files, the head anchor). */
  const anchored: TrustedCheckpoint[] = [];
  if (opts.checkpointsDir) {
    const digests = new Set(stored.map(checkpointDigest));
    for (const f of readCheckpointFiles(opts.checkpointsDir)) {
      files++;
      if (!f.checkpoint) {
        warnings.push(`${f.file}: ${f.error}`);
        continue;
      }
      const label = `checkpoint file ${f.file} (seq ${f.checkpoint.body.sequence}, ${f.checkpoint.body.time})`;
      const bad = checkSignature(f.checkpoint, opts.keys);
      if (bad) {
        problems.push({ seq: f.checkpoint.body.sequence, kind: "forged_checkpoint", detail: `${label}: ${bad}` });
        continue;
      }
      anchored.push({ ...f.checkpoint, label });
      if (!digests.has(checkpointDigest(f.checkpoint))) {
        // A signed checkpoint the database no longer has: its head still binds the chain.
        problems.push({ seq: f.checkpoint.body.sequence, kind: "missing", detail: `${label} is signed but not in the database: checkpoints were removed from it` });
        trusted.push({ ...f.checkpoint, label });
      }
    }
    const head = readHeadAnchor(opts.checkpointsDir);
    if (head?.error) warnings.push(`${opts.checkpointsDir}/head.json: ${head.error}`);
    else if (head?.anchor) {
      const a = head.anchor;
      const label = `the head anchored outside the database (seq ${a.body.sequence}, ${a.body.time})`;
      const bad = checkHeadSignature(a, opts.keys);
      if (bad) problems.push({ seq: a.body.sequence, kind: "forged_checkpoint", detail: `${label}: ${bad}` });
      else {
        // It binds the chain as a checkpoint does (truncation, rewriting), without a link of its own.
        const asCheckpoint: TrustedCheckpoint = { body: { v: 1, sequence: a.body.sequence, head: a.body.head, time: a.body.time, previous: null, keyId: a.body.keyId }, signature: a.signature, label };
        anchored.push(asCheckpoint);
        trusted.push(asCheckpoint);
      }
    }
  }
  const trustedAt = new Map<number, TrustedCheckpoint[]>();
  for (const t of trusted) trustedAt.set(t.body.sequence, [...(trustedAt.get(t.body.sequence) ?? []), t]);

  // 2. Bounds of what is kept, and where to start.
  const { min: minSeq, max: maxSeq } = await chainBounds(client);
  let anchor: { seq: number; hash: string; what: string } = { seq: 0, hash: GENESIS_HASH, what: "the start of the chain" };
  let chainFailure: Problem | null = null;
  // An empty chain with signed checkpoints is a truncation, reported in step 4.
  const keptFrom = minSeq ?? 1;
  if (keptFrom > 1) {
    // Records before `keptFrom` are gone: only retention, cut at a signed checkpoint, may do that.
    const cut = trusted.find((t) => t.body.sequence === keptFrom - 1);
    const through = await sealedRetentionThrough(client);
    if (cut && through !== null && through >= keptFrom - 1) {
      anchor = { seq: cut.body.sequence, hash: cut.body.head, what: `${cut.label}, where retention cut the chain` };
    } else {
      chainFailure = {
        seq: 1,
        kind: "missing",
        detail: `entries 1..${keptFrom - 1} are gone, and ${through === null ? "no retention record" : `the retention record (through seq ${through})`} ${cut ? "does not explain it" : "and no signed checkpoint at the cut explain it"}`,
      };
    }
  }
  if (opts.since) {
    const start = trusted
      .filter((t) => new Date(t.body.time) <= opts.since! && t.body.sequence >= anchor.seq)
      .sort((a, b) => b.body.sequence - a.body.sequence)[0];
    if (start) anchor = { seq: start.body.sequence, hash: start.body.head, what: start.label };
  }
  let through = maxSeq ?? 0;
  if (opts.until) {
    through = (await lastSeqSealedBy(client, opts.until)) ?? anchor.seq;
  }

  // 3. Walk the chain.
  const total = Math.max(0, through - anchor.seq);
  const batch = opts.batchSize ?? 2000;
  let expected = anchor.seq + 1;
  let prev = anchor.hash;
  let prevPrev: string | null = null;
  let firstTime: Date | null = null;
  let lastTime: Date | null = null;
  let previousTime: Date | null = null;
  let verifiedTo = anchor.seq;
  const sealedMissing: Entry[] = [];
  if (!chainFailure && anchor.seq > 0) {
    // The anchor's own entry, where kept, must agree with the signed head.
    const own = await hashAt(client, anchor.seq);
    if (own !== undefined && own !== anchor.hash) {
      chainFailure = { seq: anchor.seq, kind: "modified", detail: `the stored hash at seq ${anchor.seq} differs from ${anchor.what}` };
    }
  }
  walk: while (!chainFailure && expected <= through) {
    const entries = await entriesAfter(client, expected - 1, through, batch);
    if (entries.length === 0) break;
    const rows = await fetchRecords(client, entries);
    for (const e of entries) {
      if (e.seq !== expected) {
        chainFailure = { seq: expected, kind: "missing", detail: `chain entries ${expected}..${e.seq - 1} are missing (the chain jumps from ${expected - 1} to ${e.seq})` };
        break walk;
      }
      const row = rows.get(recordKey(e.source, e.sourceId));
      if (!row && !e.missing) {
        chainFailure = { seq: e.seq, kind: "missing", detail: `${e.source}#${e.sourceId}, sealed at seq ${e.seq}, was deleted` };
        break walk;
      }
      if (row && e.missing) {
        chainFailure = { seq: e.seq, kind: "inserted", detail: `${e.source}#${e.sourceId} was absent when sealed at seq ${e.seq} but exists now` };
        break walk;
      }
      if (e.missing && sealedMissing.length < 1000) sealedMissing.push(e);
      const h = recordHash(prev, { source: e.source, sourceId: e.sourceId, row: row ?? null });
      if (h !== e.hash) {
        chainFailure = await classify(client, e, row ?? null, prev, prevPrev);
        break walk;
      }
      for (const t of trustedAt.get(e.seq) ?? []) {
        if (t.body.head !== h) {
          // A valid-looking entry slipped in at this position: the next one chains past it.
          const [next] = await entriesAfter(client, e.seq, e.seq + 1, 1);
          const nextRow = next && (await fetchRecords(client, [next])).get(recordKey(next.source, next.sourceId));
          if (next && recordHash(prev, { source: next.source, sourceId: next.sourceId, row: nextRow ?? null }) === next.hash) {
            chainFailure = { seq: e.seq, kind: "inserted", detail: `entry ${e.seq} (${e.source}#${e.sourceId}) was inserted: entry ${e.seq + 1} chains directly from ${e.seq - 1}` };
            break walk;
          }
          const before = maxOf(trusted.filter((x) => x.body.sequence < e.seq && x.body.sequence >= anchor.seq).map((x) => x.body.sequence)) ?? anchor.seq;
          chainFailure = {
            seq: before + 1,
            kind: "rewritten",
            detail: `the chain is consistent but its hash at seq ${e.seq} differs from ${t.label}: entries ${before + 1}..${e.seq} were rewritten and re-hashed`,
          };
          break walk;
        }
      }
      firstTime ??= e.sealedAt;
      previousTime = lastTime;
      lastTime = e.sealedAt;
      prevPrev = prev;
      prev = h;
      verifiedTo = e.seq;
      expected++;
    }
    opts.onProgress?.(verifiedTo - anchor.seq, total);
  }
  if (chainFailure) problems.push(chainFailure);
  if (sealedMissing.length > 0) {
    // Deleted between commit and seal (while the gateway was down, say): the chain holds only that they existed.
    const first = sealedMissing[0]!;
    const list = sealedMissing.slice(0, 5).map((e) => `${e.source}#${e.sourceId} (seq ${e.seq})`).join(", ");
    const detail = `${sealedMissing.length}${sealedMissing.length >= 1000 ? "+" : ""} record(s) were deleted after they were committed and before they were sealed: ${list}${sealedMissing.length > 5 ? ", ..." : ""}`;
    if (opts.allowMissing) warnings.push(`${detail} (allowed by --allow-missing)`);
    else problems.push({ seq: first.seq, kind: "missing", detail: `${detail}; pass --allow-missing to accept a loss already investigated` });
  }
  // An entry slipped in with a valid link was walked over before it was found out.
  if (chainFailure?.seq != null && chainFailure.seq <= verifiedTo) {
    lastTime = chainFailure.seq === verifiedTo ? previousTime : ((await sealedAtOf(client, chainFailure.seq - 1)) ?? null);
    verifiedTo = chainFailure.seq - 1;
    if (verifiedTo <= anchor.seq) firstTime = lastTime = null;
  }

  // 4. A signed head beyond the end of the chain: the tail was cut off.
  if (!chainFailure) {
    const end = maxSeq ?? anchor.seq;
    const beyond = trusted.filter((t) => t.body.sequence > end).sort((a, b) => b.body.sequence - a.body.sequence)[0];
    if (beyond) {
      problems.push({ seq: end + 1, kind: "truncated", detail: `the chain ends at seq ${end} but ${beyond.label} vouches for ${beyond.body.sequence} entries: ${end + 1}..${beyond.body.sequence} were removed` });
    }
  }

  // 4b. Anchors outside the database: required, and recent enough to vouch for the tail.
  const lastAnchored = anchored.sort((a, b) => b.body.sequence - a.body.sequence || b.body.time.localeCompare(a.body.time))[0];
  const end = maxSeq ?? anchor.seq;
  if (lastAnchored && end > lastAnchored.body.sequence) {
    warnings.push(`entries ${lastAnchored.body.sequence + 1}..${end} were sealed after ${lastAnchored.label}: nothing outside the database vouches for them yet`);
  }
  if (opts.requireAnchor) {
    const interval = (opts.checkpointIntervalMinutes ?? 60) * 60_000;
    if (!opts.checkpointsDir) {
      problems.push({ seq: null, kind: "unanchored", detail: "no checkpoint directory (audit.checkpoint.directory or --checkpoints): nothing outside the database vouches for the chain" });
    } else if (!lastAnchored) {
      problems.push({ seq: null, kind: "unanchored", detail: `no valid signed checkpoint or head in ${opts.checkpointsDir}: nothing outside the database vouches for the chain` });
    } else {
      const newest = anchored.reduce((m, a) => Math.max(m, new Date(a.body.time).getTime()), 0);
      if (now.getTime() - newest > 2 * interval) {
        problems.push({
          seq: lastAnchored.body.sequence + 1,
          kind: "unanchored",
          detail: `the newest checkpoint outside the database is from ${new Date(newest).toISOString()}, more than two intervals ago: what was sealed since could have been cut unnoticed (are checkpoints still written to ${opts.checkpointsDir}?)`,
        });
      }
    }
  }

  // 5. Rows that never entered the queue (written with the trigger bypassed).
  if (!opts.since && !opts.until) {
    for (const source of await sourcesInUse(client)) {
      const outside = await rowsOutsideChain(client, source, 6);
      if (outside.length > 0) {
        const ids = outside.slice(0, 5).map((id) => `#${id}`).join(", ");
        problems.push({ seq: null, kind: "inserted", detail: `${source} ${ids}${outside.length > 5 ? ", ..." : ""}: in neither the chain nor the seal queue (written around the recording path)` });
      }
    }
  }

  // 6. The unsealed tail and the freshness of checkpoints: reported, not failures.
  const queue = await unsealedQueue(client);
  const unsealed = { count: queue.count, oldestQueuedAt: queue.oldest?.toISOString() ?? null };
  if (unsealed.count > 0 && queue.oldest && now.getTime() - queue.oldest.getTime() > 60_000) {
    warnings.push(`${unsealed.count} record(s) committed but unsealed since ${unsealed.oldestQueuedAt}: is a gateway (the sealer) running?`);
  }
  const latest = stored.at(-1);
  if (opts.keys.size === 0) warnings.push("no checkpoint public keys are configured (audit.checkpoint): checkpoint signatures cannot be checked");
  if (stored.length === 0 && trusted.length === 0) warnings.push("no signed checkpoints: the chain is internally consistent, but a rewritten chain or a truncated tail would go unnoticed");
  else if (opts.checkpointIntervalMinutes && latest && now.getTime() - new Date(latest.body.time).getTime() > 2 * opts.checkpointIntervalMinutes * 60_000) {
    warnings.push(`the latest checkpoint is from ${latest.body.time}, more than two intervals ago: checkpoints may have stopped or been removed (keep copies with audit.checkpoint.directory)`);
  }

  problems.sort((a, b) => (a.seq ?? Number.MAX_SAFE_INTEGER) - (b.seq ?? Number.MAX_SAFE_INTEGER));
  const headHash = maxSeq !== null ? await hashAt(client, maxSeq) : undefined;
  return {
    ok: problems.length === 0,
    range: verifiedTo > anchor.seq ? { from: anchor.seq + 1, to: verifiedTo, fromTime: firstTime?.toISOString() ?? null, toTime: lastTime?.toISOString() ?? null, records: verifiedTo - anchor.seq } : null,
    head: maxSeq !== null && headHash !== undefined ? { seq: maxSeq, hash: headHash } : null,
    firstBad: problems[0] ?? null,
    problems,
    checkpoints: {
      stored: stored.length,
      files,
      valid: trusted.length,
      latest: latest ? { id: latest.id, seq: latest.body.sequence, time: latest.body.time } : null,
    },
    unsealed,
    warnings,
  };
}

/** Entry `e` does not hash from `prev`: work out what happened to it. */
async function classify(client: ChainClient, e: Entry, row: Record<string, unknown> | null, prev: string, prevPrev: string | null): Promise<Problem> {
  const rec = { source: e.source, sourceId: e.sourceId, row };
  // The entry before this one was slipped in (with a valid hash): this one chains from the one before it.
  if (prevPrev !== null && recordHash(prevPrev, rec) === e.hash) {
    return { seq: e.seq - 1, kind: "inserted", detail: `entry ${e.seq - 1} was inserted: entry ${e.seq} chains directly from ${e.seq - 2}` };
  }
  const ahead = await entriesAfter(client, e.seq, e.seq + REORDER_WINDOW, REORDER_WINDOW);
  const aheadRows = await fetchRecords(client, ahead);
  const recOf = (x: Entry) => ({ source: x.source, sourceId: x.sourceId, row: aheadRows.get(recordKey(x.source, x.sourceId)) ?? null });
  const next = ahead[0]?.seq === e.seq + 1 ? ahead[0] : undefined;
  if (next && recordHash(prev, recOf(next)) === next.hash) {
    return { seq: e.seq, kind: "inserted", detail: `entry ${e.seq} (${e.source}#${e.sourceId}) was inserted: entry ${e.seq + 1} chains directly from ${e.seq - 1}` };
  }
  // The record that was sealed here sits elsewhere, or this record was sealed elsewhere.
  let before = e.hash;
  for (const x of ahead) {
    if (x.seq !== e.seq + ahead.indexOf(x) + 1) break;
    const xr = recOf(x);
    if (recordHash(prev, xr) === e.hash || recordHash(prev, xr) === x.hash) {
      return { seq: e.seq, kind: "reordered", detail: `the record sealed at seq ${e.seq} is now at seq ${x.seq} (${x.source}#${x.sourceId})` };
    }
    if (recordHash(before, rec) === x.hash) {
      return { seq: e.seq, kind: "reordered", detail: `${e.source}#${e.sourceId} at seq ${e.seq} was sealed at seq ${x.seq}` };
    }
    before = x.hash;
  }
  const restIntact = next ? recordHash(e.hash, recOf(next)) === next.hash : true;
  return {
    seq: e.seq,
    kind: "modified",
    detail: restIntact
      ? `${e.source}#${e.sourceId} at seq ${e.seq} differs from what was sealed (the entries after it are intact; or an entry before it was removed and the chain renumbered)`
      : `${e.source}#${e.sourceId} at seq ${e.seq} and the hashes after it were changed`,
  };
}

function maxOf(xs: number[]): number | undefined {
  return xs.length === 0 ? undefined : Math.max(...xs);
}

/** A person's summary of a result. */
export function formatVerifyResult(r: VerifyResult): string {
  const lines: string[] = [];
  const range = r.range ? `seq ${r.range.from}..${r.range.to} (${r.range.records} record${r.range.records === 1 ? "" : "s"}, sealed ${r.range.fromTime} .. ${r.range.toTime})` : "no entries";
  if (r.ok) lines.push(`OK: ${range}${r.head ? `, chain head ${r.head.hash.slice(0, 16)}… at seq ${r.head.seq}` : ""}`);
  else {
    const f = r.firstBad!;
    lines.push(`FAILED${f.seq !== null ? ` at seq ${f.seq}` : ""}: ${f.kind.replace("_", " ")}: ${f.detail}`);
    lines.push(`  verified before the failure: ${range}`);
    for (const p of r.problems.slice(1, 10)) lines.push(`  also${p.seq !== null ? ` at seq ${p.seq}` : ""}: ${p.kind.replace("_", " ")}: ${p.detail}`);
  }
  const c = r.checkpoints;
  lines.push(
    `  checkpoints: ${c.stored} stored${c.files ? `, ${c.files} file(s)` : ""}, ${c.valid} valid${c.latest ? `; latest #${c.latest.id} at seq ${c.latest.seq}, ${c.latest.time}` : ""}`,
  );
  lines.push(r.unsealed.count > 0 ? `  unsealed tail: ${r.unsealed.count} record(s) committed since ${r.unsealed.oldestQueuedAt}, not sealed yet (not a failure)` : "  unsealed tail: none");
  for (const w of r.warnings) lines.push(`  warning: ${w}`);
  return lines.join("\n");
}
