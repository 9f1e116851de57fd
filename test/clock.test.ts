// The core's clock (gateway/clock.ts): the manual clock runs timers in time order as a test moves
// it, so time-based behaviour (expiry, idle close, back-off) is tested without waiting.
import { describe, expect, it } from "vitest";
import { ManualClock, systemClock } from "../gateway/clock.js";

describe("ManualClock", () => {
  it("stands still until moved, then runs the timers due, each at its own instant, in order", async () => {
    const clock = new ManualClock(Date.UTC(2026, 11, 4, 12, 0, 0));
    const start = clock.now();
    const ran: Array<[string, number]> = [];
    clock.setTimeout(() => ran.push(["b", clock.now() - start]), 2000);
    clock.setTimeout(() => ran.push(["a", clock.now() - start]), 1000);
    clock.setTimeout(() => ran.push(["c", clock.now() - start]), 5000);
    expect(clock.now()).toBe(start);
    await clock.advance(2000);
    expect(ran).toEqual([["a", 1000], ["b", 2000]]);
    expect(clock.date().toISOString()).toBe("2026-12-04T12:00:02.000Z");
    await clock.advance(3000);
    expect(ran.map(([n]) => n)).toEqual(["a", "b", "c"]);
    expect(clock.pendingTimers).toBe(0);
  });

  it("repeats an interval once per period crossed, and a cleared timer never runs", async () => {
    const clock = new ManualClock();
    let ticks = 0;
    let cleared = 0;
    const interval = clock.setInterval(() => ticks++, 5000);
    const timeout = clock.setTimeout(() => cleared++, 1000);
    clock.clearTimeout(timeout);
    await clock.advance(16_000);
    expect(ticks).toBe(3);
    clock.clearInterval(interval);
    await clock.advance(60_000);
    expect(ticks).toBe(3);
    expect(cleared).toBe(0);
  });

  it("runs a timer started by another timer within the same step when it falls due in it", async () => {
    const clock = new ManualClock();
    const at: number[] = [];
    const t0 = clock.now();
    clock.setTimeout(() => clock.setTimeout(() => at.push(clock.now() - t0), 500), 1000);
    await clock.advance(1500);
    expect(at).toEqual([1500]);
  });

  it("refuses to move backwards", async () => {
    await expect(new ManualClock().advance(-1)).rejects.toThrow(RangeError);
  });
});

it("the system clock reads Date.now()", () => {
  const before = Date.now();
  const now = systemClock.now();
  expect(now).toBeGreaterThanOrEqual(before);
  expect(now).toBeLessThanOrEqual(Date.now());
});
