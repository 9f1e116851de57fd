import { describe, expect, it } from "vitest";
import { assertBacktrackSafe, compileLinearRegex, createMasker, defaultRegexEngine, JsonPathError, UnsafeRegexError } from "../../gateway/masking/index.js";
import { builtinDetectors } from "../../gateway/masking/detectors/index.js";

const SECRET = "ghp_R2d2C3p0BeepBoopWhirrClick0123456789";
const PNG_1x1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

describe("masking JSON-RPC messages", () => {
  const masker = createMasker({ personalData: "placeholder" });

  it("masks inside structured content and leaves the input untouched", () => {
    const msg = { jsonrpc: "2.0", id: 1, result: { content: [], structuredContent: { user: { email: "jane@example.com", plan: "pro" } } } };
    const before = structuredClone(msg);
    const { masked, hits, changed } = masker.maskMessage(msg);
    expect(masked.result.structuredContent.user).toEqual({ email: "[MASKED:email]", plan: "pro" });
    expect(hits).toEqual({ email: 1 });
    expect(changed).toBe(true);
    expect(msg).toEqual(before);
  });

  it("returns the same object and changed=false when nothing matches", () => {
    const msg = { jsonrpc: "2.0", id: 1, result: { content: [{ type: "text", text: "all quiet, version 1.2.3" }] } };
    const r = masker.maskMessage(msg);
    expect(r.masked).toBe(msg);
    expect(r.changed).toBe(false);
    expect(r.hits).toEqual({});
  });

  it("parses JSON returned as text, masks it, and keeps its formatting style", () => {
    const rows = [{ id: 1, email: "a.b@example.com", token: SECRET }, { id: 2, email: null }];
    for (const indent of [undefined, 2, 4, "\t"] as const) {
      const text = JSON.stringify(rows, null, indent);
      const { masked } = masker.maskMessage({ result: { content: [{ type: "text", text }] } });
      const out = masked.result.content[0]!.text;
      expect(out).toBe(JSON.stringify([{ id: 1, email: "[MASKED:email]", token: "[MASKED:github_token]" }, { id: 2, email: null }], null, indent));
    }
  });

  it("keeps JSON text byte-for-byte apart from the masked values, whatever its spacing", () => {
    const text = '{ "user" :  "jane@example.com",\r\n  "n": 1.50e3 }';
    const { masked } = masker.maskMessage({ result: { content: [{ type: "text", text }] } });
    expect(masked.result.content[0]!.text).toBe('{ "user" :  "[MASKED:email]",\r\n  "n": 1.50e3 }');
  });

  it("re-serialises in the original indent style when field rules need the parsed structure", () => {
    const withFields = createMasker({ personalData: "placeholder", fields: [{ path: "$..dob" }] });
    for (const indent of [undefined, 2, "\t"] as const) {
      const text = JSON.stringify({ dob: "1985-04-12", email: "a.b@example.com" }, null, indent);
      const { masked } = withFields.maskMessage({ result: { content: [{ type: "text", text }] } });
      expect(masked.result.content[0]!.text).toBe(JSON.stringify({ dob: "[MASKED:dob]", email: "[MASKED:email]" }, null, indent));
    }
  });

  it("scans non-JSON text (and text that only looks like JSON) as text", () => {
    const { masked } = masker.maskMessage({ result: { content: [{ type: "text", text: `{not json: ${SECRET}}` }] } });
    expect(masked.result.content[0]!.text).toBe("{not json: [MASKED:github_token]}");
  });

  it("passes real media of the declared type untouched, even when its base64 contains key-like text", () => {
    const blob = PNG_1x1 + "AKIAIOSFODNN7EXAMPLE" + "A".repeat(300);
    const png = Buffer.concat([Buffer.from(PNG_1x1, "base64"), Buffer.from("AKIAIOSFODNN7EXAMPLE")]).toString("base64");
    const msg = {
      result: {
        content: [
          { type: "image", mimeType: "image/png", data: PNG_1x1 },
          { type: "image", mimeType: "image/png", data: png.replace(/=+$/, "") + "=".repeat((4 - (png.replace(/=+$/, "").length % 4)) % 4) },
          { type: "text", text: `inline data:image/png;base64,${blob}` },
          { type: "text", text: `data:image/png;base64,${PNG_1x1}` },
        ],
      },
    };
    const { masked, changed } = masker.maskMessage(msg);
    expect(changed).toBe(false);
    expect(masked).toEqual(msg);
  });

  it("scans text shaped like base64 that does not decode (a length base64 never has) as text", () => {
    const text = "AKIAIOSFODNN7EXAMPLE\n" + "x".repeat(250);
    const msg = {
      result: {
        content: [
          { type: "text", text },
          { type: "text", text: "A".repeat(257) },
          { type: "image", mimeType: "image/png", data: text },
          { type: "text", text: `data:image/png;base64,${text}` },
        ],
      },
    };
    const { masked, hits } = masker.maskMessage(msg);
    const out = masked.result.content;
    expect(out[0]!.text).toBe("[MASKED:aws_access_key]\n" + "x".repeat(250));
    expect(out[1]!.text).toBe("A".repeat(257));
    expect(Buffer.from(out[2]!.data!, "base64").toString()).toBe("[MASKED:aws_access_key]\n" + "x".repeat(250));
    expect(Buffer.from(out[3]!.text!.slice("data:image/png;base64,".length), "base64").toString()).toBe("[MASKED:aws_access_key]\n" + "x".repeat(250));
    expect(hits).toEqual({ aws_access_key: 3 });
  });

  it("keeps every masked message valid JSON that round-trips", () => {
    const nasty = {
      jsonrpc: "2.0",
      id: "x",
      result: {
        content: [
          { type: "text", text: 'password="a\\"b\\\\c" and "quoted": "jane@example.com"' },
          { type: "text", text: JSON.stringify({ s: 'say "hi" to jane@example.com\n\t', password: 'p"w\\d' }) },
          { type: "text", text: "unicode ✓ jane@exämple.com 📧 bob@example.org \u2028" },
        ],
      },
    };
    const { masked } = masker.maskMessage(nasty);
    const serialised = JSON.stringify(masked);
    expect(JSON.parse(serialised)).toEqual(masked);
    const inner = JSON.parse(masked.result.content[1]!.text) as Record<string, string>;
    expect(inner.password).toBe("[MASKED:secret_assignment]");
    expect(serialised).not.toContain("bob@example.org");
  });

  it("masks server-to-client requests, notifications, errors and call arguments alike", () => {
    const messages = [
      { jsonrpc: "2.0", method: "notifications/message", params: { level: "info", data: `got ${SECRET}` } },
      { jsonrpc: "2.0", id: 9, error: { code: -32000, message: `bad key ${SECRET}`, data: { key: SECRET } } },
      { jsonrpc: "2.0", id: 3, method: "tools/call", params: { name: "query", arguments: { sql: "select 1", password: "hunter22!" } } },
    ];
    for (const m of messages) {
      const out = JSON.stringify(masker.maskMessage(m).masked);
      expect(out).not.toContain(SECRET);
      expect(out).not.toContain("hunter22!");
    }
  });
});

