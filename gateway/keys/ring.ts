// One purpose's keys (the requestState seal, the console's cookies, the replicas' relay): each
// with an id and a state. The active key signs and seals, and its id travels with what it made;
// a verify-only key still checks what it made before a rotation; a retired key (revoked) and an
// unknown id are refused. The ring's keys are replaced in place by a reload, so a consumer that
// holds the ring follows each rotation without a restart.
export type KeyState = "active" | "verify-only" | "retired";

export interface RingKey {
  id: string;
  /** The purpose's key: the configured secret as the purpose uses it (requestState: an HMAC of it). */
  key: Buffer;
  state: KeyState;
}

/** What a lookup by id gives: the key, or why it is refused (a typed refusal, recorded by the consumer). */
export type KeyLookup = { ok: true; key: Buffer } | { ok: false; refused: "retired" | "unknown" };

/** A ring holds at most this many keys (the schema bounds each configured ring the same way). */
export const MAX_RING_KEYS = 16;


export class KeyRing {
  readonly purpose: string;
  #keys: readonly RingKey[];
  /** Where the keys come from, for the log: the configured ring, a legacy single key, or this process only. */
  #source: string;

  constructor(purpose: string, keys: readonly RingKey[], source: string) {
    this.purpose = purpose;
    this.#keys = checked(purpose, keys);
    this.#source = source;
  }

  get source(): string {
    return this.#source;
  }

  /** Replaces the keys (a reload): what the old active key made stays valid while it is listed verify-only. */
  replace(keys: readonly RingKey[], source: string): void {
    this.#keys = checked(this.purpose, keys);
    this.#source = source;
  }

  /** The key that signs and seals now, with its id. */
  active(): { id: string; key: Buffer } {
    const k = this.#keys.find((x) => x.state === "active")!;
    return { id: k.id, key: k.key };
  }

  /** The key to check something made under `id`: active or verify-only; retired and unknown ids are refused. */
  lookup(id: unknown): KeyLookup {
    const k = typeof id === "string" ? this.#keys.find((x) => x.id === id) : undefined;
    if (!k) return { ok: false, refused: "unknown" };
    if (k.state === "retired") return { ok: false, refused: "retired" };
    return { ok: true, key: k.key };
  }

  /** Keys that still verify, the active one first (for formats that carry no key id). */
  verifiers(): Array<{ id: string; key: Buffer }> {
    return [...this.#keys].filter((k) => k.state !== "retired").sort((a, b) => Number(b.state === "active") - Number(a.state === "active")).map((k) => ({ id: k.id, key: k.key }));
  }

  /** Ids and states, for the log and the console (never the keys). */
  describe(): Array<{ id: string; state: KeyState }> {
    return this.#keys.map((k) => ({ id: k.id, state: k.state }));
  }
}

function checked(purpose: string, keys: readonly RingKey[]): readonly RingKey[] {
  if (keys.length > MAX_RING_KEYS) throw new Error(`keys.ring.${purpose}: at most ${MAX_RING_KEYS} keys`);
  if (keys.filter((k) => k.state === "active").length !== 1) throw new Error(`keys.ring.${purpose}: exactly one key must be active`);
  if (new Set(keys.map((k) => k.id)).size !== keys.length) throw new Error(`keys.ring.${purpose}: duplicate key id`);
  return [...keys];
}
