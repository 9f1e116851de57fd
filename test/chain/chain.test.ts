// The audit chain as an operator meets it: a gateway seals what it records and signs
// checkpoints (also into a directory), keys rotate, retention deletes old records yet the rest
// verifies, rows written around the recording path and a removed tail are found, the unsealed
// tail is told apart from tampering, and `countersign verify` exits non-zero naming the sequence.
import { execFile } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type pg from "pg";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { takeCheckpoint } from "../../gateway/audit/chain/checkpoint.js";
import { loadCheckpointKeys } from "../../gateway/audit/chain/keys.js";
import { closeChainClient, connectChainClient } from "../../gateway/store/chain/pg.js";
import { purgeExpired } from "../../gateway/store/chain/retention.js";
import { sealAll } from "../../gateway/audit/chain/sealer.js";
import { AUDITED_SOURCES } from "../../gateway/audit/chain/sources.js";
import { verifyChain } from "../../gateway/audit/chain/verify.js";
import { ConfigError, parseConfigText } from "../../gateway/config/load.js";
import { prepareRuntime } from "../../gateway/gateway.js";
import { BUILT_CLI } from "../helpers/built.js";
import { createTestDatabase, ROOT, type TestDatabase } from "../helpers/postgres.js";
import { everythingStdio, startTestGateway } from "../helpers/gateway.js";
import * as t from "./lib.js";
import { waitFor } from "./lib.js";

const run = promisify(execFile);
let db: TestDatabase;
let client: pg.Client;
let dir: string;
const key = t.newKey("k-2026");

beforeAll(async () => {
  db = await createTestDatabase();
  client = await connectChainClient(db.url);
  dir = mkdtempSync(join(tmpdir(), "cs-chain-"));
});
afterAll(async () => {
  await closeChainClient(client);
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});


async function history(n: number): Promise<void> {
  await t.resetAudit(client);
  for (let i = 0; i < n; i++) await (i % 4 === 3 ? t.insertEvent(client, { i }) : t.insertMessage(client, { i, text: `call ${i}` }));
  await sealAll(client);
}

it("every audited table has the trigger that queues its rows for the sealer", async () => {
  const res = await client.query<{ table: string }>(
    `SELECT c.relname AS table FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid JOIN pg_proc p ON p.oid = tg.tgfoid WHERE p.proname = 'audit_enqueue' ORDER BY 1`,
  );
  expect(res.rows.map((r) => r.table).sort()).toEqual([...AUDITED_SOURCES].sort());
});

it("a running gateway seals what it records, signs a checkpoint at start and writes it to the directory; the chain verifies", async () => {
  await t.resetAudit(client);
  const cpDir = join(dir, "gateway-checkpoints");
  const gw = await startTestGateway(
    db.url,
    {
      connections: [{ name: "everything", upstream: everythingStdio() }],
      audit: { sealIntervalMs: 20, checkpoint: { directory: cpDir, keys: [{ id: "k-2026", privateKey: { env: "CHECKPOINT_KEY" } }] } },
    },
    { CHECKPOINT_KEY: key.pem },
  );
  try {
    const c = new Client({ name: "chain", version: "1" });
    await c.connect(new StreamableHTTPClientTransport(gw.mcpUrl("everything")));
    await c.callTool({ name: "echo", arguments: { message: "sealed" } });
    await c.close();
    // No checkpoint existed, so one is due at once (also with no traffic at all).
    await waitFor("a checkpoint file", async () => readdirSync(cpDir).length > 0 || undefined);
    await waitFor("the records sealed", async () => Number((await client.query(`SELECT count(*) AS n FROM audit_unsealed`)).rows[0].n) === 0);
    expect(gw.auditChain.sealer.status.leader).toBe(true);
  } finally {
    await gw.stop();
  }
  // Stopping seals the last records (the gateway's own "stopped" event included).
  const r = await verifyChain(client, { keys: t.keyMap(key.verifier), checkpointsDir: cpDir });
  expect(r.problems).toEqual([]);
  expect(r.unsealed.count).toBe(0);
  expect(r.checkpoints.valid).toBeGreaterThanOrEqual(1);
  const sealed = await client.query<{ method: string | null }>(`SELECT m.method FROM audit_chain c JOIN messages m ON c.source = 'messages' AND m.id::text = c."sourceId" ORDER BY c.seq`);
  expect(sealed.rows.map((x) => x.method)).toContain("tools/call");
  const stopped = await client.query(`SELECT 1 FROM audit_chain c JOIN events e ON c.source = 'events' AND e.id::text = c."sourceId" WHERE e.type = 'gateway' AND e.reason = 'stopped'`);
  expect(stopped.rowCount).toBe(1);
}, 60_000);