describe("field rules", () => {
  it("masks values selected by JSON paths, of any JSON type, also inside JSON text", () => {
    const masker = createMasker({ personalData: "placeholder", fields: [{ path: "$..ssn" }, { path: "$.user.email", type: "user_email" }, { path: "$.rows[*].dob" }] });
    const doc = { user: { email: "x@y.io", ssn: 123456789 }, rows: [{ dob: "1985-04-12", ssn: { area: 123 } }], other: { user: { email: "keep-as-email@y.io" } } };
    const { masked, hits } = masker.maskMessage({ result: { content: [{ type: "text", text: JSON.stringify(doc) }] } });
    const out = JSON.parse(masked.result.content[0]!.text) as typeof doc;
    expect(out.user).toEqual({ email: "[MASKED:user_email]", ssn: "[MASKED:ssn]" });
    expect(out.rows[0]).toEqual({ dob: "[MASKED:dob]", ssn: "[MASKED:ssn]" });
    expect(out.other.user.email).toBe("[MASKED:email]"); // not selected by $.user.email, but still an e-mail
    expect(hits).toEqual({ user_email: 1, ssn: 2, dob: 1, email: 1 });
  });

  it("matches field names case-insensitively", () => {
    const masker = createMasker({ personalData: "placeholder", fields: [{ path: "$..PASSWORD" }] });
    expect(masker.maskMessage({ Password: 12 }).masked).toEqual({ Password: "[MASKED:password]" });
  });

  it("rejects malformed paths at creation", () => {
    expect(() => createMasker({ personalData: "placeholder", fields: [{ path: "password" }] })).toThrow(JsonPathError);
    expect(() => createMasker({ personalData: "placeholder", fields: [{ path: "$" }] })).toThrow(JsonPathError);
    expect(() => createMasker({ personalData: "placeholder", fields: [{ path: "$.a." }] })).toThrow(JsonPathError);
  });
});

describe("keyed-HMAC tokens", () => {
  it("gives the same value the same token, different values and keys different tokens", () => {
    const a = createMasker({ personalData: "placeholder", tokenKey: "shared-replica-key" });
    const b = createMasker({ personalData: "placeholder", tokenKey: "shared-replica-key" });
    const other = createMasker({ personalData: "placeholder", tokenKey: "another-key" });
    const t1 = a.maskText("mail jane@example.com").masked;
    expect(t1).toMatch(/^mail \[MASKED:email:[0-9a-f]{8}\]$/);
    expect(b.maskText("to jane@example.com").masked).toBe(t1.replace("mail", "to"));
    expect(a.maskText("mail bob@example.com").masked).not.toBe(t1);
    expect(other.maskText("mail jane@example.com").masked).not.toBe(t1);
  });
});

