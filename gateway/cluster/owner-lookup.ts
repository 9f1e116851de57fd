// Finds which replica holds a session (sessions.ownerInstanceId) and whether it is alive: not
// stopped, and heard from (instances.lastSeenAt, heartbeated) within cluster.deadAfterSeconds.
// Times are compared in the database, so the replicas' clocks do not matter. Live owners are
// cached briefly: a client alternating between replicas does not cost a query per request.
import { LRUCache } from "lru-cache";
import type { Db } from "../store/client.js";
import { sessionOwner, type SessionOwner } from "../store/instances.js";

export type { SessionOwner };

const CACHE_MS = 2000;
const CACHE_MAX = 10_000;

export class OwnerLookup {
  // Bound: CACHE_MAX live owners, least recently used evicted first, each kept CACHE_MS.
  readonly #cache = new LRUCache<string, SessionOwner>({ max: CACHE_MAX, ttl: CACHE_MS });

  constructor(private readonly db: Db, private readonly deadAfterSeconds: number) {}

  async find(sessionId: string): Promise<SessionOwner | undefined> {
    const hit = this.#cache.get(sessionId);
    if (hit) return hit;
    const owner = await sessionOwner(this.db, sessionId, this.deadAfterSeconds);
    if (owner && owner.alive && !owner.closed) {
      this.#cache.set(sessionId, owner);
    } else this.#cache.delete(sessionId);
    return owner;
  }

  /** The owner did not answer: look again next time rather than trust the cache. */
  forget(sessionId: string): void {
    this.#cache.delete(sessionId);
  }
}
