// The requestState key is shared by the replicas (keys.ring.requestState from a secret, not a key
// of one process): a call held through one replica is finished through another, across a rotation
// applied by a reload on each.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { stringify } from "yaml";
import { afterAll, beforeAll, expect, it } from "vitest";
import { signDevToken } from "../../gateway/auth/dev-issuer.js";
import { loadConfigFile } from "../../gateway/config/load.js";
import { startGateway, type Gateway } from "../../gateway/gateway.js";
import { createLogger } from "../../gateway/log.js";
import { everythingStdio } from "../helpers/gateway.js";
import { DEPLOYS_NEED_ONCALL, quickApprovals } from "../helpers/held-calls.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { rawPost } from "../helpers/upstreams.js";

const PUBLIC_URL = "http://127.0.0.1:9";
let db: TestDatabase;
let a: Gateway;
let b: Gateway;
let scratch: string;
let file: string;

const key = (id: string, state?: "verify-only" | "retired") => ({ id, secret: { env: `KS_${id.toUpperCase()}` }, ...(state ? { state } : {}) });
function writeConfig(requestState: unknown[]): void {
  writeFileSync(
    file,
    stringify({
      version: 1,
      publicUrl: PUBLIC_URL,
      server: { host: "127.0.0.1", port: 0 },
      database: { url: { env: "KS_DATABASE_URL" }, migrateOnStart: false },
      auth: { devIssuer: { enabled: true, keyFile: join(scratch, "dev.jwk") } },
      keys: { ring: { requestState } },
      approvals: quickApprovals(["bob@example.com"], "2s"),
      connections: [{ name: "ops", access: { groups: ["dev"] }, upstream: everythingStdio(), policy: { rules: [DEPLOYS_NEED_ONCALL] } }],
    }),
  );
}
const quiet = () => createLogger("silent", new Writable({ write: (_c, _e, cb) => cb() }));

beforeAll(async () => {
  db = await createTestDatabase();
  scratch = mkdtempSync(join(tmpdir(), "countersign-keys-replicas-"));
  file = join(scratch, "countersign.yaml");
  for (const id of ["rs1", "rs2"]) process.env[`KS_${id.toUpperCase()}`] = `${id}-${randomBytes(24).toString("base64url")}`;
  process.env.KS_DATABASE_URL = db.url;
  writeConfig([key("rs1")]);
  a = await startGateway(loadConfigFile(file), { log: quiet(), progress: () => {} });
  b = await startGateway(loadConfigFile(file), { log: quiet(), progress: () => {} });
});
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await db?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

let nextId = 1;
type Msg = { id: number; result?: Record<string, unknown>; error?: { code: number; data: Record<string, unknown> } };
async function call(gw: Gateway, message: string, extra: Record<string, unknown> = {}): Promise<Msg> {
  const d = gw.identity.devIssuer!;
  const token = await signDevToken(d.key, d.url, { subject: "alice", email: "alice@example.com", groups: ["dev"], audience: [`${PUBLIC_URL}/mcp/ops`], ttlSeconds: 600 });
  const id = nextId++;
  const meta = { "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": { elicitation: { url: {} } }, "io.modelcontextprotocol/clientInfo": { name: "replicas", version: "1" } };
  const reply = await rawPost(new URL(`${gw.address}/mcp/ops`), JSON.stringify({ jsonrpc: "2.0", id, method: "tools/call", params: { name: "echo", arguments: { message }, _meta: meta, ...extra } }), {
    authorization: `Bearer ${token}`,
    "mcp-protocol-version": "2026-07-28",
    "mcp-method": "tools/call",
    "mcp-name": "echo",
  });
  return reply.messages[0] as Msg;
}

it("a call held through one replica is finished through the other, across a rotation reloaded on both", async () => {
  const held = await call(a, "deploy across");
  expect(held.result?.resultType).toBe("input_required");
  const state = held.result!.requestState as string;
  const url = (held.result!.inputRequests as Record<string, { params: { url: string } }>)["countersign/approval"]!.params.url;
  const approvalId = decodeURIComponent(/\/console\/approvals\/([^/?#]+)$/.exec(url)![1]!);

  // The other replica opens it: the key is the configured one, not a key of the first process.
  expect((await call(b, "deploy across", { requestState: state })).result?.resultType).toBe("input_required");

  writeConfig([key("rs2"), key("rs1", "verify-only")]);
  for (const gw of [a, b]) expect((await gw.reload({ kind: "signal" })).applied).toBe(true);
  expect((await a.approvals!.service.vote({ requestId: approvalId, approver: { email: "bob@example.com" }, decision: "approve", via: "cli" })).kind).toBe("decided");
  const done = await call(b, "deploy across", { requestState: state, inputResponses: { "countersign/approval": { action: "accept" } } });
  expect(done.result).toMatchObject({ resultType: "complete", content: [{ type: "text", text: "Echo: deploy across" }] });
});
