// The conformance check's verdict: what makes `npm run conformance` (and so CI) fail.
import { describe, expect, it } from "vitest";
import { judge, type Outcome, type Results, type Tables, type Verdict } from "./judge.js";

const pass: Outcome = { passed: true, success: 2, failure: 0, warning: 0, failedChecks: [] };
const fail = (...checks: string[]): Outcome => ({ passed: false, success: 0, failure: checks.length, warning: 0, failedChecks: checks });
const run = (entries: Record<string, Outcome>): { results: Results; seconds: number } => ({ results: new Map(Object.entries(entries)), seconds: 1 });
const none: Tables = { directFails: [], knownGaps: [], gatewayAdds: new Set() };
const scenarios = ["ping", "tools-list", "dns-rebinding-protection"];
const allPass = () => run({ ping: pass, "tools-list": pass, "dns-rebinding-protection": pass });
const everyVia = (): Verdict["runs"] => ({ direct: allPass(), http: allPass(), "http-2026": allPass(), stdio: allPass(), sse: allPass() });

describe("the conformance verdict", () => {
  it("has no problem when every upstream kind passes what direct passes", () => {
    const v = judge("2025-11-25", scenarios, everyVia(), none);
    expect(v.problems).toEqual([]);
    expect(v.diffs).toEqual({ http: [], "http-2026": [], stdio: [], sse: [] });
  });

  it("fails on a difference no table lists, naming the upstream kind and the failing checks", () => {
    const runs = { ...everyVia(), stdio: run({ ping: pass, "tools-list": fail("tools-list", "wire-schema-valid"), "dns-rebinding-protection": pass }) };
    const v = judge("2025-11-25", scenarios, runs, none);
    expect(v.problems).toEqual(["gateway → stdio: tools-list fails only through the gateway (tools-list, wire-schema-valid)"]);
  });

  it("counts a scenario missing from a gateway run as a difference", () => {
    const runs = { ...everyVia(), http: run({ ping: pass, "dns-rebinding-protection": pass }) };
    expect(judge("2025-11-25", scenarios, runs, none).problems).toEqual(["gateway → http: tools-list did not run through the gateway"]);
  });

  it("accepts a listed gap while it shows, and fails once it has gone", () => {
    const tables: Tables = { ...none, knownGaps: [{ revision: "2025-11-25", via: ["http", "sse"], scenarios: ["tools-list"], reason: "not yet" }] };
    const gap = run({ ping: pass, "tools-list": fail("tools-list"), "dns-rebinding-protection": pass });
    const withGap = judge("2025-11-25", scenarios, { ...everyVia(), http: gap, sse: gap }, tables);
    expect(withGap.problems).toEqual([]);
    expect(withGap.known).toMatchObject({ http: ["tools-list"], sse: ["tools-list"] });

    const fixedOnSse = judge("2025-11-25", scenarios, { ...everyVia(), http: gap }, tables);
    expect(fixedOnSse.problems).toEqual(["gateway → sse: tools-list now matches direct: remove it from KNOWN_GAPS"]);
    // The gap is per revision: the same table says nothing about another one.
    expect(judge("2025-06-18", scenarios, { ...everyVia(), http: gap }, tables).problems).toEqual([
      "gateway → http: tools-list fails only through the gateway (tools-list)",
    ]);
  });

  it("requires direct to pass every scenario but the listed direct failures, and fails on a stale one", () => {
    const directFail = { ...everyVia(), direct: run({ ping: fail("ping"), "tools-list": pass, "dns-rebinding-protection": pass }) };
    const unlisted = judge("2025-11-25", scenarios, directFail, none);
    expect(unlisted.problems).toContain("direct: ping fails (ping), and DIRECT_FAILS does not list it");

    const listed: Tables = { ...none, directFails: [{ revision: "2025-11-25", scenario: "ping", reason: "reason" }] };
    const gatewaysFailToo = { direct: directFail.direct, http: directFail.direct, "http-2026": directFail.direct, stdio: directFail.direct, sse: directFail.direct };
    expect(judge("2025-11-25", scenarios, gatewaysFailToo, listed).problems).toEqual([]);
    expect(judge("2025-11-25", scenarios, everyVia(), listed).problems).toEqual(["direct: ping passes now: remove it from DIRECT_FAILS"]);
  });

  it("does not count a protection the gateway adds as a difference, and nothing else that passes only through it", () => {
    const direct = run({ ping: pass, "tools-list": fail("tools-list"), "dns-rebinding-protection": fail("localhost-host-invalid-rejected") });
    const tables: Tables = {
      directFails: [
        { revision: "2025-11-25", scenario: "tools-list", reason: "r" },
        { revision: "2025-11-25", scenario: "dns-rebinding-protection", reason: "r" },
      ],
      knownGaps: [],
      gatewayAdds: new Set(["dns-rebinding-protection"]),
    };
    const v = judge("2025-11-25", scenarios, { direct, http: allPass(), "http-2026": allPass(), stdio: allPass(), sse: allPass() }, tables);
    expect(v.added).toMatchObject({ http: ["dns-rebinding-protection"] });
    expect(v.problems).toEqual([
      "gateway → http: tools-list passes only through the gateway",
      "gateway → http-2026: tools-list passes only through the gateway",
      "gateway → stdio: tools-list passes only through the gateway",
      "gateway → sse: tools-list passes only through the gateway",
    ]);
  });

  it("does not judge the SSE upstream at 2026-07-28 (a stateless request has no SSE form)", () => {
    const v = judge("2026-07-28", scenarios, { direct: allPass(), http: allPass(), "http-legacy": allPass(), stdio: allPass(), "stdio-legacy": allPass() }, none);
    expect(v.problems).toEqual([]);
    expect(v.diffs.sse).toBeUndefined();
  });

  it("judges the HTTP and stdio upstreams with protocol: legacy at 2026-07-28 only (before it, auto keeps a 2025-era session too)", () => {
    expect(judge("2026-07-28", scenarios, { direct: allPass(), http: allPass(), stdio: allPass(), "stdio-legacy": allPass() }, none).problems).toEqual([
      "gateway → http-legacy: ping did not run through the gateway",
      "gateway → http-legacy: tools-list did not run through the gateway",
      "gateway → http-legacy: dns-rebinding-protection did not run through the gateway",
    ]);
    expect(judge("2026-07-28", scenarios, { direct: allPass(), http: allPass(), "http-legacy": allPass(), stdio: allPass() }, none).problems).toEqual([
      "gateway → stdio-legacy: ping did not run through the gateway",
      "gateway → stdio-legacy: tools-list did not run through the gateway",
      "gateway → stdio-legacy: dns-rebinding-protection did not run through the gateway",
    ]);
    expect(judge("2025-11-25", scenarios, everyVia(), none).diffs["http-legacy"]).toBeUndefined();
    expect(judge("2025-11-25", scenarios, everyVia(), none).diffs["stdio-legacy"]).toBeUndefined();
  });
});
