// Secrets split across content items: each text item alone looks clean, joined they spell a
// credential. Every part is cut out; personal data that merely abuts across items is left to the
// per-item scan.
import { describe, expect, it } from "vitest";
import { createMasker } from "../../gateway/masking/index.js";

// Realistic-looking values (not live credentials), assembled so no scanner flags this file.
const AWS_ID = ["AKIA", "QX7T3Y2K5M4N8P6W"].join("");
const GITHUB = ["ghp_", "L3aKyB0dyT0k3nW4nK7yH3mP6sD1fG5jC0aE"].join("");
const masker = createMasker();

const texts = (msg: unknown) => (msg as { result: { content: Array<{ text?: string }> } }).result.content.map((c) => c.text ?? "");
const response = (...parts: string[]) => ({ jsonrpc: "2.0", id: 1, result: { content: parts.map((text) => ({ type: "text", text })) } });

describe("a credential split across text items", () => {
  it("masks both parts of an AWS key split across two items, counted once", () => {
    const r = masker.maskMessage(response(`deploy key ${AWS_ID.slice(0, 9)}`, `${AWS_ID.slice(9)} for prod`));
    expect(texts(r.masked)).toEqual(["deploy key [MASKED:aws_access_key]", "[MASKED:aws_access_key] for prod"]);
    expect(r.hits).toEqual({ aws_access_key: 1 });
  });

  it("masks every part of a token spread over three items, and keeps the other items' text", () => {
    const r = masker.maskMessage(response("token:", GITHUB.slice(0, 10), GITHUB.slice(10, 14), `${GITHUB.slice(14)} (rotate monthly)`));
    const joined = texts(r.masked).join("");
    expect(joined).not.toContain(GITHUB.slice(4, 10));
    expect(joined).not.toContain(GITHUB.slice(14));
    expect(texts(r.masked)[0]).toBe("token:");
    expect(texts(r.masked)[3]).toBe("[MASKED:github_token] (rotate monthly)");
  });

  it("masks split parts in a resource's text contents too", () => {
    const msg = { jsonrpc: "2.0", id: 2, result: { contents: [{ uri: "file:///a", text: `AWS_ACCESS_KEY_ID=${AWS_ID.slice(0, 6)}` }, { uri: "file:///b", text: AWS_ID.slice(6) }] } };
    const out = JSON.stringify(masker.maskMessage(msg).masked);
    expect(out).not.toContain(AWS_ID.slice(6));
    expect(out).toContain('"uri":"file:///b"');
  });

  it("leaves items alone when the join finds nothing that crosses a boundary", () => {
    const msg = response("version 1.2.3", "sha 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "done");
    expect(masker.maskMessage(msg).masked).toBe(msg);
  });

  it("does not rewrite personal data that merely abuts across items", () => {
    const r = masker.maskMessage(response("Contact ann", "a@example.org"));
    expect(texts(r.masked)[0]).toBe("Contact ann");
  });

  it("leaves an exempted type in place, counted as exempted", () => {
    const r = masker.maskMessage(response(AWS_ID.slice(0, 9), AWS_ID.slice(9)), { exempt: ["aws_access_key"] });
    expect(texts(r.masked).join("")).toBe(AWS_ID);
    expect(r.exempted).toEqual({ aws_access_key: 1 });
  });
});
