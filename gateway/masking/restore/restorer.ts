/**
 * Restore on the way back: a pseudonym the gateway showed a caller, sent back by the same caller
 * (same scope: identity + connection) in a later request's arguments, is replaced by the
 * original, so policy, the approval's arguments hash and the forward all see the real value.
 * A pseudonym from another scope, an expired one, or one given to two originals is left as is.
 *
 * The reverse map is the table masking_pseudonyms: originals sealed with AES-256-GCM under a
 * key derived from the masking key material, scopes stored only as keyed digests, at most
 * `maxPerScope` rows per scope (the oldest are forgotten first) and each for `ttlMs`.
 *
 * Keys: the keyring's masking keys (keys.ring.masking, or keys.maskingHmac as a ring of one). The
 * active key seals what is remembered; a restore looks in the rows of every key that still
 * verifies (one lookup per key, the active one first), so a pseudonym issued before a rotation is
 * restored while its key is verify-only, and no longer once that key is retired.
 */
import { randomBytes } from "node:crypto";
import { KeyRing } from "../../keys/ring.js";
import { PseudonymStore } from "../../store/pseudonyms.js";
import type { Pool } from "../../store/pools.js";
import type { IssuedPseudonym } from "../engine.js";
import { MaskingRefusedError } from "../refusal.js";
import { deriveMapKeys, keyedDigest, open, seal, type MapKeys } from "./cipher.js";
import { findCandidates, type Candidate } from "./candidates.js";

export interface RestoreResult<T> {
  /** The params with every known pseudonym of this scope replaced by its original (a copy; the input is not modified). */
  params: T;
  /** How many pseudonyms were replaced. */
  restored: number;
  /** Substrings shaped like pseudonyms that this scope was never given (or that expired, or are ambiguous). */
  unresolved: number;
}

export interface Restorer {
  /** Remembers the pseudonyms a masking call issued to `scope` (call after the caller's view is masked). */
  remember(scope: string, issued: readonly IssuedPseudonym[]): Promise<void>;
  /** Replaces, in every string and key of `params`, the pseudonyms `scope` was given by their originals. */
  restore<T>(scope: string, params: T): Promise<RestoreResult<T>>;
}

export interface PgRestorerOptions {
  /** A pool of the gateway's database (the restorer never ends it), or a connection string (it owns that pool). */
  pool: Pool | string;
  /**
   * keys.maskingHmac, revealed: the map's keys are derived from it. Without it a random key is
   * used, so only this process can restore what it remembered (rows of other processes or
   * earlier runs are skipped by key id).
   */
  keyMaterial?: string | Uint8Array | undefined;
  /** The keyring's masking keys (replaced in place by a reload); when given, keyMaterial is not read. */
  keys?: KeyRing | undefined;
  /** Rows kept per scope; beyond it the oldest are deleted. Default 10,000. */
  maxPerScope?: number;
  /** How long a pseudonym can be restored after it was last issued. Default 24 hours. */
  ttlMs?: number;
}

/** Bounds of one restore: nesting and strings walked, candidates looked up. */
const MAX_DEPTH = 256;
const MAX_STRINGS = 100_000;
const MAX_CANDIDATES = 1_000;

export class PgRestorer implements Restorer {
  readonly #store: PseudonymStore;
  readonly #ring: KeyRing;
  /** The map keys of each ring key, derived once (bounded by the ring: what the ring drops is collected). */
  readonly #derived = new WeakMap<Buffer, MapKeys>();
  readonly #maxPerScope: number;
  readonly #ttlMs: number;

  constructor(options: PgRestorerOptions) {
    this.#store = new PseudonymStore(options.pool);
    this.#ring = options.keys ?? new KeyRing("masking", [{ id: "masking", key: Buffer.from(options.keyMaterial ?? randomBytes(32)), state: "active" }], "given");
    for (const { key } of this.#ring.verifiers()) this.#mapKeys(key);
    this.#maxPerScope = options.maxPerScope ?? 10_000;
    this.#ttlMs = options.ttlMs ?? 24 * 3600_000;
  }

  #mapKeys(ringKey: Buffer): MapKeys {
    let keys = this.#derived.get(ringKey);
    if (!keys) this.#derived.set(ringKey, (keys = deriveMapKeys(ringKey)));
    return keys;
  }

