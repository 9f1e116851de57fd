// Finds which replica holds a session (sessions.ownerInstanceId) and whether it is alive: not
// stopped, and heard from (instances.lastSeenAt, heartbeated) within cluster.deadAfterSeconds.
// Times are compared in the database, so the replicas' clocks do not matter. Live owners are
// cached briefly: a client alternating between replicas does not cost a query per request.
import { LRUCache } from "lru-cache";
import type { Db } from "../store/client.js";

export interface SessionOwner {
  connection: string;
  frontTransport: string;
  closed: boolean;
  closeReason: string | null;
  ownerInstanceId: string;
  relayUrl: string | null;
  alive: boolean;
}

const CACHE_MS = 2000;
const CACHE_MAX = 10_000;

export class OwnerLookup {
  // Bound: CACHE_MAX live owners, least recently used evicted first, each kept CACHE_MS.
  readonly #cache = new LRUCache<string, SessionOwner>({ max: CACHE_MAX, ttl: CACHE_MS });

  constructor(private readonly db: Db, private readonly deadAfterSeconds: number) {}

  async find(sessionId: string): Promise<SessionOwner | undefined> {
    const hit = this.#cache.get(sessionId);
    if (hit) return hit;
    const rows = await this.db.$queryRawUnsafe<SessionOwner[]>(
      `SELECT s."connection", s."frontTransport", s."closedAt" IS NOT NULL AS closed, s."closeReason", s."ownerInstanceId", i."relayUrl",
              (i."stoppedAt" IS NULL AND i."lastSeenAt" > now() - make_interval(secs => $2)) AS alive
         FROM "sessions" s JOIN "instances" i ON i."id" = s."ownerInstanceId"
        WHERE s."id" = $1`,
      sessionId,
      this.deadAfterSeconds,
    );
    const owner = rows[0];
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
