// The caller's justification: from the request's _meta (wins) or the X-Countersign-Justification header.
import { describe, expect, it } from "vitest";
import { justificationOf, MAX_JUSTIFICATION_CHARS } from "../../gateway/policy/justification.js";

const request = (meta?: unknown) => ({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "q", arguments: {}, ...(meta === undefined ? {} : { _meta: meta }) } });

describe("justificationOf", () => {
  it("reads _meta countersign/justification", () => {
    expect(justificationOf(request({ "countersign/justification": "INC-7: fix the index" }))).toBe("INC-7: fix the index");
  });

  it("prefers _meta over the header", () => {
    expect(justificationOf(request({ "countersign/justification": "from meta" }), { "x-countersign-justification": "from header" })).toBe("from meta");
  });

  it("falls back to the header, whatever its case or container", () => {
    expect(justificationOf(request(), { "X-Countersign-Justification": "header reason" })).toBe("header reason");
    expect(justificationOf(request(), new Headers({ "x-countersign-justification": "fetch headers" }))).toBe("fetch headers");
    expect(justificationOf(request(), { "x-countersign-justification": ["one", "two"] })).toBe("one, two");
    expect(justificationOf(request({ "countersign/justification": 42 }), { "x-countersign-justification": "meta not a string" })).toBe("meta not a string");
  });

  it("decodes percent-encoded UTF-8 in the header and leaves a literal % alone", () => {
    expect(justificationOf(request(), { "x-countersign-justification": encodeURIComponent("Störung: Kunde 42") })).toBe("Störung: Kunde 42");
    expect(justificationOf(request(), { "x-countersign-justification": "100% sure" })).toBe("100% sure");
  });

  it("trims, ignores blanks and caps the length", () => {
    expect(justificationOf(request({ "countersign/justification": "  padded  " }))).toBe("padded");
    expect(justificationOf(request({ "countersign/justification": "   " }), {})).toBeUndefined();
    expect(justificationOf(request())).toBeUndefined();
    expect(justificationOf(null)).toBeUndefined();
    expect(justificationOf(request({ "countersign/justification": "x".repeat(5000) }))?.length).toBe(MAX_JUSTIFICATION_CHARS);
  });
});
