// pinning in the configuration: on and blocking by default, hold needs a known approver group,
// and the decision on a call is a pure function of the pin state.
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { ConfigError, parseConfigText } from "../../gateway/config/load.js";
import { asPolicyDecision, pinVerdict, type PinningConfig } from "../../gateway/pinning/index.js";

const load = (pinning?: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  parseConfigText(
    stringify({
      version: 1,
      database: { url: { env: "DB" } },
      connections: [{ name: "mail", access: { anonymous: true }, upstream: { type: "stdio", command: "node" }, ...(pinning ? { pinning } : {}) }],
      ...extra,
    }),
    "pinning.yaml",
    { DB: "postgresql://x@localhost/x" },
  );

const problems = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
};

describe("pinning configuration", () => {
  it("is on and blocks changed tools by default", () => {
    expect(load().connections[0]!.pinning).toEqual({ enabled: true, onChange: "block", approvalTimeoutMs: 15 * 60_000 });
  });

  it("needs an approver group for hold, and one that exists", () => {
    expect(problems(() => load({ onChange: "hold" }))).toEqual([expect.stringContaining("connections[0].pinning.approvalGroup: onChange: hold needs approvalGroup")]);
    expect(problems(() => load({ onChange: "hold", approvalGroup: "security" }))).toEqual([expect.stringContaining("no approver group 'security' in approvals.groups")]);
    const ok = load({ onChange: "hold", approvalGroup: "security", approvalTimeout: "5m" }, { approvals: { groups: { security: { emails: ["sam@example.com"] } } } });
    expect(ok.connections[0]!.pinning).toEqual({ enabled: true, onChange: "hold", approvalGroup: "security", approvalTimeoutMs: 5 * 60_000 });
  });

  it("refuses unknown values with the key path", () => {
    expect(problems(() => load({ onChange: "warn" }))[0]).toContain("connections[0].pinning.onChange");
    expect(problems(() => load({ onchange: "block" }))[0]).toContain("connections[0].pinning");
  });
});

describe("the decision on a call", () => {
  const cfg = (onChange: PinningConfig["onChange"]): PinningConfig => ({ enabled: true, onChange, approvalGroup: "security", approvalTimeoutMs: 60_000 });
  const pin = { hash: "a".repeat(64), currentHash: "b".repeat(64), changeSummary: "description changed" };

  it("passes a tool whose definition is the pinned one, a tool never seen, and everything when off", () => {
    expect(pinVerdict(cfg("block"), "mail", "send", { ...pin, currentHash: pin.hash }, undefined)).toBeUndefined();
    expect(pinVerdict(cfg("block"), "mail", "send", pin, pin.hash)).toBeUndefined(); // this session was shown the pinned one
    expect(pinVerdict(cfg("block"), "mail", "send", undefined, undefined)).toBeUndefined();
    expect(pinVerdict({ ...cfg("block"), enabled: false }, "mail", "send", pin, undefined)).toBeUndefined();
  });

  it("blocks, holds or allows a changed tool, naming the tool, the change and the fix", () => {
    const blocked = pinVerdict(cfg("block"), "mail", "send", pin, undefined)!;
    expect(blocked).toMatchObject({ action: "block", ruleId: "tool-pin:send", pinnedHash: pin.hash, currentHash: pin.currentHash });
    expect(blocked.reason).toBe("tool 'send' on connection 'mail' is blocked: its definition changed since it was pinned (description changed); an admin must review it and re-pin it: countersign tools pin mail");
    expect(asPolicyDecision(blocked)).toMatchObject({ effectiveAction: "block", ruleId: "tool-pin:send", message: blocked.reason });
    const held = pinVerdict(cfg("hold"), "mail", "send", pin, "c".repeat(64))!;
    expect(held).toMatchObject({ action: "require_approval", currentHash: "c".repeat(64), approval: { group: "security", timeoutMs: 60_000 } });
    expect(asPolicyDecision(held).approval).toMatchObject({ ruleId: "tool-pin:send", group: "security", approvals: 1, justificationMissing: false });
    expect(pinVerdict(cfg("allow"), "mail", "send", pin, undefined)).toMatchObject({ action: "allow" });
  });
});
