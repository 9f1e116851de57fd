// Protocol fields pass byte for byte (a client matches them), yet are scanned: a credential in
// one refuses the message with a typed error and a stand-in that carries nothing of it.
import { describe, expect, it } from "vitest";
import { createMasker } from "../../gateway/masking/index.js";
import { MaskingRefusedError } from "../../gateway/masking/refusal.js";

const SECRET = ["ghp_", "R2d2C3p0BeepBoopWhirrClick0123456789"].join("");
const EMAIL = ["jane.doe", "corp-mail.com"].join("@");
const masker = createMasker({ personalData: "placeholder" });

/** Each protocol field kind, in a message where a content-minded masker would rewrite it. */
const FIELDS: Array<{ kind: string; msg: Record<string, unknown>; read: (m: any) => unknown }> = [
  { kind: "string id", msg: { jsonrpc: "2.0", id: `req-${EMAIL}`, result: { content: [] } }, read: (m) => m.id },
  { kind: "progressToken", msg: { jsonrpc: "2.0", method: "notifications/progress", params: { progressToken: "upload-token-4711", progress: 1 } }, read: (m) => m.params.progressToken },
  { kind: "_meta.progressToken", msg: { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "x", _meta: { progressToken: "auth-token-8a7b6c5d4e3f" } } }, read: (m) => m.params._meta.progressToken },
  { kind: "cursor", msg: { jsonrpc: "2.0", id: 2, method: "tools/list", params: { cursor: `page after ${EMAIL}` } }, read: (m) => m.params.cursor },
  { kind: "nextCursor", msg: { jsonrpc: "2.0", id: 2, result: { tools: [], nextCursor: "offset=10;owner=192.168.4.20" } }, read: (m) => m.result.nextCursor },
  { kind: "requestState", msg: { jsonrpc: "2.0", id: 3, result: { resultType: "input_required", requestState: "eyJ1c2VyIjoiamFuZUBjb3JwLW1haWwuY29tIn0.c2ln", inputRequests: { "token-req-1": { method: "elicitation/create", params: { message: "hi" } } } } }, read: (m) => [m.result.requestState, m.result.resultType, Object.keys(m.result.inputRequests)] },
  { kind: "reserved _meta key", msg: { jsonrpc: "2.0", id: 4, method: "tools/list", params: { _meta: { "io.modelcontextprotocol/clientInfo": { name: "ide", email: EMAIL }, "io.modelcontextprotocol/protocolVersion": "2026-07-28" } } }, read: (m) => m.params._meta },
  { kind: "task id", msg: { jsonrpc: "2.0", id: 5, result: { task: { taskId: "task_token_77f3a9", status: "working" } } }, read: (m) => m.result.task.taskId },
  { kind: "listed task ids", msg: { jsonrpc: "2.0", id: 5, result: { tasks: [{ taskId: "task-secret-7f3a9", status: "working" }] } }, read: (m) => m.result.tasks[0].taskId },
  { kind: "subscription id", msg: { jsonrpc: "2.0", method: "notifications/resources/updated", params: { subscriptionId: "sub-token-3", uri: `mailto:${EMAIL}` } }, read: (m) => [m.params.subscriptionId, m.params.uri] },
  { kind: "method name", msg: { jsonrpc: "2.0", id: 6, method: `x/${EMAIL}` }, read: (m) => m.method },
  { kind: "resource uri", msg: { jsonrpc: "2.0", id: 7, result: { contents: [{ uri: `file:///home/${EMAIL}/notes.txt`, text: `owner ${EMAIL}` }] } }, read: (m) => m.result.contents[0].uri },
];

