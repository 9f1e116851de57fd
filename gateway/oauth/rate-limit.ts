// Counts events per source address in a sliding minute (dynamic client registrations).
import { LRUCache } from "lru-cache";

export class PerAddressLimit {
  // Bound: 10,000 addresses, least recently used evicted first; an address is forgotten a minute
  // after its last event (the window the limit counts over).
  readonly #times = new LRUCache<string, number[]>({ max: 10_000, ttl: 60_000 });
  constructor(private readonly perMinute: number) {}

  /** Counts one event for `address`; returns the seconds to wait when over the limit (nothing counted then), else 0. */
  take(address: string, now = Date.now()): number {
    const times = (this.#times.get(address) ?? []).filter((t) => now - t < 60_000);
    if (times.length >= this.perMinute) {
      this.#times.set(address, times);
      return Math.max(1, Math.ceil((times[0]! + 60_000 - now) / 1000));
    }
    times.push(now);
    this.#times.set(address, times);
    return 0;
  }
}
