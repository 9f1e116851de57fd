// How `npm run conformance` judges one revision's suite runs (direct and through the gateway per
// upstream kind) against its tables of expected direct failures and known gaps.

/** The revisions the suite covers, oldest first (checked against the suite's own list). */
export const REVISIONS = ["2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"] as const;
export type Revision = (typeof REVISIONS)[number];
export type Via = "direct" | "http" | "http-legacy" | "http-2026" | "stdio" | "stdio-legacy" | "sse";
export const GATEWAY_VIAS = ["http", "http-legacy", "http-2026", "stdio", "stdio-legacy", "sse"] as const satisfies readonly Via[];
export type GatewayVia = (typeof GATEWAY_VIAS)[number];
/**
 * The 2024-11-05 SSE transport carries sessions only: no stateless (2026-07-28) requests. The HTTP
 * upstream with `protocol: 2026-07-28` adapts 2025-era sessions (at 2026-07-28 it is the http run). The
 * HTTP upstream with `protocol: legacy` differs from `auto` only for a 2026-07-28 caller (bridged
 * to a 2025-era session instead of passed through): before 2026-07-28 both keep a 2025-era session.
 * Likewise over stdio: `stdio` is the connection with `protocol: 2026-07-28` at 2026-07-28 (passed
 * through) and the legacy one before; `stdio-legacy` bridges a 2026-07-28 caller to a 2025-era child.
 */
export const viaApplies = (via: Via, revision: Revision) =>
  via === "sse" || via === "http-2026" ? revision !== "2026-07-28" : via === "http-legacy" || via === "stdio-legacy" ? revision === "2026-07-28" : true;

export type Outcome = { passed: boolean; success: number; failure: number; warning: number; failedChecks: string[] };
export type Results = Map<string, Outcome>;
export const passes = (r: Results | undefined, s: string) => r?.get(s)?.passed ?? false;

export interface Tables {
  /** Scenarios the reference server fails directly, each with its reason. */
  directFails: ReadonlyArray<{ revision: Revision; scenario: string; reason: string }>;
  /** Differences from direct the gateway is known to have, by revision and upstream kind. */
  knownGaps: ReadonlyArray<{ revision: Revision; via: readonly GatewayVia[]; scenarios: readonly string[]; reason: string }>;
  /** Scenarios of protections the gateway adds: passing only through it is no difference. */
  gatewayAdds: ReadonlySet<string>;
}

export interface Verdict {
  revision: Revision;
  scenarios: string[];
  runs: Partial<Record<Via, { results: Results; seconds: number }>>;
  /** Per gateway upstream kind: scenarios whose outcome differs from direct. */
  diffs: Partial<Record<Via, string[]>>;
  known: Partial<Record<Via, string[]>>;
  added: Partial<Record<Via, string[]>>;
  problems: string[];
}

/**
 * One revision's verdict: direct must pass every scenario but the listed direct failures; each
 * gateway upstream kind must pass what direct passes but the listed gaps (a scenario the gateway
 * passes by a protection it adds is no difference); a listed entry that no longer shows is a
 * problem too.
 */
export function judge(revision: Revision, scenarios: string[], runs: Verdict["runs"], tables: Tables): Verdict {
  const { directFails: DIRECT_FAILS, knownGaps: KNOWN_GAPS, gatewayAdds: GATEWAY_ADDS } = tables;
  const v: Verdict = { revision, scenarios, runs, diffs: {}, known: {}, added: {}, problems: [] };
  const direct = runs.direct?.results;
  const expectedDirectFails = new Map(DIRECT_FAILS.filter((f) => f.revision === revision).map((f) => [f.scenario, f.reason]));
  for (const s of scenarios) {
    const ok = passes(direct, s);
    const how = direct?.get(s) === undefined ? "did not run" : `fails (${direct.get(s)!.failedChecks.join(", ")})`;
    if (!ok && !expectedDirectFails.has(s)) v.problems.push(`direct: ${s} ${how}, and DIRECT_FAILS does not list it`);
    if (ok && expectedDirectFails.has(s)) v.problems.push(`direct: ${s} passes now: remove it from DIRECT_FAILS`);
  }
  for (const s of expectedDirectFails.keys()) if (!scenarios.includes(s)) v.problems.push(`DIRECT_FAILS names ${s}, which ${revision} does not have`);

  for (const via of GATEWAY_VIAS) {
    if (!viaApplies(via, revision)) continue;
    const through = runs[via]?.results;
    const listed = new Map<string, string>();
    for (const g of KNOWN_GAPS) if (g.revision === revision && g.via.includes(via)) for (const s of g.scenarios) listed.set(s, g.reason);
    const added = scenarios.filter((s) => GATEWAY_ADDS.has(s) && !passes(direct, s) && passes(through, s));
    const diff = scenarios.filter((s) => passes(direct, s) !== passes(through, s) && !added.includes(s));
    v.added[via] = added;
    v.diffs[via] = diff;
    v.known[via] = diff.filter((s) => listed.has(s));
    for (const s of diff) {
      if (listed.has(s)) continue;
      const o = through?.get(s);
      const how = passes(through, s) ? "passes only through the gateway" : o === undefined ? "did not run through the gateway" : `fails only through the gateway (${o.failedChecks.join(", ")})`;
      v.problems.push(`gateway → ${via}: ${s} ${how}`);
    }
    for (const s of listed.keys()) {
      if (!scenarios.includes(s)) v.problems.push(`KNOWN_GAPS names ${s} for ${via}, which ${revision} does not have`);
      else if (!diff.includes(s)) v.problems.push(`gateway → ${via}: ${s} now matches direct: remove it from KNOWN_GAPS`);
    }
  }
  return v;
}

