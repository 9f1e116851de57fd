// Key rotation on a running gateway (keys.ring, applied by a reload): the requestState of a held
// stateless call sealed before a rotation still opens while its key is verify-only, and the retry
// gets its decision; console logins signed before a rotation stay logged in; retiring a key
// (revocation) refuses what it signed, and the refusal is recorded.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signDevToken } from "../../gateway/auth/dev-issuer.js";
import { loadConfigFile } from "../../gateway/config/load.js";
import { startGateway, type Gateway } from "../../gateway/gateway.js";
import { createLogger } from "../../gateway/log.js";
import { everythingStdio } from "../helpers/gateway.js";
import { DEPLOYS_NEED_ONCALL, quickApprovals } from "../helpers/held-calls.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { rawPost } from "../helpers/upstreams.js";

let db: TestDatabase;
let gw: Gateway;
let scratch: string;
let file: string;

type Ring = Array<{ id: string; secret: { env: string }; state?: "active" | "verify-only" | "retired" }>;
const key = (id: string, state?: "verify-only" | "retired") => ({ id, secret: { env: `KR_${id.toUpperCase()}` }, ...(state ? { state } : {}) });

function writeConfig(ring: { requestState: Ring; console: Ring }): void {
  writeFileSync(
    file,
    stringify({
      version: 1,
      server: { host: "127.0.0.1", port: 0 },
      database: { url: { env: "KR_DATABASE_URL" }, migrateOnStart: false },
      auth: { devIssuer: { enabled: true, keyFile: join(scratch, "dev.jwk") } },
      keys: { ring },
      approvals: quickApprovals(["bob@example.com"], "2s"),
      connections: [{ name: "ops", access: { groups: ["dev"] }, upstream: everythingStdio(), policy: { rules: [DEPLOYS_NEED_ONCALL] } }],
    }),
  );
}

async function reload(ring: { requestState: Ring; console: Ring }): Promise<void> {
  writeConfig(ring);
  const r = await gw.reload({ kind: "signal" });
  expect(r.applied, JSON.stringify(r.problems.concat(r.restartRequired))).toBe(true);
}

beforeAll(async () => {
  db = await createTestDatabase();
  scratch = mkdtempSync(join(tmpdir(), "countersign-keys-"));
  file = join(scratch, "countersign.yaml");
  for (const id of ["rs1", "rs2", "rs3", "c1", "c2"]) process.env[`KR_${id.toUpperCase()}`] = `${id}-${randomBytes(24).toString("base64url")}`;
  process.env.KR_DATABASE_URL = db.url;
  writeConfig({ requestState: [key("rs1")], console: [key("c1")] });
  gw = await startGateway(loadConfigFile(file), { log: createLogger("silent", new Writable({ write: (_c, _e, cb) => cb() })), progress: () => {} });
});
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

