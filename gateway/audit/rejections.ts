// Records rejected input (malformed bodies, unknown sessions…) without letting a flood of bad
// requests become a flood of database writes: up to `perSecond` are recorded one by one, the rest
// are counted and recorded as one summary event per second.
import type { Recorder } from "./recorder.js";
import type { EventReason } from "./events.js";

type Reason = EventReason<"message_rejected">;

export class RejectionLog {
  #budget: number;
  #suppressed = new Map<string, number>();
  #timer: NodeJS.Timeout;

  constructor(private readonly recorder: Recorder, private readonly perSecond = 20) {
    this.#budget = perSecond;
    this.#timer = setInterval(() => this.#tick(), 1000);
    this.#timer.unref();
  }

  record(reason: Reason, where: { connection?: string | null; sessionId?: string | null }, detail: Record<string, unknown>): void {
    if (this.#budget > 0) {
      this.#budget--;
      this.recorder.eventBestEffort({ type: "message_rejected", reason, connection: where.connection ?? null, sessionId: where.sessionId ?? null, detail });
      return;
    }
    const key = `${reason}\u0000${where.connection ?? ""}`;
    this.#suppressed.set(key, (this.#suppressed.get(key) ?? 0) + 1);
  }

  #tick(): void {
    this.#budget = this.perSecond;
    for (const [key, count] of this.#suppressed) {
      const [reason, connection] = key.split("\u0000") as [Reason, string];
      this.recorder.eventBestEffort({ type: "message_rejected", reason, connection: connection || null, detail: { aggregated: true, count, windowSeconds: 1 } });
    }
    this.#suppressed.clear();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#tick();
  }
}