describe("protocol fields", () => {
  for (const f of FIELDS) {
    it(`leaves ${f.kind} byte-identical`, () => {
      const r = masker.maskMessage(f.msg);
      expect(r.refused).toBeUndefined();
      expect(f.read(r.masked)).toEqual(f.read(f.msg));
    });
  }

  it("still masks content next to protocol fields", () => {
    const r = masker.maskMessage({ jsonrpc: "2.0", id: 7, result: { contents: [{ uri: `file:///home/${EMAIL}/notes.txt`, text: `owner ${EMAIL}` }], _meta: { "vendor.example/owner": EMAIL } } });
    expect(r.masked.result.contents[0]!.text).toBe("owner [MASKED:email]");
    expect(r.masked.result._meta["vendor.example/owner"]).toBe("[MASKED:email]");
  });

  it("treats a JSON text inside a result as content, whatever its field names", () => {
    const text = JSON.stringify({ id: EMAIL, cursor: EMAIL });
    const r = masker.maskMessage({ jsonrpc: "2.0", id: 1, result: { content: [{ type: "text", text }] } });
    expect(JSON.parse(r.masked.result.content[0]!.text)).toEqual({ id: "[MASKED:email]", cursor: "[MASKED:email]" });
  });

  const SMUGGLED: Array<{ kind: string; msg: Record<string, unknown>; path: string }> = [
    { kind: "nextCursor", msg: { jsonrpc: "2.0", id: 9, result: { tools: [], nextCursor: SECRET } }, path: "$.result.nextCursor" },
    { kind: "progressToken", msg: { jsonrpc: "2.0", method: "notifications/progress", params: { progressToken: `t-${SECRET}`, progress: 1 } }, path: "$.params.progressToken" },
    { kind: "string id", msg: { jsonrpc: "2.0", id: SECRET, result: {} }, path: "$.id" },
    { kind: "requestState (escaped)", msg: { jsonrpc: "2.0", id: 9, result: { resultType: "input_required", requestState: SECRET.replace("g", "\\u0067") } }, path: "$.result.requestState" },
    { kind: "requestState (base64)", msg: { jsonrpc: "2.0", id: 9, result: { resultType: "input_required", requestState: Buffer.from(SECRET).toString("base64") } }, path: "$.result.requestState" },
    { kind: "reserved _meta", msg: { jsonrpc: "2.0", id: 9, result: { _meta: { "io.modelcontextprotocol/related-task": { taskId: SECRET } } } }, path: '$.result._meta["io.modelcontextprotocol/related-task"]' },
    { kind: "resource uri", msg: { jsonrpc: "2.0", id: 9, result: { contents: [{ uri: "postgres://app:S3cretPassw0rd@db.internal/app", text: "x" }] } }, path: "$.result.contents[0].uri" },
  ];
  for (const s of SMUGGLED) {
    it(`refuses a credential smuggled in ${s.kind}, with a stand-in that holds none of it`, () => {
      const r = masker.maskMessage(s.msg);
      expect(r.refused).toBeInstanceOf(MaskingRefusedError);
      expect(r.refused!.code).toBe("CS_ERR_SECRET_IN_PROTOCOL_FIELD");
      expect(r.refused!.path).toBe(s.path);
      expect(r.changed).toBe(true);
      const standIn = JSON.stringify(r.masked);
      expect(standIn).not.toContain("R2d2C3p0");
      expect(standIn).not.toContain("S3cretPassw0rd");
      if (typeof s.msg.id === "number") expect(r.masked).toMatchObject({ jsonrpc: "2.0", id: s.msg.id, error: { data: { code: "CS_ERR_SECRET_IN_PROTOCOL_FIELD" } } });
    });
  }
});

describe("bounded walks", () => {
  it("refuses a message nested deeper than the limit instead of overflowing the stack", () => {
    let deep: unknown = { leaf: EMAIL };
    for (let i = 0; i < 100_000; i++) deep = { a: deep };
    const r = masker.maskMessage({ jsonrpc: "2.0", id: 11, result: { content: [], structuredContent: deep } });
    expect(r.refused?.code).toBe("CS_ERR_MESSAGE_TOO_COMPLEX");
    expect(r.masked).toMatchObject({ id: 11, error: { data: { code: "CS_ERR_MESSAGE_TOO_COMPLEX" } } });
  });

  it("counts JSON texts inside strings towards the depth", () => {
    const text = "[".repeat(5000) + JSON.stringify(EMAIL) + "]".repeat(5000);
    const r = createMasker({ personalData: "placeholder", fields: [{ path: "$..dob" }] }).maskMessage({ jsonrpc: "2.0", id: 12, result: { content: [{ type: "text", text }] } });
    expect(r.refused?.code).toBe("CS_ERR_MESSAGE_TOO_COMPLEX");
    const r2 = masker.maskMessage({ jsonrpc: "2.0", id: 12, result: { content: [{ type: "text", text }] } });
    expect(JSON.stringify(r2.masked)).not.toContain(EMAIL);
  });

  it("refuses a deep protocol subtree too (walked without recursion)", () => {
    let deep: unknown = "x";
    for (let i = 0; i < 50_000; i++) deep = [deep];
    const r = masker.maskMessage({ jsonrpc: "2.0", id: 13, result: { capabilities: deep } });
    expect(r.refused?.code).toBe("CS_ERR_MESSAGE_TOO_COMPLEX");
  });

  it("refuses more values than the limit", () => {
    const small = createMasker({ personalData: "placeholder", maxValues: 1000 });
    const r = small.maskMessage({ jsonrpc: "2.0", id: 14, result: { structuredContent: { rows: Array.from({ length: 2000 }, (_, i) => i) } } });
    expect(r.refused?.code).toBe("CS_ERR_MESSAGE_TOO_COMPLEX");
    expect(small.maskMessage({ jsonrpc: "2.0", id: 15, result: { structuredContent: { rows: [1, 2, 3] } } }).refused).toBeUndefined();
  });

  it("masks a message just inside the depth limit", () => {
    let deep: unknown = { leaf: EMAIL };
    for (let i = 0; i < 200; i++) deep = { a: deep };
    const r = masker.maskMessage({ jsonrpc: "2.0", id: 16, result: { structuredContent: deep } });
    expect(r.refused).toBeUndefined();
    expect(JSON.stringify(r.masked)).toContain("[MASKED:email]");
  });
});