  async remember(scope: string, issued: readonly IssuedPseudonym[]): Promise<void> {
    if (issued.length === 0) return;
    const keys = this.#mapKeys(this.#ring.active().key);
    const scopeHash = keyedDigest(keys, "scope", scope);
    const rows = issued.slice(0, this.#maxPerScope);
    const expiresAt = new Date(Date.now() + this.#ttlMs);
    await this.#store.upsert(
      rows.map((r) => ({
        scopeHash,
        pseudonym: r.pseudonym,
        type: r.type,
        sealed: seal(keys, r.original, `${scopeHash}\0${r.pseudonym}`),
        valueHash: keyedDigest(keys, "value", r.type, r.original),
        keyId: keys.keyId,
        expiresAt,
      })),
    );
    await this.#store.trimScope(scopeHash, this.#maxPerScope);
  }

  async restore<T>(scope: string, params: T): Promise<RestoreResult<T>> {
    const strings = collectStrings(params);
    const found: Array<{ text: string; candidates: Candidate[] }> = [];
    const wanted = new Set<string>();
    for (const text of strings) {
      const candidates: Candidate[] = [];
      findCandidates(text, candidates);
      if (candidates.length === 0) continue;
      found.push({ text, candidates });
      for (const c of candidates) wanted.add(c.text);
      if (wanted.size > MAX_CANDIDATES) throw new MaskingRefusedError("too_many_values", `$ (more than ${MAX_CANDIDATES} pseudonyms to restore)`);
    }
    if (wanted.size === 0) return { params, restored: 0, unresolved: 0 };
    const originals = new Map<string, string>();
    // The active key first; a verify-only key's rows only for pseudonyms not found yet.
    for (const { key } of this.#ring.verifiers()) {
      const pending = [...wanted].filter((p) => !originals.has(p));
      if (pending.length === 0) break;
      const keys = this.#mapKeys(key);
      const scopeHash = keyedDigest(keys, "scope", scope);
      const rows = await this.#store.lookup(scopeHash, pending);
      for (const r of rows) {
        if (r.ambiguous || r.keyId !== keys.keyId) continue;
        const original = open(keys, r.sealed, `${scopeHash}\0${r.pseudonym}`);
        if (original !== undefined) originals.set(r.pseudonym, original);
      }
    }
    let restored = 0;
    let unresolved = 0;
    const replaced = new Map<string, string>();
    for (const { text, candidates } of found) {
      candidates.sort((a, b) => a.start - b.start || b.end - a.end);
      let out = "";
      let pos = 0;
      for (const c of candidates) {
        if (c.start < pos) continue;
        const original = originals.get(c.text);
        if (original === undefined) {
          // A candidate form (an IBAN, a phone) may simply be real data: only e-mail pseudonyms are unmistakable.
          if (c.text.toLowerCase().endsWith("@masked.example")) unresolved++;
          continue;
        }
        out += text.slice(pos, c.start) + original;
        pos = c.end;
        restored++;
      }
      if (pos > 0) replaced.set(text, out + text.slice(pos));
    }
    if (replaced.size === 0) return { params, restored: 0, unresolved };
    return { params: replaceStrings(params, replaced), restored, unresolved };
  }

  /** Deletes expired rows (all scopes); for a periodic timer in the composition root. Returns how many. */
  async sweep(): Promise<number> {
    return this.#store.sweep();
  }

  async close(): Promise<void> {
    await this.#store.close();
  }
}

/** Every string (values and keys) of a JSON value, walked without recursion and within bounds. */
function collectStrings(value: unknown): string[] {
  const out: string[] = [];
  const stack: Array<{ v: unknown; depth: number }> = [{ v: value, depth: 0 }];
  while (stack.length > 0) {
    const { v, depth } = stack.pop()!;
    if (typeof v === "string") out.push(v);
    else if (v !== null && typeof v === "object") {
      if (depth >= MAX_DEPTH) throw new MaskingRefusedError("too_deep", "$ (arguments to restore)");
      if (Array.isArray(v)) for (const item of v) stack.push({ v: item, depth: depth + 1 });
      else
        for (const [k, item] of Object.entries(v as Record<string, unknown>)) {
          out.push(k);
          stack.push({ v: item, depth: depth + 1 });
        }
    }
    if (out.length > MAX_STRINGS) throw new MaskingRefusedError("too_many_values", "$ (arguments to restore)");
  }
  return out;
}

/** A copy of `value` with the strings (values and keys) in `replaced` swapped; depth already checked. */
function replaceStrings<T>(value: T, replaced: ReadonlyMap<string, string>): T {
  const visit = (v: unknown): unknown => {
    if (typeof v === "string") return replaced.get(v) ?? v;
    if (v === null || typeof v !== "object") return v;
    if (Array.isArray(v)) return v.map(visit);
    const out: Record<string, unknown> = {};
    for (const [k, item] of Object.entries(v as Record<string, unknown>)) out[replaced.get(k) ?? k] = visit(item);
    return out;
  };
  return visit(value) as T;
}