it("keys rotate: checkpoints of the retired key verify while its public key stays listed, and not once it is dropped or outside its window", async () => {
  await history(6);
  const rotation = new Date("2026-06-01T00:00:00Z");
  const old = t.newKey("k-2025", { notAfter: rotation });
  const current = t.newKey("k-2026", { notBefore: rotation });
  await takeCheckpoint(client, old.signer, { now: new Date("2026-05-31T12:00:00Z") });
  await t.insertMessage(client, { after: "rotation" });
  await sealAll(client);
  await takeCheckpoint(client, current.signer, { now: new Date("2026-06-01T12:00:00Z") });
  expect((await verifyChain(client, { keys: t.keyMap(old.verifier, current.verifier) })).ok).toBe(true);

  const dropped = await verifyChain(client, { keys: t.keyMap(current.verifier) });
  expect(dropped.firstBad).toMatchObject({ seq: 6, kind: "forged_checkpoint" });
  expect(dropped.firstBad?.detail).toContain("'k-2025', which is not among the configured public keys");

  // The old key signing after its window closed is not accepted.
  await takeCheckpoint(client, old.signer, { now: new Date("2026-06-02T00:00:00Z") });
  const late = await verifyChain(client, { keys: t.keyMap(old.verifier, current.verifier) });
  expect(late.firstBad).toMatchObject({ seq: 7, kind: "forged_checkpoint" });
  expect(late.firstBad?.detail).toContain("outside the validity window of key 'k-2025'");
});

it("the unsealed tail is reported apart from tampering; rows written around the seal queue are reported as inserted", async () => {
  await history(5);
  await t.insertMessage(client, { not: "sealed yet" });
  await t.insertMessage(client, { not: "sealed yet either" });
  const tail = await verifyChain(client, { keys: new Map() });
  expect(tail.ok).toBe(true);
  expect(tail.unsealed.count).toBe(2);
  expect(tail.range).toMatchObject({ from: 1, to: 5 });

  await sealAll(client);
  // Triggers off (as a superuser can do): the row never reaches the chain.
  await client.query("SET session_replication_role = replica");
  const sneaked = await t.insertMessage(client, { written: "around the recorder" });
  await client.query("SET session_replication_role = DEFAULT");
  const r = await verifyChain(client, { keys: new Map() });
  expect(r.ok).toBe(false);
  expect(r.firstBad).toMatchObject({ seq: null, kind: "inserted" });
  expect(r.firstBad?.detail).toContain(`messages #${sneaked}`);
});

it("with copies of the checkpoints outside the database, a tail removed together with its checkpoints is found", async () => {
  await history(8);
  const cpDir = join(dir, "copies");
  await takeCheckpoint(client, key.signer, { directory: cpDir });
  await t.truncateAfter(client, 5);
  await client.query(`DELETE FROM audit_checkpoints`);
  // From the database alone this cannot be seen (and verify says checkpoints are missing).
  const inside = await verifyChain(client, { keys: t.keyMap(key.verifier) });
  expect(inside.ok).toBe(true);
  expect(inside.warnings.join("\n")).toContain("no signed checkpoints");
  const r = await verifyChain(client, { keys: t.keyMap(key.verifier), checkpointsDir: cpDir });
  expect(r.firstBad).toMatchObject({ seq: 6, kind: "truncated" });
});

it("retention deletes records up to a signed checkpoint, records the deletion in the chain, and what remains still verifies", async () => {
  await history(10);
  const old = await takeCheckpoint(client, key.signer, { now: new Date(Date.now() - 3 * 86_400_000) });
  expect(old.body.sequence).toBe(10);
  for (let i = 0; i < 4; i++) await t.insertMessage(client, { recent: i });
  await sealAll(client);
  await takeCheckpoint(client, key.signer);

  const result = await purgeExpired(client, 2);
  expect(result).toMatchObject({ throughSequence: 10, deleted: { messages: 8, events: 2 } });
  await sealAll(client);
  const deletion = await client.query<{ detail: { throughSequence: number } }>(
    `SELECT e.detail FROM events e JOIN audit_chain c ON c.source = 'events' AND c."sourceId" = e.id::text WHERE e.type = 'audit_retention'`,
  );
  expect(deletion.rows[0]?.detail.throughSequence).toBe(10);

  const r = await verifyChain(client, { keys: t.keyMap(key.verifier) });
  expect(r.problems).toEqual([]);
  expect(r.range).toMatchObject({ from: 11, to: 15 });

  // Deleting more than retention did is still found.
  const [first] = await t.entries(client);
  await t.deleteEntryAndRecord(client, first!);
  const bad = await verifyChain(client, { keys: t.keyMap(key.verifier) });
  expect(bad.firstBad).toMatchObject({ seq: 1, kind: "missing" });
});