describe("remembered verdicts for repeated short values", () => {
  it("judges a repeated value again under another field name, and the same under the same one", () => {
    const masker = createMasker({ personalData: "placeholder" });
    const rows = Array.from({ length: 3 }, () => ({ phone: "020 7946 0958", note: "020 7946 0958" }));
    const { masked, hits } = masker.maskMessage({ rows });
    for (const r of masked.rows) expect(r).toEqual({ phone: "[MASKED:phone]", note: "020 7946 0958" });
    expect(hits).toEqual({ phone: 3 });
    // A second message reuses what the first taught: same answers, counted again.
    expect(masker.maskMessage({ rows }).hits).toEqual({ phone: 3 });
  });

  it("stays correct when more distinct values pass than it remembers", () => {
    const masker = createMasker({ personalData: "placeholder" });
    for (let round = 0; round < 2; round++) {
      const values = Array.from({ length: 5000 }, (_, i) => (i % 2 === 0 ? `user${i}@example.com` : `order ${i} shipped`));
      const { masked, hits } = masker.maskMessage({ values });
      expect(hits).toEqual({ email: 2500 });
      expect(masked.values[1]).toBe("order 1 shipped");
      expect(masked.values[4998]).toBe("[MASKED:email]");
    }
  });

  it("stays correct past the number of field names it remembers, and for names too long to remember", () => {
    const masker = createMasker({ personalData: "placeholder" });
    const long = "x".repeat(300);
    for (let round = 0; round < 2; round++) {
      const row: Record<string, string> = {};
      for (let i = 0; i < 12_000; i++) row[`field${round}_${i}`] = "plain value";
      row[`${long}_password`] = "hunter22!!";
      row[`${long} jane@example.com`] = "plain value";
      row.api_key = "hunter22!!";
      const { masked, hits } = masker.maskMessage({ rows: [row, { api_key: "hunter22!!" }] });
      expect(hits).toEqual({ secret_assignment: 3, email: 1 });
      expect(masked.rows[0]![`${long}_password`]).toBe("[MASKED:secret_assignment]");
      expect(masked.rows[0]![`${long} [MASKED:email]`]).toBe("plain value");
      expect(masked.rows[1]).toEqual({ api_key: "[MASKED:secret_assignment]" });
    }
  });

  it("passes whole UUIDs and timestamps, but still masks one under a secret-named field", () => {
    const masker = createMasker({ personalData: "placeholder" });
    const uuid = "f47ac10b-58cc-4372-a567-0e02b2c3d479";
    const { masked, hits } = masker.maskMessage({ id: uuid, at: "2026-11-24T06:30:00.123+01:00", api_key: uuid });
    expect(masked).toEqual({ id: uuid, at: "2026-11-24T06:30:00.123+01:00", api_key: "[MASKED:secret_assignment]" });
    expect(hits).toEqual({ secret_assignment: 1 });
  });
});

describe("role-aware exemptions", () => {
  it("leaves exempted types unmasked and reports what they would have masked", () => {
    const masker = createMasker({ personalData: "placeholder", fields: [{ path: "$..ssn" }] });
    const msg = { rows: [{ email: "jane@example.com", ssn: "123-45-6789", key: SECRET }] };
    const r = masker.maskMessage(msg, { exempt: ["email", "ssn"] });
    expect(r.masked.rows[0]).toEqual({ email: "jane@example.com", ssn: "123-45-6789", key: "[MASKED:github_token]" });
    expect(r.hits).toEqual({ github_token: 1 });
    expect(r.exempted).toEqual({ email: 1, ssn: 1 });
    const full = masker.maskMessage(msg);
    expect(full.masked.rows[0]).toEqual({ email: "[MASKED:email]", ssn: "[MASKED:ssn]", key: "[MASKED:github_token]" });
    expect(full.exempted).toEqual({});
  });
});

