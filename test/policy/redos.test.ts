// Regexes in rules never take more than linear time: with RE2 (the default, through re2js) any
// pattern is safe; under the checked V8 engine, patterns that can backtrack catastrophically are
// refused. Inputs are caller-controlled, so both matter.
import { describe, expect, it } from "vitest";
import { formatIssue } from "../../gateway/config/load.js";
import { compileLinearRegex, compilePolicy, defaultRegexEngine, evaluate, policySchema, UnsafeRegexError } from "../../gateway/policy/index.js";

const CLASSIC_REDOS = ["(a+)+$", "(a|aa)*$", "(.*a){20}", "^([a-zA-Z0-9]+)*@example\\.com$", "(\\w+\\s?)*$", "^(a|a?)+$"];
// Long enough that backtracking engines would not finish within the test timeout.
const EVIL_INPUT = `${"a".repeat(100_000)}!`;

function blockRule(pattern: string) {
  return policySchema.parse({ rules: [{ id: "r", description: "pattern rule", tools: ["*"], when: { path: "$.arguments.q", matches: pattern }, action: "block" }] });
}

describe("ReDoS", () => {
  it("under the checked V8 engine, classic catastrophic patterns are refused with a reason", () => {
    for (const pattern of CLASSIC_REDOS) {
      expect(() => compileLinearRegex(pattern, "", "checked"), pattern).toThrow(UnsafeRegexError);
      expect(() => compileLinearRegex(pattern, "", "checked")).toThrow(/backtrack catastrophically/);
    }
    expect(() => compileLinearRegex("^(a+)\\1$", "", "checked")).toThrow(/backreferences/);
    expect(() => compileLinearRegex("^(?=.*x)", "", "checked")).toThrow(/lookaround/);
  });

  it("under the checked V8 engine, a safe pattern is accepted and runs fast on an adversarial input", () => {
    const re = compileLinearRegex("^/etc/[a-z]+$|\\.ssh/", "", "checked");
    expect(re.test(EVIL_INPUT)).toBe(false);
    expect(re.test("/home/me/.ssh/id_rsa")).toBe(true);
    const p = blockRule("^[a-z]+\\d$");
    const decision = evaluate(compilePolicy(p, "checked"), { connection: "c", method: "tools/call", params: { name: "t", arguments: { q: EVIL_INPUT } }, identity: { subject: "s", groups: [] } });
    expect(decision.effectiveAction).toBe("allow");
  });

  it("with RE2 (the default), a classic ReDoS pattern in a rule is harmless against an evil input", () => {
    expect(defaultRegexEngine()).toBe("re2");
    // Anchored at both ends, none of these match the evil input, which is what makes a
    // backtracking engine try every way of splitting it.
    const cases: Array<[pattern: string, input: string, matches: boolean]> = [
      ["^(a+)+$", EVIL_INPUT, false],
      ["^(a|aa)*$", EVIL_INPUT, false],
      ["^(a|a?)+$", EVIL_INPUT, false],
      ["^(\\w+\\s?)*$", EVIL_INPUT, false],
      ["^([a-zA-Z0-9]+)*@example\\.com$", `${"a".repeat(100_000)}@example.org`, false],
      ["(.*a){20}", EVIL_INPUT, true],
    ];
    for (const [pattern, q, matches] of cases) {
      const p = blockRule(pattern); // accepted: RE2 cannot backtrack
      const d = evaluate(p, { connection: "c", method: "tools/call", params: { name: "t", arguments: { q } }, identity: { subject: "s", groups: [] } });
      expect(d.effectiveAction, pattern).toBe(matches ? "block" : "allow");
    }
  });

  it("config load refuses patterns RE2 cannot run in linear time (backreferences, lookaround)", () => {
    for (const pattern of ["^(a+)\\1$", "^(?=.*secret)", "(?<!x)y"]) {
      const result = policySchema.safeParse({ rules: [{ id: "r", description: "d", action: "block", when: { path: "$.arguments.q", matches: pattern } }] });
      expect(result.success, pattern).toBe(false);
      const message = result.success ? "" : formatIssue(result.error.issues[0]!);
      expect(message).toMatch(/^rules\[0\]\.when\.matches: regex .* rejected: /);
    }
  });

  it("tool-name globs do not backtrack either", () => {
    const p = policySchema.parse({ rules: [{ id: "g", description: "glob", tools: ["*a*a*a*a*a*a*b"], action: "block" }] });
    const d = evaluate(p, { connection: "c", method: "tools/call", params: { name: "a".repeat(50_000) }, identity: { subject: "s", groups: [] } });
    expect(d.effectiveAction).toBe("allow");
  });
});
