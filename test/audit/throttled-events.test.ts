// The refusal throttle: a flood of one kind of refusal is aggregated, but it cannot hide another
// kind recorded in the same second (an attacker's junk must not mask a refresh token replay).
import { afterEach, describe, expect, it } from "vitest";
import { ThrottledEvents } from "../../gateway/audit/rejections.js";
import type { Recorder } from "../../gateway/audit/recorder.js";

interface Row { reason: string; connection: string | null; detail: Record<string, unknown> }

function capture(): { recorder: Recorder; rows: Row[] } {
  const rows: Row[] = [];
  const recorder = { eventBestEffort: (row: Row) => void rows.push(row) } as unknown as Recorder;
  return { recorder, rows };
}

let events: ThrottledEvents<"oauth"> | undefined;
afterEach(() => events?.stop());

describe("refusal events under a flood", () => {
  it("records another reason with its detail after one reason used up its budget", () => {
    const { recorder, rows } = capture();
    events = new ThrottledEvents(recorder, "oauth", 5);
    for (let i = 0; i < 50; i++) events.record("registration_refused", {}, { why: `junk ${i}` });
    events.record("refresh_reuse_detected", {}, { clientId: "c1", revokedRefreshTokens: 2 });
    expect(rows.filter((r) => r.reason === "registration_refused")).toHaveLength(5);
    expect(rows.find((r) => r.reason === "refresh_reuse_detected")?.detail).toEqual({ clientId: "c1", revokedRefreshTokens: 2 });
    events.stop();
    events = undefined;
    // The 45 suppressed ones are one aggregated row with their count.
    expect(rows.find((r) => r.reason === "registration_refused" && r.detail.aggregated === true)?.detail).toEqual({ aggregated: true, count: 45, windowSeconds: 1 });
  });

  it("keeps a bounded number of counters when callers invent connection names", () => {
    const { recorder, rows } = capture();
    events = new ThrottledEvents(recorder, "oauth", 0);
    for (let i = 0; i < 5_000; i++) events.record("authorize_refused", { connection: `made-up-${i}` }, {});
    events.stop();
    events = undefined;
    expect(rows.length).toBeLessThanOrEqual(1_001);
    expect(rows.reduce((n, r) => n + Number(r.detail.count), 0)).toBe(5_000);
  });
});