describe("custom patterns and linear-time regexes", () => {
  it("masks custom patterns (whole match or a group)", () => {
    const masker = createMasker({ personalData: "placeholder", customPatterns: [{ id: "employee_id", pattern: "EMP-\\d{6}" }, { id: "ticket_secret", pattern: "ticket=(\\w{8})", group: 1 }] });
    expect(masker.maskText("EMP-123456 opened ticket=abcd1234 ok").masked).toBe("[MASKED:employee_id] opened ticket=[MASKED:ticket_secret] ok");
  });

  it("rejects custom pattern ids that clash with detectors or cannot be a marker label", () => {
    expect(() => createMasker({ personalData: "placeholder", customPatterns: [{ id: "email", pattern: "x" }] })).toThrow(/already in use/);
    expect(() => createMasker({ personalData: "placeholder", customPatterns: [{ id: "Bad]Id", pattern: "x" }] })).toThrow(/lower-case/);
  });

  const redosPatterns = ["(a+)+$", "(a|aa)+$", "(a*)*b", "(.*a){20}", "^(\\w+\\s?)*$", "(x+x+)+y"];
  const evil = "a".repeat(40) + "!";

  it("rejects catastrophic-backtracking patterns under the checked V8 engine", () => {
    for (const p of redosPatterns) {
      expect(() => compileLinearRegex(p, "", "checked"), p).toThrow(UnsafeRegexError);
      expect(() => createMasker({ personalData: "placeholder", customPatterns: [{ id: "x", pattern: p }], regexEngine: "checked" }), p).toThrow(UnsafeRegexError);
    }
    expect(() => assertBacktrackSafe("(a)\\1")).toThrow(UnsafeRegexError);
    expect(() => compileLinearRegex("EMP-\\d{6}", "", "checked")).not.toThrow();
  });

  it("runs the same patterns harmlessly under RE2 (linear time) and refuses lookaround", () => {
    for (const p of redosPatterns) {
      const masker = createMasker({ personalData: "placeholder", customPatterns: [{ id: "x", pattern: p }], regexEngine: "re2" });
      // Under a backtracking engine each of these would take longer than the test timeout.
      expect(masker.maskText(evil + " " + "x".repeat(5000) + "!").masked.length).toBeGreaterThan(0);
    }
    expect(() => compileLinearRegex("(?<=a)b", "", "re2")).toThrow(UnsafeRegexError);
    expect(() => compileLinearRegex("(a)\\1", "", "re2")).toThrow(UnsafeRegexError);
  });

  it("uses RE2 by default, with no native module to build", () => {
    expect(defaultRegexEngine()).toBe("re2");
    // Accepted by default (RE2 cannot backtrack), and harmless on the input that hangs V8.
    const masker = createMasker({ customPatterns: [{ id: "x", pattern: "(a+)+$" }] });
    expect(masker.maskText(evil).masked).toBe(evil);
    const re = compileLinearRegex("EMP-(?<n>\\d{3})", "i", undefined, { global: true });
    const found: Array<[number, string, string | undefined]> = [];
    for (let m = re.exec("😀 emp-123, EMP-456"); m; m = re.exec("😀 emp-123, EMP-456")) found.push([m.index, m[0], m.groups?.n]);
    expect(found).toEqual([[3, "emp-123", "123"], [12, "EMP-456", "456"]]);
  });

  it("built-in detector regexes repeat groups only a few times and never unboundedly", () => {
    // safe-regex2 counts any quantified group with a quantifier inside as unsafe (and cannot parse
    // lookbehind), so built-ins follow a stricter, checkable rule instead: unbounded quantifiers
    // only on single characters or classes; a quantified group repeats at most 8 times. Each start
    // position then costs a bounded amount of backtracking, and the scan stays linear.
    const sources = builtinDetectors.flatMap((d) => d.patterns.map((re) => re.source));
    expect(sources.length).toBeGreaterThan(30);
    for (const source of sources) {
      for (const m of source.matchAll(/(?<!\\)\)([*+]|\{(\d+)(,?)(\d*)\})/g)) {
        expect(m[1] === "*" || m[1] === "+", `${source}: unbounded group repetition`).toBe(false);
        const max = m[3] === "," ? Number(m[4] || Infinity) : Number(m[2]);
        expect(max, `${source}: group repeated up to ${max} times`).toBeLessThanOrEqual(8);
      }
    }
  });

  it("stays fast on adversarial input against every built-in detector", () => {
    const masker = createMasker({ personalData: "placeholder" });
    const inputs = [
      "eyJ".repeat(30_000),
      "eyJhbGciOi.".repeat(10_000),
      "-----BEGIN RSA PRIVATE KEY-----".repeat(5_000),
      "a@".repeat(30_000) + "a",
      "a".repeat(60_000) + "@",
      "://:".repeat(20_000),
      "password=".repeat(10_000),
      "1".repeat(60_000),
      "1 ".repeat(30_000),
      "+1 ".repeat(20_000),
      "1.".repeat(30_000),
      "1:".repeat(30_000),
      "DE89 ".repeat(20_000),
      "sk-".repeat(20_000),
      "Bearer ".repeat(10_000),
      "A".repeat(60_000),
    ];
    for (const input of inputs) {
      const r = masker.maskMessage({ result: { content: [{ type: "text", text: input }] } });
      expect(typeof r.masked.result.content[0]!.text).toBe("string");
    }
  });
});