// ── held stateless calls and their requestState ─────────────────────────────────────────────
let nextId = 1;
type Msg = { id: number; result?: Record<string, unknown>; error?: { code: number; data: Record<string, unknown> } };
async function call(message: string, extra: Record<string, unknown> = {}): Promise<{ status: number; msg: Msg }> {
  const d = gw.identity.devIssuer!;
  const token = await signDevToken(d.key, d.url, { subject: "alice", email: "alice@example.com", groups: ["dev"], audience: [`${gw.config.publicUrl}/mcp/ops`], ttlSeconds: 600 });
  const id = nextId++;
  const meta = { "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": { elicitation: { url: {} } }, "io.modelcontextprotocol/clientInfo": { name: "keys", version: "1" } };
  const reply = await rawPost(new URL(`${gw.address}/mcp/ops`), JSON.stringify({ jsonrpc: "2.0", id, method: "tools/call", params: { name: "echo", arguments: { message }, _meta: meta, ...extra } }), {
    authorization: `Bearer ${token}`,
    "mcp-protocol-version": "2026-07-28",
    "mcp-method": "tools/call",
    "mcp-name": "echo",
  });
  const msg = reply.messages[0] as Msg;
  expect(msg.id).toBe(id);
  return { status: reply.status, msg };
}
const keyIdOf = (state: string) => (JSON.parse(Buffer.from(state.split(".")[0]!, "base64url").toString("utf8")) as { k: string }).k;
const approvalOf = (msg: Msg) => {
  const url = (msg.result!.inputRequests as Record<string, { params: { url: string } }>)["countersign/approval"]!.params.url;
  return decodeURIComponent(/\/console\/approvals\/([^/?#]+)$/.exec(url)![1]!);
};
const retry = (message: string, state: string) => call(message, { requestState: state, inputResponses: { "countersign/approval": { action: "accept" } } });

describe("the requestState key", () => {
  it("rotated while a call is held: the retry with the state sealed under the old key gets the decision; new states use the new key", async () => {
    const held = await call("deploy rotate");
    const state = held.msg.result!.requestState as string;
    expect(keyIdOf(state)).toBe("rs1");

    await reload({ requestState: [key("rs2"), key("rs1", "verify-only")], console: [key("c1")] });
    expect(gw.keyring.requestState.active().id).toBe("rs2");

    // Still pending under the old key's state, then decided, then forwarded once.
    const pending = await retry("deploy rotate", state);
    expect(pending.msg.result?.resultType).toBe("input_required");
    expect(keyIdOf(pending.msg.result!.requestState as string)).toBe("rs2");
    expect((await gw.approvals!.service.vote({ requestId: approvalOf(held.msg), approver: { email: "bob@example.com" }, decision: "approve", via: "cli" })).kind).toBe("decided");
    const done = await retry("deploy rotate", state);
    expect(done.msg.result).toMatchObject({ resultType: "complete", content: [{ type: "text", text: "Echo: deploy rotate" }] });

    const fresh = await call("deploy fresh");
    expect(keyIdOf(fresh.msg.result!.requestState as string)).toBe("rs2");
  });

  it("retired (revoked): a state sealed under it is refused and recorded, and the caller can ask anew", async () => {
    const held = await call("deploy revoke");
    const state = held.msg.result!.requestState as string;
    expect(keyIdOf(state)).toBe("rs2");

    await reload({ requestState: [key("rs3"), key("rs2", "retired"), key("rs1", "retired")], console: [key("c1")] });
    const refused = await retry("deploy revoke", state);
    expect(refused.status).toBe(400);
    expect(refused.msg.error).toMatchObject({ code: -32602, data: { code: "CS_ERR_REQUEST_STATE_INVALID" } });
    await expect
      .poll(async () => (await gw.db.event.findMany({ where: { type: "message_rejected", reason: "request_state_invalid", connection: "ops" } })).map((e) => JSON.stringify(e.detail)).join("\n"))
      .toContain("retired key");

    // Without the state the call is held again, under the new key.
    const again = await call("deploy revoke");
    expect(again.msg.result?.resultType).toBe("input_required");
    expect(keyIdOf(again.msg.result!.requestState as string)).toBe("rs3");
  });
});

// ── console logins ──────────────────────────────────────────────────────────────────────────
/** A browser's cookies, kept by name as the gateway sets and clears them. */
class Browser {
  readonly jar = new Map<string, string>();
  async request(path: string, form?: Record<string, string>): Promise<{ status: number; location: string | null; text: string }> {
    const res = await fetch(`${gw.address}${path}`, {
      method: form ? "POST" : "GET",
      redirect: "manual",
      headers: { cookie: [...this.jar].map(([k, v]) => `${k}=${v}`).join("; "), ...(form ? { "content-type": "application/x-www-form-urlencoded" } : {}) },
      ...(form ? { body: new URLSearchParams(form).toString() } : {}),
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair, ...attrs] = c.split(";");
      const [name, value] = [pair!.slice(0, pair!.indexOf("=")), pair!.slice(pair!.indexOf("=") + 1)];
      if (attrs.some((a) => a.trim() === "Max-Age=0") || value === "") this.jar.delete(name);
      else this.jar.set(name, value);
    }
    return { status: res.status, location: res.headers.get("location"), text: await res.text() };
  }
  async loginAs(subject: string): Promise<void> {
    const page = await this.request("/console/login");
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page.text)![1]!;
    const res = await this.request("/console/login/dev", { subject, _csrf: csrf });
    expect([res.status, this.jar.has("cs_console")]).toEqual([302, true]);
  }
  /** The id of the key that signed the login cookie. */
  get loginKeyId(): string | undefined {
    return this.jar.get("cs_console")?.split(".")[1];
  }
  async loggedIn(): Promise<boolean> {
    const res = await this.request("/console/approvals");
    return res.status === 200;
  }
}

describe("the console key", () => {
  it("rotated: logins signed before stay logged in while the old key is verify-only; retired, they are refused and recorded", async () => {
    await reload({ requestState: [key("rs3")], console: [key("c1")] });
    const active = new Browser();
    const idle = new Browser();
    await active.loginAs("alice");
    await idle.loginAs("bob");
    expect(active.loginKeyId).toBe("c1");
    expect(idle.loginKeyId).toBe("c1");
    expect(await active.loggedIn()).toBe(true);

    await reload({ requestState: [key("rs3")], console: [key("c2"), key("c1", "verify-only")] });
    // A request refreshes the cookie: now signed with the new key.
    expect(await active.loggedIn()).toBe(true);
    expect(active.loginKeyId).toBe("c2");

    await reload({ requestState: [key("rs3")], console: [key("c2"), key("c1", "retired")] });
    const since = (await gw.db.event.findFirst({ orderBy: { id: "desc" } }))?.id ?? 0n;
    expect(await active.loggedIn()).toBe(true);
    const refused = await idle.request("/console/approvals");
    expect(refused.status).toBe(302);
    expect(refused.location).toMatch(/^\/console\/login/);
    expect(idle.jar.has("cs_console")).toBe(false);
    await expect
      .poll(async () => (await gw.db.event.findMany({ where: { type: "console", reason: "login_refused", id: { gt: since } } })).map((e) => (e.detail as { why?: string }).why))
      .toContain("cookie_retired_key");
  });
});