describe("countersign verify (the command)", () => {
  const cli = (args: string[], env: Record<string, string> = {}) =>
    run(process.execPath, [BUILT_CLI, ...args], { cwd: ROOT, env: { ...process.env, DATABASE_URL: db.url, ...env } }).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );

  it("signs with `countersign checkpoint`, passes on an intact chain, and on a tampered one exits non-zero naming the sequence", async () => {
    await history(12);
    const keyFile = join(dir, "checkpoint.pem");
    writeFileSync(keyFile, key.pem, { mode: 0o600 });
    const configFile = join(dir, "countersign.yaml");
    writeFileSync(
      configFile,
      stringify({
        version: 1,
        connections: [{ name: "everything", access: { anonymous: true }, upstream: everythingStdio() }],
        audit: { checkpoint: { keys: [{ id: "k-2026", privateKey: { file: keyFile } }] } },
      }),
    );
    const signed = await cli(["checkpoint", "--config", configFile]);
    expect(signed.code).toBe(0);
    expect(signed.stdout).toMatch(/checkpoint #\d+: seq 12, head [0-9a-f]{64}/);

    const ok = await cli(["verify", "--config", configFile]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^OK: seq 1\.\.12 \(12 records/);

    const seven = (await t.entries(client))[6]!;
    await t.modifyRecord(client, seven);
    const bad = await cli(["verify", "--config", configFile]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/^FAILED at seq 7: modified: /);
    const json = await cli(["verify", "--config", configFile, "--json"]);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, firstBad: { seq: 7, kind: "modified" }, range: { from: 1, to: 6 } });
  }, 60_000);
});

describe("configuration", () => {
  const base = { version: 1, connections: [{ name: "x", access: { anonymous: true }, upstream: { type: "streamable_http", url: "http://127.0.0.1:1/mcp" } }] };
  const problems = (cfg: Record<string, unknown>, env: Record<string, string> = {}) => {
    try {
      // The keys themselves are read by the composition root's checks, as at start.
      return prepareRuntime(parseConfigText(stringify(cfg), "c.yaml", { DATABASE_URL: "postgresql://x@127.0.0.1/x", ...env }));
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    }
  };

  it("refuses checkpoints without a key, keys that are not Ed25519, and retention without checkpoints", () => {
    expect(problems({ ...base, audit: { checkpoint: { intervalMinutes: 30 } } })).toEqual([expect.stringMatching(/^audit\.checkpoint\.keys: checkpoints need a signing key/)]);
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const ec = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    expect(problems({ ...base, audit: { checkpoint: { keys: [{ id: "a", privateKey: { env: "K" } }] } } }, { K: ec })).toEqual([
      "audit.checkpoint.keys[0].privateKey: an ec key: checkpoints are signed with Ed25519",
    ]);
    expect(problems({ ...base, audit: { retentionDays: 30 } })).toEqual([expect.stringMatching(/^audit\.retentionDays: /)]);
    expect(problems({ ...base, audit: { checkpoint: { keys: [{ id: "a", privateKey: { env: "K" } }] }, retentionDays: 30 } }, { K: key.pem })).toEqual([]);
  });

  it("the quick start (embedded database, no key configured) signs with a generated key kept beside the data directory, and says so", () => {
    const dataDir = join(dir, "quickstart", "postgres");
    const cfg = parseConfigText(stringify({ ...base, database: { embeddedDataDir: dataDir } }), "c.yaml", {});
    expect(loadCheckpointKeys(cfg, false).signer).toBeUndefined(); // verify never creates one
    const first = loadCheckpointKeys(cfg, true);
    expect(first.generatedKeyFile).toBe(join(dir, "quickstart", "checkpoint-key.pem"));
    expect(statSync(first.generatedKeyFile!).mode & 0o777).toBe(0o600);
    expect(first.warning).toMatch(/anyone who can read it can forge checkpoints/);
    const again = loadCheckpointKeys(cfg, false);
    expect(again.signer?.id).toBe(first.signer?.id);
    expect([...again.verifiers.keys()]).toEqual([first.signer!.id]);
    // With an external database and no key: no checkpoints at all, and a warning that says why.
    const external = parseConfigText(stringify(base), "c.yaml", { DATABASE_URL: "postgresql://x@127.0.0.1/x" });
    const none = loadCheckpointKeys(external, true);
    expect(none.signer).toBeUndefined();
    expect(none.warning).toMatch(/no signed checkpoints are taken/);
  });
});
