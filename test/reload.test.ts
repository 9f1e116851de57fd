// Reloading the configuration: validated first (a bad file keeps the old rules and says why),
// applied live (open sessions follow new policy), restart-only keys refused, each applied change
// recorded once across replicas, and the admin API only for members of admin.groups.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signDevToken } from "../gateway/auth/dev-issuer.js";
import { loadConfigFile } from "../gateway/config/load.js";
import { startGateway, type Gateway } from "../gateway/gateway.js";
import { createLogger, type Logger } from "../gateway/log.js";
import { sqlParserLoaded } from "../gateway/policy/index.js";
import { createTestDatabase, type TestDatabase } from "./helpers/postgres.js";
import { loggingServerStdio } from "./helpers/process.js";
import { Writable } from "node:stream";

let db: TestDatabase;
let scratch: string;
let file: string;
const gateways: Gateway[] = [];
const quiet = () => createLogger("silent", new Writable({ write: (_c, _e, cb) => cb() }));

const BLOCK_SLOW = { id: "no-slow", description: "slow is off limits", tools: ["slow"], action: "block", message: "use echo instead" };

function writeConfig(opts: { rules?: unknown[]; port?: number; extraConnection?: boolean; extraEnv?: Record<string, string>; raw?: string; top?: Record<string, unknown> } = {}): void {
  if (opts.raw !== undefined) return writeFileSync(file, opts.raw);
  const connections: unknown[] = [
    { name: "tools", access: { anonymous: true }, upstream: loggingServerStdio(join(scratch, "received.log")), policy: { rules: opts.rules ?? [] } },
  ];
  if (opts.extraConnection) {
    const upstream = loggingServerStdio(join(scratch, "extra.log"));
    connections.push({ name: "extra", access: { anonymous: true }, upstream: { ...upstream, env: { ...upstream.env, ...opts.extraEnv } } });
  }
  writeFileSync(
    file,
    stringify({
      version: 1,
      server: { host: "127.0.0.1", port: opts.port ?? 0 },
      database: { url: { env: "RELOAD_TEST_DATABASE_URL" }, migrateOnStart: false },
      auth: { devIssuer: { enabled: true, keyFile: join(scratch, "dev.jwk") } },
      admin: { groups: ["ops"] },
      connections,
      ...opts.top,
    }),
  );
}

async function start(): Promise<Gateway> {
  const gw = await startGateway(loadConfigFile(file), { log: quiet(), progress: () => {} });
  gateways.push(gw);
  return gw;
}

async function connect(gw: Gateway, connection = "tools") {
  const c = new Client({ name: "reload-test", version: "1" });
  await c.connect(new StreamableHTTPClientTransport(new URL(`${gw.address}/mcp/${connection}`)));
  return c;
}

const appliedEvents = () => db && gateways[0]!.db.event.findMany({ where: { type: "config_changed", reason: "applied" }, orderBy: { id: "asc" } });

