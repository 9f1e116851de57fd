// Hostile caller against a connection's per-group tool rules (access.tools): a denied tool spelled
// another way (surrounding whitespace of every kind, its NFD form), or named by something that is
// not a string, is refused with CS_ERR_TOOL_DENIED, recorded, and never reaches the upstream; an
// allow list is not widened by such spellings either. The rules use the policy's normal form.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mayCallTool, type AccessConfig } from "../../gateway/auth/access.js";
import { signDevToken } from "../../gateway/auth/dev-issuer.js";
import type { Identity } from "../../gateway/auth/identity.js";
import { filterToolsList, toolCallRefusal } from "../../gateway/auth/tool-access.js";
import { startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { rawPost } from "../helpers/upstreams.js";
import { nameSpellings } from "./spellings.js";

const SERVER = new URL("../fixtures/logging-server.mjs", import.meta.url).pathname;
const ci: Identity = { kind: "user", subject: "ci-bot", issuer: "https://idp.example", groups: ["ci"] };
const ops: Identity = { kind: "user", subject: "olga", issuer: "https://idp.example", groups: ["ops"] };
const ACCESS: AccessConfig = {
  anonymous: false,
  tools: [
    { groups: ["ci"], deny: ["echo", "café", "drop_*"] },
    { groups: ["ops"], allow: ["slow"] },
  ],
};

describe("the rules, by spelling", () => {
  it("no spelling of a denied name passes a deny, for names, accents and globs", () => {
    const spellings = fc.oneof(nameSpellings("echo"), nameSpellings("café"), nameSpellings("drop_table"));
    fc.assert(fc.property(spellings, (name) => !mayCallTool(ACCESS, ci, name)), { numRuns: 300, seed: 7 });
    // A rule written in NFD matches the NFC name too.
    expect(mayCallTool({ anonymous: false, tools: [{ groups: ["ci"], deny: ["cafe\u0301"] }] }, ci, "café")).toBe(false);
  });

  it("no spelling of a name outside an allow list gets in", () => {
    fc.assert(fc.property(nameSpellings("echo"), (name) => !mayCallTool(ACCESS, ops, name)), { numRuns: 100, seed: 7 });
    for (const name of [" slow", "slow\n", "\u00a0slow"]) expect(mayCallTool(ACCESS, ops, name), JSON.stringify(name)).toBe(true);
  });

  it("a name that is not a string is refused, not left to the upstream to coerce", () => {
    for (const name of [["echo"], { toString: "echo" }, 42, null, undefined]) {
      const msg = { jsonrpc: "2.0" as const, id: 1, method: "tools/call", params: { name, arguments: {} } };
      expect(toolCallRefusal(ACCESS, ci, msg as never)?.code, JSON.stringify(name)).toBe("CS_ERR_TOOL_DENIED");
    }
  });

  it("tools/list hides every spelling the upstream may list of a denied tool", () => {
    const msg = { jsonrpc: "2.0" as const, id: 1, result: { tools: [{ name: "echo " }, { name: "cafe\u0301" }, { name: "slow" }] } };
    expect(filterToolsList(ACCESS, ci, msg).removed).toEqual(["echo ", "cafe\u0301"]);
  });
});

describe("through a gateway", () => {
  let db: TestDatabase;
  let gw: TestGateway;
  let scratch: string;
  let upstreamLog: string;
  let headers: Record<string, string>;

  beforeAll(async () => {
    db = await createTestDatabase();
    scratch = mkdtempSync(join(tmpdir(), "cs-access-"));
    upstreamLog = join(scratch, "upstream.log");
    gw = await startTestGateway(db.url, {
      auth: { devIssuer: { enabled: true, keyFile: join(scratch, "dev.jwk") } },
      connections: [{ name: "ops", access: { groups: ["ci"], tools: [{ groups: ["ci"], deny: ["echo"] }] }, upstream: { type: "stdio", command: process.execPath, args: [SERVER], env: { MCP_MESSAGE_LOG: upstreamLog } } }],
    });
    const d = gw.identity.devIssuer!;
    const token = await signDevToken(d.key, d.url, { subject: "ci-bot", groups: ["ci"], audience: [`${gw.config.publicUrl}/mcp/ops`], ttlSeconds: 600 });
    const init = await rawPost(gw.mcpUrl("ops"), JSON.stringify({ jsonrpc: "2.0", id: 0, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "ci", version: "1" } } }), { authorization: `Bearer ${token}` });
    headers = { authorization: `Bearer ${token}`, "mcp-session-id": init.headers.get("mcp-session-id")!, "mcp-protocol-version": "2025-06-18" };
    expect((await rawPost(gw.mcpUrl("ops"), JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }), headers)).status).toBe(202);
  });
  afterAll(async () => {
    await gw?.stop();
    await db?.drop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it("every spelling of the denied tool is refused, recorded, and never forwarded", async () => {
    const names: unknown[] = [" echo", "echo\n", "\techo ", "\u00a0echo", "echo\ufeff", ...fc.sample(nameSpellings("echo"), { numRuns: 10, seed: 13 }), ["echo"], 7];
    let id = 1;
    for (const name of names) {
      const res = await rawPost(gw.mcpUrl("ops"), JSON.stringify({ jsonrpc: "2.0", id: ++id, method: "tools/call", params: { name, arguments: { message: "x" } } }), headers);
      expect(res.text, JSON.stringify(name)).toContain("CS_ERR_TOOL_DENIED");
    }
    const forwarded = existsSync(upstreamLog) ? readFileSync(upstreamLog, "utf8").split("\n").filter((l) => l.includes('"tools/call"')) : [];
    expect(forwarded).toEqual([]);
    const recorded = async () => (await gw.db.event.findMany({ where: { type: "access_denied", reason: "tool_denied" } })).reduce((n, e) => n + ((e.detail as { count?: number }).count ?? 1), 0);
    await expect.poll(recorded).toBe(names.length);
  });
});
