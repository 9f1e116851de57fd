// Policy cannot be passed by spelling a target another way: resource URIs and tool/prompt names
// are matched in one normal form (gateway/policy/normalize.ts). Named spellings first, then
// generated ones (fast-check): every spelling of a blocked target is blocked, and normalising
// never moves a URI out of a scope its path really stays in.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { evaluate, policySchema, type PolicyRequest } from "../../gateway/policy/index.js";
import { normaliseName, normaliseResourceUri } from "../../gateway/policy/normalize.js";

const alice = { subject: "alice", email: "alice@example.com", groups: ["engineering"] };
const policy = policySchema.parse({
  rules: [
    { id: "documents", description: "static documents", resources: ["demo://resource/static/document/*"], action: "block" },
    { id: "deploy", description: "deploys", tools: ["deploy"], action: "block" },
    { id: "admin-prompt", description: "admin prompts", prompts: ["admin-*"], action: "block" },
  ],
});
const read = (uri: string): PolicyRequest => ({ connection: "c", method: "resources/read", params: { uri }, identity: alice });
const call = (name: string): PolicyRequest => ({ connection: "c", method: "tools/call", params: { name, arguments: {} }, identity: alice });
const prompt = (name: string): PolicyRequest => ({ connection: "c", method: "prompts/get", params: { name }, identity: alice });
const action = (req: PolicyRequest) => evaluate(policy, req).effectiveAction;

describe("resource URIs are matched in normal form", () => {
  it.each([
    "demo://resource/static/document/1",
    "DEMO://resource/static/document/1",
    "Demo://RESOURCE/static/document/1",
    "demo://resource/static/x/../document/1",
    "demo://resource/static/./document/1",
    "demo://resource/static/document/./1",
    "demo://resource/./static/x/y/../../document/1",
    " demo://resource/static/document/1",
    "demo://resource/static/document/1\n",
    "\tdemo://resource/static/document/1 ",
    "demo://resource/static/%64ocument/1",
    "demo://resource/static/%64%6F%63ument/1",
    "demo://resource/static/x/%2e%2e/document/1",
    "demo://resource/static/x/%2E%2E/document/1",
    "demo://resource/static/%2e/document/1",
    "demo://resource/static/document/%31",
    "demo://resource/%73tatic/document/1",
  ])("blocks %j", (uri) => {
    expect(action(read(uri))).toBe("block");
  });

  it.each(["demo://resource/static/other/1", "demo://resource/static/document%2F1", "demo://resource/static/document", "demo://resource/static/document/../other", "other://resource/static/document/1"])(
    "leaves %j alone",
    (uri) => expect(action(read(uri))).toBe("allow"),
  );

  it("keeps escapes that are not unreserved, in upper case, and never decodes twice", () => {
    expect(normaliseResourceUri("x://h/a%2fb")).toBe("x://h/a%2Fb");
    expect(normaliseResourceUri("x://h/%252e%252e/y")).toBe("x://h/%252e%252e/y");
    expect(normaliseResourceUri("x://User@HOST/P?Q=A#F")).toBe("x://User@host/P?Q=A#F");
    expect(normaliseResourceUri("x://h/a/../../../b")).toBe("x://h/b");
    expect(normaliseResourceUri("x://h/a/b/..")).toBe("x://h/a/");
  });

  it("normalises the rule's globs the same way", () => {
    const shouting = policySchema.parse({ rules: [{ id: "r", description: "d", resources: ["DEMO://Resource/./static/*"], action: "block" }] });
    expect(evaluate(shouting, read("demo://resource/static/a")).effectiveAction).toBe("block");
  });

  // Generated spellings of one blocked URI: case of scheme and host, dot-segment detours,
  // escapes of unreserved characters, surrounding whitespace.
  const detour = fc.array(fc.constantFrom("./", "x/../", "%2E/", "a/b/../../", "q/%2e%2E/"), { maxLength: 3 });
  const casing = (s: string) => fc.array(fc.boolean(), { minLength: s.length, maxLength: s.length }).map((up) => [...s].map((c, i) => (up[i] ? c.toUpperCase() : c)).join(""));
  const escaping = (s: string) =>
    fc.array(fc.integer({ min: 0, max: 2 }), { minLength: s.length, maxLength: s.length }).map((how) =>
      [...s].map((c, i) => (/[a-z0-9]/i.test(c) && how[i] ? `%${c.charCodeAt(0).toString(16)[how[i] === 1 ? "toLowerCase" : "toUpperCase"]()}` : c)).join(""),
    );
  const space = fc.constantFrom("", " ", "\t", "\n", "\u00a0", "\u2003");

  it("blocks every generated spelling of a blocked URI", () => {
    fc.assert(
      fc.property(casing("demo"), casing("resource"), detour, escaping("static"), detour, escaping("document"), fc.stringMatching(/^[a-z0-9]{1,8}$/), space, space, (scheme, host, d1, st, d2, doc, leaf, pre, post) => {
        const uri = `${pre}${scheme}://${host}/${d1.join("")}${st}/${d2.join("")}${doc}/${leaf}${post}`;
        expect(action(read(uri)), uri).toBe("block");
      }),
      { numRuns: 400 },
    );
  });

  it("is idempotent and leaves a dot-free, escape-free lower-case URI as it is", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (s) => {
        const once = normaliseResourceUri(s);
        expect(normaliseResourceUri(once)).toBe(once);
      }),
      { numRuns: 500 },
    );
    fc.assert(fc.property(fc.stringMatching(/^[a-z]{1,5}:\/\/[a-z]{1,6}(\/[a-z0-9_-]{1,6}){0,4}$/), (u) => {
        expect(normaliseResourceUri(u)).toBe(u);
      }),
    );
  });
});

describe("tool and prompt names are matched in normal form", () => {
  it.each(["deploy", " deploy", "deploy ", "\tdeploy\n", "\u00a0deploy"])("blocks tools/call %j", (name) => expect(action(call(name))).toBe("block"));

  it("matches a name in NFC whatever its composition", () => {
    const composed = policySchema.parse({ rules: [{ id: "r", description: "d", tools: ["caf\u00e9"], action: "block" }] });
    expect(evaluate(composed, call("cafe\u0301")).effectiveAction).toBe("block");
    const decomposed = policySchema.parse({ rules: [{ id: "r", description: "d", tools: ["cafe\u0301"], action: "block" }] });
    expect(evaluate(decomposed, call("caf\u00e9")).effectiveAction).toBe("block");
    expect(action(prompt(" admin-reset"))).toBe("block");
  });

  it("keeps case (MCP names are case-sensitive) and blocks every whitespace-wrapped spelling", () => {
    expect(normaliseName("Deploy")).toBe("Deploy");
    fc.assert(
      fc.property(fc.constantFrom("", " ", "\t", "\r\n", "\u2028", "\ufeff"), fc.constantFrom("", " ", "\n", "\u3000"), (a, b) => {
        expect(action(call(`${a}deploy${b}`))).toBe("block");
        expect(action(prompt(`${a}admin-x${b}`))).toBe("block");
      }),
    );
  });
});