beforeAll(async () => {
  db = await createTestDatabase();
  process.env.RELOAD_TEST_DATABASE_URL = db.url;
  scratch = mkdtempSync(join(tmpdir(), "countersign-reload-"));
  file = join(scratch, "countersign.yaml");
  writeConfig({ extraConnection: true });
});
afterAll(async () => {
  for (const gw of gateways) await gw.stop();
  await db?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe("configuration reload", () => {
  it("records the configuration in force once, however many replicas start with it", async () => {
    await start();
    await start();
    const events = await appliedEvents();
    expect(events).toHaveLength(1);
    expect(events[0]!.detail).toMatchObject({ hash: gateways[0]!.config.hash, previousHash: null, by: { kind: "startup" } });
  });

  it("applies a new rule to sessions already open, and records the change once across replicas", async () => {
    const [a, b] = gateways as [Gateway, Gateway];
    const client = await connect(a);
    expect((await client.callTool({ name: "slow", arguments: { ms: 1 } })).isError).toBeFalsy();

    writeConfig({ rules: [BLOCK_SLOW], extraConnection: true });
    const [ra, rb] = await Promise.all([a.reload({ kind: "signal" }), b.reload({ kind: "signal" })]);
    expect(ra.applied && rb.applied).toBe(true);
    expect(ra.changes).toEqual([{ path: "connections[0].policy.rules[0]", before: null, after: BLOCK_SLOW }]);

    const blocked = await client.callTool({ name: "slow", arguments: { ms: 1 } });
    expect(blocked.isError).toBe(true);
    expect((blocked.content as Array<{ text: string }>)[0]!.text).toContain("no-slow");
    await client.close();

    const events = await appliedEvents();
    expect(events).toHaveLength(2);
    expect(events[1]!.detail).toMatchObject({ previousHash: events[0]!.detail && (events[0]!.detail as { hash: string }).hash, by: { kind: "signal" } });
  });

  it("never records or returns a credential typed inline in the file, only that it changed", async () => {
    const [a, b] = gateways as [Gateway, Gateway];
    const inline = `inline-${Date.now()}-hunter2`;
    writeConfig({ rules: [BLOCK_SLOW], extraConnection: true, extraEnv: { API_TOKEN: inline } });
    const [ra] = await Promise.all([a.reload({ kind: "signal" }), b.reload({ kind: "signal" })]);
    expect(ra.applied).toBe(true);
    expect(ra.changes).toEqual([{ path: "connections[1].upstream.env.API_TOKEN", before: null, after: "[redacted]" }]);
    const events = await appliedEvents();
    expect(events).toHaveLength(3);
    expect(JSON.stringify(events[2]!.detail)).toContain("connections[1].upstream.env.API_TOKEN");
    expect(JSON.stringify(events.map((e) => e.detail))).not.toContain(inline);
    writeConfig({ rules: [BLOCK_SLOW], extraConnection: true });
    await Promise.all([a.reload({ kind: "signal" }), b.reload({ kind: "signal" })]);
  });

  it("loads PostgreSQL's SQL parser only once a rule classifies SQL, before that rule applies", async () => {
    const [a, b] = gateways as [Gateway, Gateway];
    expect(sqlParserLoaded()).toBe(false); // no rule so far needs it
    // Writes (and unparseable text) are blocked; a SELECT passes only if it is really parsed.
    const NO_SQL_WRITES = { id: "no-sql-writes", description: "echo takes reads only", tools: ["echo"], when: { sql: { path: "$.arguments.message", readOnly: false } }, action: "block" };
    writeConfig({ rules: [BLOCK_SLOW, NO_SQL_WRITES], extraConnection: true });
    const [ra] = await Promise.all([a.reload({ kind: "signal" }), b.reload({ kind: "signal" })]);
    expect(ra.applied).toBe(true);
    expect(sqlParserLoaded()).toBe(true);
    const client = await connect(a);
    expect((await client.callTool({ name: "echo", arguments: { message: "SELECT id FROM orders" } })).isError).toBeFalsy();
    const write = await client.callTool({ name: "echo", arguments: { message: "DELETE FROM orders" } });
    expect(write.isError).toBe(true);
    expect((write.content as Array<{ text: string }>)[0]!.text).toContain("no-sql-writes");
    await client.close();
    writeConfig({ rules: [BLOCK_SLOW], extraConnection: true });
    await Promise.all([a.reload({ kind: "signal" }), b.reload({ kind: "signal" })]);
  });

  it("refuses a bad file, says why, and keeps the rules that were in force", async () => {
    const gw = gateways[0]!;
    writeConfig({ raw: "version: 1\nconnections:\n  - name: tools\n    upstream: { type: stdio }\n" });
    const result = await gw.reload({ kind: "signal" });
    expect(result.applied).toBe(false);
    expect(result.problems.join("\n")).toMatch(/connections\[0\]\.upstream\.command/);

    const client = await connect(gw);
    expect((await client.callTool({ name: "slow", arguments: { ms: 1 } })).isError).toBe(true);
    await client.close();
    const rejected = await gw.db.event.findMany({ where: { type: "config_changed", reason: "rejected" } });
    expect(rejected.length).toBeGreaterThanOrEqual(1);
  });

  it("refuses a change that needs a restart, applying nothing", async () => {
    const gw = gateways[0]!;
    writeConfig({ rules: [], port: 1, extraConnection: true });
    const result = await gw.reload({ kind: "signal" });
    expect(result.applied).toBe(false);
    expect(result.problems).toEqual([expect.stringMatching(/^server: .*restart/)]);
    const client = await connect(gw);
    expect((await client.callTool({ name: "slow", arguments: { ms: 1 } })).isError).toBe(true);
    await client.close();
  });

  it("judges a block added whole by the keys in it, except one whose presence is read at start", async () => {
    const gw = gateways[0]!;
    const base = { rules: [BLOCK_SLOW], extraConnection: true };
    // No `log` block so far: one with only the (live) level is applied, and in force.
    writeConfig({ ...base, top: { log: { level: "debug" } } });
    const level = await gw.reload({ kind: "signal" });
    expect(level).toMatchObject({ applied: true, restartRequired: [] });
    expect((gw.app.log as unknown as Logger).isLevelEnabled("debug")).toBe(true);
    writeConfig({ ...base, top: { log: { level: "debug", format: "pretty" } } });
    expect(await gw.reload({ kind: "signal" })).toMatchObject({ applied: false, restartRequired: ["log.format"] });
    // The approvals block starts a service: adding it, even with only live keys in it, needs a restart.
    writeConfig({ ...base, top: { log: { level: "debug" }, approvals: { groups: { oncall: { emails: ["bob@example.com"] } } } } });
    expect(await gw.reload({ kind: "signal" })).toMatchObject({ applied: false, restartRequired: ["approvals"] });
    writeConfig(base);
    expect(await gw.reload({ kind: "signal" })).toMatchObject({ applied: true });
    expect((gw.app.log as unknown as Logger).isLevelEnabled("debug")).toBe(false);
  });

  it("closes the sessions of a connection the new file removes", async () => {
    const gw = gateways[0]!;
    const client = await connect(gw, "extra");
    const sessionId = gw.sessions.all().find((s) => s.connection.name === "extra")!.id;
    writeConfig({ rules: [BLOCK_SLOW] });
    const result = await gw.reload({ kind: "signal" });
    expect(result.removedConnections).toEqual(["extra"]);
    await expect(client.callTool({ name: "echo", arguments: { message: "x" } })).rejects.toThrow();
    const row = await gw.db.session.findUnique({ where: { id: sessionId } });
    expect(row?.closeReason).toBe("connection_removed");
    await client.close().catch(() => {});
  });

  it("lets only members of admin.groups reload through the admin API", async () => {
    const gw = gateways[0]!;
    const d = gw.identity.devIssuer!;
    const token = (groups: string[]) =>
      signDevToken(d.key, d.url, { subject: `u-${groups.join("")}`, groups, audience: [`${gw.config.publicUrl}/admin`], ttlSeconds: 300 });
    const post = async (auth?: string) =>
      fetch(`${gw.address}/admin/reload`, { method: "POST", headers: auth ? { authorization: `Bearer ${auth}` } : {} });

    const none = await post();
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toContain("Bearer");
    const outsider = await post(await token(["dev"]));
    expect(outsider.status).toBe(403);
    const admin = await post(await token(["ops"]));
    expect(admin.status).toBe(200);
    expect(await admin.json()).toMatchObject({ applied: true });
  });
});
