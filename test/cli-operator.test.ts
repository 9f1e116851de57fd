// The operator's CLI, run as built (dist/): each defect a platform engineer met, with the output
// they should have seen. A real database; the gateway, where needed, as a real process.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { stringify } from "yaml";
import { createDb, type Db } from "../gateway/store/client.js";
import { startTestGateway } from "./helpers/gateway.js";
import { createTestDatabase, ROOT, type TestDatabase } from "./helpers/postgres.js";
import { runCli } from "./helpers/cli.js";
import { loggingConnection } from "./helpers/process.js";

let db: TestDatabase;
let prisma: Db;
let dir: string;

beforeAll(async () => {
  db = await createTestDatabase();
  prisma = createDb(db.url, { poolSize: 2 });
  dir = mkdtempSync(join(tmpdir(), "cs-cli-operator-"));
});
afterAll(async () => {
  await prisma?.$disconnect();
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

function configFile(name: string, config: Record<string, unknown>): string {
  const file = join(dir, name);
  writeFileSync(file, stringify({ version: 1, database: { url: { env: "DATABASE_URL" } }, ...config }));
  return file;
}
const env = () => ({ DATABASE_URL: db.url });
const oneConnection = { connections: [{ name: "local", access: { anonymous: true }, upstream: { type: "stdio", command: process.execPath } }] };

it("config: a stdio command not on PATH is an error with its key path; no 'did not start' from a command that starts nothing", async () => {
  const file = configFile("nodee.yaml", { connections: [{ name: "typo", access: { anonymous: true }, upstream: { type: "stdio", command: "nodee" } }] });
  const r = await runCli(["config", "--config", file], env());
  expect(r.code).toBe(2);
  expect(r.stderr).toContain("connections[0].upstream.command: 'nodee' (connection typo): not found on PATH");
  expect(r.stderr).not.toContain("did not start");
  const bad = configFile("bad.yaml", { connections: [{ name: "x", upstream: { type: "streamable_http", url: "not a url" } }] });
  const r2 = await runCli(["config", "--config", bad], env());
  expect(r2.code).toBe(2);
  expect(r2.stderr).toContain("Fix the configuration and try again.");
  expect(r2.stderr).not.toContain("did not start");
});

it("config: warns when a production-like configuration has no checkpoint keys, no masking key and no shared requestState or console key", async () => {
  const prod = { server: { host: "0.0.0.0", port: 8080 }, publicUrl: "https://mcp.example.com", metrics: { token: { env: "METRICS_TOKEN" } }, auth: { issuers: [{ issuer: "https://idp.example.com", audience: "https://mcp.example.com" }] }, ...oneConnection };
  const r = await runCli(["config", "--config", configFile("prod.yaml", prod)], { ...env(), METRICS_TOKEN: "metrics-token-for-the-test" });
  expect(r.code).toBe(0);
  expect(r.stdout).toContain("valid, with 4 warning(s)");
  expect(r.stderr).toContain("warning: audit.checkpoint.keys: none");
  expect(r.stderr).toContain("warning: keys.maskingHmac: none");
  expect(r.stderr).toContain("warning: keys.ring.requestState: none");
  expect(r.stderr).toContain("warning: keys.ring.console: none");
  const local = await runCli(["config", "--config", configFile("local.yaml", oneConnection)], env());
  expect(local.code).toBe(0);
  expect(local.stderr).not.toContain("warning");
});

it("sessions --limit abc is a usage error, not silently 50", async () => {
  const r = await runCli(["sessions", "--limit", "abc", "--config", configFile("s.yaml", oneConnection)], env());
  expect(r.code).toBe(2);
  expect(r.stderr).toContain("--limit: 'abc' is not a whole number");
});

it("replay shows who the caller was, interleaves events with messages by time, and prints long summaries whole when piped", async () => {
  const instance = await prisma.instance.create({ data: { id: `cli-op-${process.pid}`, host: "h", pid: 1, version: "t" } });
  const id = `sess-${Date.now()}`;
  await prisma.session.create({
    data: { id, connection: "local", frontTransport: "streamable_http", upstreamKind: "stdio", ownerInstanceId: instance.id, subject: "u-42", issuer: "https://idp.example.com", email: "dana@example.com", name: "Dana", groups: ["dev"] },
  });
  const t = (s: number) => new Date(Date.UTC(2026, 11, 1, 10, 0, s));
  const long = `${"x".repeat(150)}-END-OF-LONG-ARGUMENT`;
  await prisma.message.create({ data: { sessionId: id, connection: "local", direction: "in", origin: "client", kind: "request", jsonrpcId: "1", method: "tools/call", size: 10, payload: { jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "echo", arguments: { message: long } } }, at: t(1) } });
  await prisma.event.create({ data: { sessionId: id, connection: "local", type: "policy", reason: "denied", detail: { rule: "no-echo" }, at: t(2) } });
  await prisma.message.create({ data: { sessionId: id, connection: "local", direction: "out", origin: "gateway", kind: "error", jsonrpcId: "1", method: "tools/call", size: 10, payload: { jsonrpc: "2.0", id: 1, error: { code: -32001, message: "denied" } }, at: t(3) } });
  const file = configFile("r.yaml", oneConnection);

  const text = await runCli(["replay", id, "--config", file], env());
  expect(text.code).toBe(0);
  expect(text.stdout).toContain("caller dana@example.com (Dana)  subject u-42  issuer https://idp.example.com  groups dev");
  expect(text.stdout).toContain("-END-OF-LONG-ARGUMENT"); // not cut at ~60 characters
  const order = ["client → server", "event  policy/denied", "client ← server"].map((s) => text.stdout.indexOf(s));
  expect(order.every((i) => i > 0)).toBe(true);
  expect([...order].sort((a, b) => a - b)).toEqual(order);

  const json = JSON.parse((await runCli(["replay", id, "--json", "--config", file], env())).stdout);
  expect(json.session.caller).toMatchObject({ subject: "u-42", email: "dana@example.com", groups: ["dev"] });
  expect(json.timeline.map((e: { entry: string }) => e.entry)).toEqual(["message", "event", "message"]);
});

it("/readyz reports Slack as not_configured when approvals have no Slack", async () => {
  const gw = await startTestGateway(db.url, {
    approvals: { groups: { oncall: { emails: ["bob@example.com"] } }, holdFor: "5s" },
    connections: [loggingConnection("local", join(dir, "ready.jsonl"))],
  });
  try {
    const body = (await (await fetch(`${gw.address}/readyz`)).json()) as { approvals: { slack: unknown } };
    expect(body.approvals.slack).toEqual({ status: "not_configured" });
  } finally {
    await gw.stop();
  }
});

it("reload calls the running gateway (not the port just written in the file), needs none of its secrets here, and the refusal is recorded", async () => {
  const home = mkdtempSync(join(dir, "reload-"));
  const keyFile = join(home, "dev.jwk");
  const base = {
    version: 1,
    server: { host: "127.0.0.1", port: 0 },
    database: { url: { env: "DATABASE_URL" }, embeddedDataDir: join(home, "postgres") },
    auth: { devIssuer: { enabled: true, keyFile } },
    admin: { groups: ["ops"] },
    // A secret the gateway has and the CLI's environment lacks (as Slack's tokens would be).
    keys: { maskingHmac: { env: "GATEWAY_ONLY_SECRET" } },
    connections: [loggingConnection("local", join(home, "u.jsonl"))],
  };
  const file = join(home, "countersign.yaml");
  writeFileSync(file, stringify(base));
  const child = spawn(process.execPath, [join(ROOT, "dist/gateway/cli.js"), "start", "--config", file], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: db.url, GATEWAY_ONLY_SECRET: "k".repeat(40), COUNTERSIGN_DATA_DIR: "", PORT: "" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise((r) => child.once("exit", r));
  try {
    await expect.poll(() => out, { timeout: 40_000 }).toContain("Countersign ready at ");
    expect(readFileSync(file, "utf8")).toContain("port: 0");
    const token = (await runCli(["token", "--admin", "--sub", "op", "--groups", "ops", "--config", file], { DATABASE_URL: db.url, GATEWAY_ONLY_SECRET: "k".repeat(40) })).stdout.trim();
    expect(token.split(".")).toHaveLength(3);
    writeFileSync(file, stringify({ ...base, server: { host: "127.0.0.1", port: 1 } })); // a restart-only change
    const r = await runCli(["reload", "--config", file, "--token", token], { DATABASE_URL: db.url }); // no GATEWAY_ONLY_SECRET here
    expect(r.stderr).not.toContain("cannot reach");
    expect(r.stdout).toContain("refused (recorded as config_changed/refused)");
    expect(r.stdout).toContain("server: read only at start; restart to apply");
    expect(r.code).toBe(1);
    await expect.poll(() => prisma.event.count({ where: { type: "config_changed", reason: "refused" } })).toBeGreaterThan(0);
  } finally {
    child.kill("SIGTERM");
    await exited;
  }
}, 90_000);

it("approvals --database --as: YOU MAY DECIDE says yes to an approver of the group, and approve says the caller must retry once its hold ended", async () => {
  const file = configFile("a.yaml", { approvals: { groups: { oncall: { emails: ["bob@example.com"] } }, holdFor: "5s" }, ...oneConnection });
  const id = `apr-${Date.now()}`;
  await prisma.approvalRequest.create({
    data: {
      id, connection: "local", tool: "deploy", argumentsHash: "h", maskedArguments: {}, requesterSubject: "alice", requesterIssuer: "https://idp.example.com", requesterKind: "user",
      requesterEmail: "alice@example.com", approverGroup: "oncall", createdAt: new Date(Date.now() - 60_000), expiresAt: new Date(Date.now() + 600_000),
    },
  });
  const list = await runCli(["approvals", "list", "--database", "--as", "bob@example.com", "--config", file], env());
  expect(list.code).toBe(0);
  const row = list.stdout.split("\n").find((l) => l.startsWith(id))!;
  expect(row.trim().endsWith("yes")).toBe(true);
  const asRequester = await runCli(["approvals", "list", "--database", "--as", "alice@example.com", "--config", file], env());
  expect(asRequester.stdout.split("\n").find((l) => l.startsWith(id))!.trim().endsWith("no")).toBe(true);

  const approved = await runCli(["approvals", "approve", id, "--database", "--as", "bob@example.com", "--config", file], env());
  expect(approved.code).toBe(0);
  expect(approved.stdout).toContain(`${id}: approved by bob@example.com`);
  expect(approved.stdout).toContain('already answered "approval pending": the same call, made again, goes through once');
  expect(approved.stdout).not.toContain("the held call goes on");
});
