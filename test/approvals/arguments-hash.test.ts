// The stored hash of a held call's arguments is keyed (HMAC-SHA256): someone who reads the
// database cannot confirm a guessed secret argument by hashing it. The identical retry still finds
// its request, and the key comes from approvals.argumentsKey, keys.maskingHmac, or (quick start) a
// generated file beside the other generated keys.
import { createHash, createHmac } from "node:crypto";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { canonicalize } from "json-canonicalize";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { loadArgumentsKey } from "../../gateway/approvals/arguments-key.js";
import { parseConfigText } from "../../gateway/config/load.js";
import { startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { loggingServerStdio, forwardedCalls } from "../helpers/process.js";

const KEY = "a shared secret of every replica, 32+ bytes long......";
let db: TestDatabase;
let gw: TestGateway;
let scratch: string;
let upstreamLog: string;

beforeAll(async () => {
  db = await createTestDatabase();
  scratch = mkdtempSync(join(tmpdir(), "cs-args-hash-"));
  upstreamLog = join(scratch, "received.log");
  gw = await startTestGateway(
    db.url,
    {
      approvals: { groups: { oncall: { emails: ["bob@example.com"] } }, holdFor: "0s", argumentsKey: { env: "ARGS_KEY" }, sweepIntervalMs: 200, pollIntervalMs: 200 },
      connections: [
        {
          name: "ops",
          upstream: loggingServerStdio(upstreamLog),
          policy: { rules: [{ id: "held", description: "Everything waits", tools: ["echo"], action: "require_approval", approval: { group: "oncall", timeout: "10m" } }] },
        },
      ],
    },
    { ARGS_KEY: KEY },
  );
}, 60_000);
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

const forwarded = (marker: string) => forwardedCalls(upstreamLog, marker);

describe("the arguments hash", () => {
  it("is an HMAC under the configured key, not a plain SHA-256, and the identical retry still matches", async () => {
    const client = new Client({ name: "hash-test", version: "1" });
    await client.connect(new StreamableHTTPClientTransport(gw.mcpUrl("ops")));
    const args = { message: "password=hunter2", level: 1 };
    const first = await client.callTool({ name: "echo", arguments: args });
    expect(JSON.stringify(first.content)).toContain("approval pending");

    const rows = await gw.db.approvalRequest.findMany({ where: { connection: "ops" } });
    expect(rows).toHaveLength(1);
    const stored = rows[0]!.argumentsHash;
    const text = canonicalize(args);
    expect(stored).toMatch(/^[0-9a-f]{64}$/);
    expect(stored).not.toBe(createHash("sha256").update(text).digest("hex"));
    expect(stored).toBe(createHmac("sha256", KEY).update(text).digest("hex"));

    // The same call with its keys in another order is the identical retry: no second request.
    const retry = await client.callTool({ name: "echo", arguments: { level: 1, message: "password=hunter2" } });
    expect(JSON.stringify(retry.content)).toContain(rows[0]!.id);
    expect(await gw.db.approvalRequest.count({ where: { connection: "ops" } })).toBe(1);

    expect((await gw.approvals!.service.vote({ requestId: rows[0]!.id, approver: { email: "bob@example.com" }, decision: "approve", via: "break_glass" })).kind).toBe("decided");
    const released = await client.callTool({ name: "echo", arguments: { level: 1, message: "password=hunter2" } });
    // The real result (masked on its way back, as every response is).
    expect(released.content).toEqual([{ type: "text", text: "Echo: password=[MASKED:secret_assignment]" }]);
    expect(forwarded("hunter2")).toBe(1);
    await client.close();
  }, 60_000);

  it("takes its key from approvals.argumentsKey, else keys.maskingHmac (a sub-key), else a generated quick-start file", () => {
    const base = { version: 1, connections: [{ name: "c", upstream: { type: "stdio", command: "node" }, access: { anonymous: true } }] };
    const groups = { oncall: { emails: ["bob@example.com"] } };
    const load = (extra: Record<string, unknown>, env: Record<string, string> = {}) => loadArgumentsKey(parseConfigText(stringify({ ...base, ...extra }), "t.yaml", env));

    const explicit = load({ approvals: { groups, argumentsKey: { env: "K" } }, keys: { maskingHmac: { env: "M" } } }, { K: "explicit-key", M: "masking" });
    expect(explicit).toMatchObject({ source: "approvals.argumentsKey" });
    expect(explicit.key!.toString()).toBe("explicit-key");

    const fromMasking = load({ approvals: { groups }, keys: { maskingHmac: { env: "M" } } }, { M: "masking" });
    expect(fromMasking.source).toBe("keys.maskingHmac");
    expect(fromMasking.key!.equals(Buffer.from("masking"))).toBe(false);
    // Every replica with the same masking key derives the same sub-key.
    expect(load({ approvals: { groups }, keys: { maskingHmac: { env: "M" } } }, { M: "masking" }).key!.equals(fromMasking.key!)).toBe(true);

    const dataDir = join(scratch, "qs", "postgres");
    const generated = load({ approvals: { groups }, database: { embeddedDataDir: dataDir } });
    expect(generated.source).toBe("generated");
    expect(generated.file).toBe(join(scratch, "qs", "approvals-arguments.key"));
    expect(statSync(generated.file!).mode & 0o777).toBe(0o600);
    // Kept: the next start reads the same key.
    expect(load({ approvals: { groups }, database: { embeddedDataDir: dataDir } }).key!.equals(generated.key!)).toBe(true);

    const none = load({ approvals: { groups }, database: { url: { env: "DB" } } }, { DB: "postgresql://x@localhost/x" });
    expect(none).toMatchObject({ source: "none" });
    expect(none.warning).toContain("approvals.argumentsKey");
  });
});
