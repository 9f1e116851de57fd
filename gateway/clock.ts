// The clock of the core: what time it is, and timers. Everything that expires, idles out or is
// stamped (approvals' timers, tasks, sessions, the recorder) reads it from here, injected by the
// composition root (gateway.ts), so tests move time with a ManualClock instead of waiting.
// Instants that several replicas must agree on (an approval's expiry) stay PostgreSQL's now().

/** A timer started through a Clock; `unref` as on Node's timers (a no-op on the manual clock). */
export interface ClockTimer {
  unref(): ClockTimer;
}

export interface Clock {
  /** Milliseconds since the epoch, as Date.now(). */
  now(): number;
  /** The current instant as a Date. */
  date(): Date;
  setTimeout(fn: () => void, ms: number): ClockTimer;
  clearTimeout(timer: ClockTimer | undefined): void;
  setInterval(fn: () => void, ms: number): ClockTimer;
  clearInterval(timer: ClockTimer | undefined): void;
}

/** The system clock: Date.now() and Node's timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  date: () => new Date(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout | undefined),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (t) => clearInterval(t as NodeJS.Timeout | undefined),
};

interface Pending {
  id: number;
  at: number;
  fn: () => void;
  /** Set for an interval: its period. */
  every: number | undefined;
  timer: ClockTimer;
}

/** Timers the manual clock keeps at most: beyond, starting one throws (a leak in the code under test). */
const MANUAL_TIMERS = 100_000;

/**
 * A clock that moves only when told (tests): `advance(ms)` runs every timer that falls due within
 * the step, in time order, with now() set to each timer's instant as it runs.
 */
export class ManualClock implements Clock {
  #now: number;
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();
  readonly #ids = new WeakMap<ClockTimer, number>();

  constructor(start: Date | number = Date.UTC(2026, 0, 5, 9, 0, 0)) {
    this.#now = typeof start === "number" ? start : start.getTime();
  }

  now(): number {
    return this.#now;
  }

  date(): Date {
    return new Date(this.#now);
  }

  /** Timers waiting to run. */
  get pendingTimers(): number {
    return this.#pending.size;
  }

  setTimeout(fn: () => void, ms: number): ClockTimer {
    return this.#add(fn, ms, undefined);
  }

  setInterval(fn: () => void, ms: number): ClockTimer {
    return this.#add(fn, ms, Math.max(1, ms));
  }

  clearTimeout(timer: ClockTimer | undefined): void {
    const id = timer ? this.#ids.get(timer) : undefined;
    if (id !== undefined) this.#pending.delete(id);
  }

  clearInterval(timer: ClockTimer | undefined): void {
    this.clearTimeout(timer);
  }

  /**
   * Moves time forward by `ms`, running the timers due on the way (each at its own instant), and
   * lets promise callbacks they start settle between timers. Resolves at now + ms.
   */
  async advance(ms: number): Promise<void> {
    if (!(ms >= 0)) throw new RangeError(`cannot move a clock by ${ms} ms`);
    const until = this.#now + ms;
    for (;;) {
      const next = [...this.#pending.values()].filter((p) => p.at <= until).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!next) break;
      this.#now = Math.max(this.#now, next.at);
      if (next.every === undefined) this.#pending.delete(next.id);
      else next.at += next.every;
      next.fn();
      await settle();
    }
    this.#now = until;
    await settle();
  }

  #add(fn: () => void, ms: number, every: number | undefined): ClockTimer {
    if (this.#pending.size >= MANUAL_TIMERS) throw new Error(`the manual clock holds ${MANUAL_TIMERS} timers already`);
    const id = this.#nextId++;
    const timer: ClockTimer = { unref: () => timer };
    this.#ids.set(timer, id);
    this.#pending.set(id, { id, at: this.#now + Math.max(0, Number.isFinite(ms) ? ms : 0), fn, every, timer });
    return timer;
  }
}

/** Lets queued promise callbacks (and the I/O callbacks already due) run. */
function settle(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
