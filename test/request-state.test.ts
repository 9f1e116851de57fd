// The per-request state machine of the data path: the legal paths, and that a finished request
// never moves again (a late answer cannot revive a cancelled or failed call).
import { describe, expect, it } from "vitest";
import { isTerminalState, RequestLifecycle, type RequestState } from "../gateway/pipeline/request-state.js";

const walk = (...steps: RequestState[]) => {
  const l = new RequestLifecycle();
  return steps.map((s) => l.move(s));
};

describe("request lifecycle", () => {
  it("allows the direct, held and chained-hold paths to an answer", () => {
    expect(walk("decided", "forwarding", "forwarded", "answered")).toEqual([true, true, true, true]);
    expect(walk("decided", "held", "held", "forwarding", "forwarded", "answered")).toEqual([true, true, true, true, true, true]);
    expect(walk("decided", "held", "answered")).toEqual([true, true, true]);
  });

  it("never forwards what was not decided, and never moves a finished request", () => {
    expect(walk("forwarding")).toEqual([false]);
    expect(walk("decided", "held", "cancelled", "forwarding", "answered")).toEqual([true, true, true, false, false]);
    expect(walk("decided", "forwarding", "failed", "forwarded")).toEqual([true, true, true, false]);
    for (const s of ["answered", "failed", "cancelled"] as const) expect(isTerminalState(s)).toBe(true);
  });

  it("knows when the upstream has seen the request", () => {
    const l = new RequestLifecycle();
    l.move("decided");
    l.move("held");
    expect(l.upstreamKnows).toBe(false);
    l.move("forwarding");
    expect(l.upstreamKnows).toBe(true);
  });
});
