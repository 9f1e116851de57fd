// Every key of the configuration file, taken from the schema itself (a key added tomorrow is in
// this list tomorrow), is changed on a running gateway by a reload. A live key must be applied
// and in force when the reload answers (a new approver can vote, a new log level logs, /readyz
// lists a new connection); a key read only at start must be refused, naming it, "restart to
// apply", recorded as config_changed/refused, with nothing applied. A reload that mixes both
// is refused whole.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { signDevToken } from "../../gateway/auth/dev-issuer.js";
import { resourceUrl } from "../../gateway/auth/authenticator.js";
import { loadConfigFile, parseConfigText, type GatewayConfig } from "../../gateway/config/load.js";
import { RELOAD_CLASSES, reloadClassOf } from "../../gateway/config/reload-keys.js";
import { configSchema } from "../../gateway/config/schema.js";
import { startGateway, type Gateway } from "../../gateway/gateway.js";
import { createLogger } from "../../gateway/log.js";
import { startFakeSlack, type FakeSlack } from "../helpers/fake-slack.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { loggingServerStdio } from "../helpers/process.js";

// ── the keys, from the schema ───────────────────────────────────────────────────────────────
type Def = { type: string; shape?: Record<string, unknown>; innerType?: unknown; in?: unknown; element?: unknown; options?: unknown[]; discriminator?: string; entries?: Record<string, string>; values?: unknown[] };
const def = (s: unknown): Def => (s as { _zod: { def: Def } })._zod.def;
function unwrap(s: unknown): unknown {
  for (let d = def(s); ["optional", "default", "prefault", "nullable", "pipe", "readonly"].includes(d.type); d = def(s)) s = d.type === "pipe" ? d.in : d.innerType;
  return s;
}
/** Leaf keys: objects are descended (and the connections list, and the upstream's kinds); the rest is one key. */
function schemaKeys(s: unknown, path = "", out = new Map<string, unknown>()): Map<string, unknown> {
  const u = unwrap(s);
  const d = def(u);
  if (d.type === "object") for (const [k, v] of Object.entries(d.shape!)) schemaKeys(v, path ? `${path}.${k}` : k, out);
  else if (d.type === "array" && path === "connections") schemaKeys(d.element, `${path}[]`, out);
  else if (d.type === "union" && d.discriminator) for (const o of d.options!) schemaKeys(o, path, out);
  else if (!out.has(path)) out.set(path, u);
  return out;
}
const KEYS = schemaKeys(configSchema);

// ── the configuration every key is changed from: every optional block present ──────────────
let db: TestDatabase;
let slack: FakeSlack;
let scratch: string;
let file: string;
let gw: Gateway;
const logLines: string[] = [];
const pem = (kind: "ed25519" | "public") => {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return kind === "public" ? publicKey.export({ type: "spki", format: "pem" }).toString() : privateKey.export({ type: "pkcs8", format: "pem" }).toString();
};
const ISSUER = "http://127.0.0.1:9/issuer";
const RETIRED_PUBLIC_KEY = pem("public");

function baseConfig(): Record<string, unknown> {
  return {
    version: 1,
    publicUrl: "http://127.0.0.1:9",
    server: { host: "127.0.0.1", port: 0, trustProxy: false, allowedHosts: ["mcp.internal.example"], allowedOrigins: ["https://tools.example.com"] },
    database: { url: { env: "EK_DATABASE_URL" }, migrateOnStart: false, embeddedDataDir: join(scratch, "pg"), commitTimeoutMs: 5000, hotPoolSize: 4, backgroundPoolSize: 10 },
    limits: { requestBodyBytes: 4194304, upstreamMessageBytes: 16777216, upstreamTimeoutMs: 600000, notificationsPerSecond: 1000, requestHeadersTimeoutMs: 10000, requestTimeoutMs: 30000, unauthenticatedRequests: 256, clientBufferBytes: 33554432 },
    sessions: { idleTimeoutSeconds: 1800, evictIdleAfterSeconds: 60 },
    admin: { groups: ["ops"] },
    metrics: { enabled: true, token: { env: "EK_METRICS_TOKEN" }, port: 0 },
    log: { level: "info", format: "json", requests: true },
    auth: {
      issuers: [{ issuer: ISSUER, jwksUri: `${ISSUER}/jwks` }],
      clockSkewSeconds: 30,
      jwksCooldownSeconds: 30,
      devIssuer: { enabled: true, keyFile: join(scratch, "dev.jwk") },
      failedAttemptsPerMinute: 30,
    },
    keys: {
      upstreamJwt: { env: "EK_UPSTREAM_JWT" },
      maskingHmac: { env: "EK_MASKING_HMAC" },
      ring: { requestState: [{ id: "requestState-1", secret: { env: "EK_SECRET" } }], console: [{ id: "console-1", secret: { env: "EK_SECRET" } }], relay: [{ id: "relay-1", secret: { env: "EK_SECRET" } }], masking: [{ id: "masking-1", secret: { env: "EK_SECRET" } }], upstreamJwt: [{ id: "jwt-1", secret: { env: "EK_UPSTREAM_JWT" } }] },
    },
    cluster: { internalPort: 0, internalHost: "127.0.0.1", advertiseUrl: "http://127.0.0.1:9", secret: { env: "EK_SECRET" }, deadAfterSeconds: 20 },
    approvals: {
      groups: { oncall: { emails: ["bob@example.com"], slackUserGroups: [], channel: "CONCALL" }, security: { emails: ["sec@example.com"] }, managers: { emails: ["max@example.com"] } },
      holdFor: "0s",
      reminderEvery: "1h",
      escalation: { after: "1h", group: "security" },
      sweepIntervalMs: 200,
      pollIntervalMs: 200,
      listen: true,
      argumentsKey: { env: "EK_SECRET" },
      slack: {
        mode: "http", botToken: { env: "EK_SLACK_BOT" }, signingSecret: { env: "EK_SECRET" }, appToken: { env: "EK_SLACK_APP" },
        channel: "CAPPROVALS", securityChannel: "CSECURITY", apiUrl: slack.apiUrl, teamId: "T0FAKE", appId: "A0FAKE",
        users: { U0BOB: "bob@example.com" }, postAttempts: 2,
      },
    },
    connections: [
      {
        name: "tools",
        description: "the logging server",
        upstream: { ...loggingServerStdio(join(scratch, "received.log")), cwd: scratch, shared: false },
        maxSessions: 16,
        maxSessionsPerIdentity: 12,
        idleTimeoutSeconds: 600,
        access: { anonymous: false, groups: ["dev"], tools: [{ groups: ["dev"], deny: ["forbidden*"] }] },
        masking: {
          enabled: true, personalData: "pseudonym", disable: ["ip_address"], ip: { enabled: true, v6: true },
          fields: [{ path: "$..password" }], patterns: [{ id: "order", pattern: "ORDER-[0-9]+" }], exemptions: [{ groups: ["auditors"], types: ["email"] }],
        },
        policy: {
          defaultAction: "allow",
          shadow: false,
          rules: [{ id: "hold-deploys", description: "deploys wait for on-call", tools: ["echo"], when: { path: "$.arguments.message", matches: "^deploy" }, action: "require_approval", approval: { group: "oncall" } }],
        },
        pinning: { enabled: true, onChange: "hold", approvalGroup: "oncall", approvalTimeout: "15m" },
      },
      {
        name: "remote",
        upstream: { type: "streamable_http", url: "http://127.0.0.1:9/mcp", headers: { Authorization: { env: "EK_SECRET" } } },
        protocol: "auto",
        access: { anonymous: true },
        upstreamIdentity: {
          headers: { subject: "X-Subject", email: "X-Email", groups: "X-Groups", issuer: "X-Issuer" },
          jwt: { header: "X-Countersign-Identity", audience: "remote", ttlSeconds: 300 },
        },
        policy: { defaultAction: "require_approval", defaultApproval: { group: "oncall", approvals: 1, timeout: "15m", justificationRequired: false, confirm: false } },
      },
      {
        name: "sealed",
        upstream: { type: "sse", url: "https://127.0.0.1:9/sse", tls: { ca: { env: "EK_PEM" }, cert: { env: "EK_PEM" }, key: { env: "EK_PEM" }, rejectUnauthorized: true } },
        access: { anonymous: true },
        policy: { defaultAction: "block", defaultMessage: "closed for now" },
      },
    ],
    audit: {
      sealIntervalMs: 200,
      checkpoint: {
        intervalMinutes: 60,
        directory: join(scratch, "checkpoints"),
        keys: [{ id: "k1", privateKey: { env: "EK_CHECKPOINT_KEY" }, notBefore: "2026-01-01T00:00:00Z", notAfter: "2036-01-01T00:00:00Z" }],
        publicKeys: [{ id: "k0", publicKey: RETIRED_PUBLIC_KEY }],
      },
      retentionDays: 3650,
    },
    digest: { enabled: false, schedule: "0 9 * * 1", timeZone: "UTC", slackChannel: "CDIGEST", checkIntervalMs: 60000 },
    console: {
      enabled: true, auditorGroups: ["auditors"], idleTimeoutMinutes: 30, absoluteTimeoutHours: 12, sessionKey: { env: "EK_SECRET" },
      login: [{ issuer: ISSUER, label: "Corp", clientId: "countersign", clientSecret: { env: "EK_SECRET" }, scopes: ["openid", "email"] }],
      devUsers: [{ subject: "alice", email: "alice@example.com", groups: ["dev"] }],
    },
    oauth: {
      enabled: false, accessTokenTtl: "10m", refreshTokenTtl: "12h", refreshReuseGraceSeconds: 10, codeTtlSeconds: 60, signingKey: { env: "EK_SECRET" },
      maxCodes: 10000, maxRefreshTokens: 100000,
      registration: { enabled: true, perMinutePerAddress: 10, maxClients: 1000, unusedClientDays: 30 },
      clientMetadataDocuments: { allowedHosts: ["vscode.dev"], maxBytes: 5120, timeoutMs: 3000, allowPrivateAddresses: false, ca: { env: "EK_PEM" } },
    },
  };
}

// ── how each key is changed ─────────────────────────────────────────────────────────────────
type Raw = Record<string, unknown>;
/** Keys whose new value cannot be derived from their type; `at` picks the connection when it matters. */
const SAMPLES: Record<string, { value: unknown; connection?: number }> = {
  "log.level": { value: "debug" },
  "server.trustProxy": { value: ["10.0.0.0/8"] },
  "database.url": { value: { env: "EK_DATABASE_URL_2" } },
  "database.embeddedDataDir": { value: "elsewhere/pg" },
  "admin.groups": { value: ["ops", "sre"] },
  "metrics.token": { value: { env: "EK_SECRET" } },
  "auth.issuers": { value: [{ issuer: ISSUER, jwksUri: `${ISSUER}/jwks` }, { issuer: "http://127.0.0.1:9/ci" }] },
  "keys.upstreamJwt": { value: { env: "EK_UPSTREAM_JWT_2" } },
  "keys.maskingHmac": { value: { env: "EK_SECRET" } },
  "keys.ring.upstreamJwt": { value: [{ id: "jwt-2", secret: { env: "EK_UPSTREAM_JWT_2" } }, { id: "jwt-1", secret: { env: "EK_UPSTREAM_JWT" }, state: "verify-only" }] },
  ...Object.fromEntries(["requestState", "console", "relay", "masking"].map((p) => [`keys.ring.${p}`, { value: [{ id: `${p}-2`, secret: { env: "EK_SECRET_2" } }, { id: `${p}-1`, secret: { env: "EK_SECRET" }, state: "verify-only" }] }])),
  "cluster.secret": { value: { env: "EK_SECRET_2" } },
  "approvals.groups": { value: { oncall: { emails: ["bob@example.com", "carol@example.com"], slackUserGroups: [], channel: "CONCALL" }, security: { emails: ["sec@example.com"] }, managers: { emails: ["max@example.com"] } } },
  "approvals.holdFor": { value: "10m" },
  "approvals.reminderEvery": { value: "1s" },
  "approvals.escalation.after": { value: "1s" },
  "approvals.escalation.group": { value: "managers" },
  "approvals.argumentsKey": { value: { env: "EK_SECRET_2" } },
  "approvals.slack.botToken": { value: { env: "EK_SECRET_2" } },
  "approvals.slack.signingSecret": { value: { env: "EK_SECRET_2" } },
  "approvals.slack.appToken": { value: { env: "EK_SECRET_2" } },
  "approvals.slack.users": { value: { U0BOB: "bob@example.com", U0CAROL: "carol@example.com" } },
  "connections[].name": { value: "tools2" },
  "connections[].upstream.type": { value: "sse", connection: 1 },
  "connections[].upstream.args": { value: ["--version"] },
  "connections[].upstream.cwd": { value: tmpdir() },
  "connections[].upstream.env": { value: { MCP_MESSAGE_LOG: "/dev/null" } },
  "connections[].upstream.headers": { value: { Authorization: { env: "EK_SECRET_2" } } },
  "connections[].protocol": { value: "2026-07-28", connection: 1 },
  "connections[].upstream.tls.ca": { value: { env: "EK_SECRET" } },
  "connections[].upstream.tls.cert": { value: { env: "EK_SECRET" } },
  "connections[].upstream.tls.key": { value: { env: "EK_SECRET" } },
  "connections[].access.groups": { value: ["qa"] },
  "connections[].access.tools": { value: [{ groups: ["dev"], deny: ["slow"] }] },
  "connections[].masking.disable": { value: [] },
  "connections[].masking.fields": { value: [{ path: "$..secret" }] },
  "connections[].masking.patterns": { value: [{ id: "order", pattern: "ORDER-[0-9]+" }, { id: "ticket", pattern: "TICKET-[0-9]+" }] },
  "connections[].masking.exemptions": { value: [] },
  "connections[].policy.defaultAction": { value: "block" },
  "connections[].policy.defaultApproval.group": { value: "security" },
  "connections[].policy.defaultApproval.timeout": { value: "30m" },
  "connections[].policy.rules": { value: [{ id: "no-slow", description: "slow is off limits", tools: ["slow"], action: "block", message: "use echo" }] },
  "connections[].pinning.approvalGroup": { value: "security" },
  "connections[].pinning.approvalTimeout": { value: "30m" },
  "audit.checkpoint.keys": { value: [{ id: "k2", privateKey: { env: "EK_CHECKPOINT_KEY" } }] },
  "audit.checkpoint.publicKeys": { value: [] },
  "digest.schedule": { value: "0 10 * * 1" },
  "digest.timeZone": { value: "Europe/Paris" },
  "console.auditorGroups": { value: ["auditors", "risk"] },
  "console.sessionKey": { value: { env: "EK_SECRET_2" } },
  "console.login": { value: [] },
  "console.devUsers": { value: [] },
  "server.allowedHosts": { value: ["mcp.internal.example", "gateway.internal.example"] },
  "server.allowedOrigins": { value: ["https://tools.example.com", "https://ide.example.com"] },
  "oauth.accessTokenTtl": { value: "5m" },
  "oauth.refreshTokenTtl": { value: "6h" },
  "oauth.signingKey": { value: { env: "EK_SECRET_2" } },
  "oauth.clientMetadataDocuments.allowedHosts": { value: ["vscode.dev", "*.example.com"] },
  "oauth.clientMetadataDocuments.ca": { value: { env: "EK_SECRET" } },
};

/** Which connection of the base file a `connections[].x` key is changed in: the first that sets it. */
function connectionIndex(key: string): number {
  if (SAMPLES[key]?.connection !== undefined) return SAMPLES[key].connection;
  const base = baseConfig();
  const i = (base.connections as Raw[]).findIndex((_c, n) => getAt(base, key.replace("connections[]", `connections[${n}]`)) !== undefined);
  return Math.max(i, 0);
}
/** The concrete path of a schema key in the base file: `connections[].x` → `connections[n].x`. */
function concretePath(key: string): string {
  return key.startsWith("connections[]") ? key.replace("connections[]", `connections[${connectionIndex(key)}]`) : key;
}
function segments(path: string): Array<string | number> {
  return path.split(/\.|(?=\[)/).map((s) => (s.startsWith("[") ? Number(s.slice(1, -1)) : s));
}
function getAt(raw: unknown, path: string): unknown {
  return segments(path).reduce<unknown>((node, seg) => (node as Record<string | number, unknown> | undefined)?.[seg], raw);
}
function setAt(raw: Raw, path: string, value: unknown): void {
  const segs = segments(path);
  const parent = segs.slice(0, -1).reduce<unknown>((node, seg) => (node as Record<string | number, unknown>)[seg], raw) as Record<string | number, unknown>;
  parent[segs.at(-1)!] = value;
}

/** A different value that the schema accepts: from SAMPLES, else derived from the key's type. */
function changedValue(key: string, current: unknown): unknown {
  if (SAMPLES[key]) return SAMPLES[key].value;
  const d = def(KEYS.get(key));
  if (d.type === "boolean") return !current;
  if (d.type === "enum") return Object.values(d.entries!).find((v) => v !== current);
  if (d.type === "number") return (current as number) + 1;
  if (d.type === "string" && typeof current === "string") {
    if (!/^https?:\/\//.test(current)) return `${current}x`;
    const url = new URL(current);
    url.hostname = "127.0.0.2";
    return url.toString();
  }
  if (d.type === "literal") return 2;
  throw new Error(`${key}: no way to change it; add a sample to SAMPLES`);
}

/** Changes that need a second key to be seen at all. */
const TOGETHER: Record<string, (raw: Raw) => void> = {
  // The group is seen when a request escalates: escalate after 1s too.
  "approvals.escalation.group": (raw) => setAt(raw, "approvals.escalation.after", "1s"),
};

function mutated(key: string): Raw {
  const raw = baseConfig();
  const path = concretePath(key);
  const current = getAt(raw, path);
  if (current === undefined) throw new Error(`${key}: the base configuration does not set it (${path}); add it so the key is exercised`);
  setAt(raw, path, changedValue(key, current));
  TOGETHER[key]?.(raw);
  return raw;
}

const writeRaw = (raw: Raw) => writeFileSync(file, stringify(raw));

// ── how "in force" is observed ──────────────────────────────────────────────────────────────
async function token(groups: string[], audience: string, subject = "dev-user", email?: string): Promise<string> {
  const d = gw.identity.devIssuer!;
  return signDevToken(d.key, d.url, { subject, groups, audience: [audience], ttlSeconds: 600, ...(email ? { email } : {}) });
}
async function connect(connection = "tools", groups: string[] | null = ["dev"]) {
  const c = new Client({ name: "every-key", version: "1" });
  const headers: Record<string, string> = groups ? { authorization: `Bearer ${await token(groups, resourceUrl(gw.config.publicUrl, connection))}` } : {};
  await c.connect(new StreamableHTTPClientTransport(new URL(`${gw.address}/mcp/${connection}`), { requestInit: { headers } }));
  return c;
}
const textOf = (r: unknown) => JSON.stringify(r);
/** Holds a call (holdFor 0s answers "pending" at once) and returns its approval request. */
async function heldRequest(marker: string) {
  const c = await connect();
  const pending = c.callTool({ name: "echo", arguments: { message: `deploy ${marker}` } });
  // A check that closes the client before the answer arrives does not care how the call ended.
  pending.catch(() => {});
  const request = await vi.waitFor(async () => {
    const found = (await gw.approvals!.service.store.list({ status: "pending", limit: 200 })).find((r) => JSON.stringify(r.maskedArguments).includes(marker));
    if (!found) throw new Error(`no pending request for ${marker} yet`);
    return found;
  }, { timeout: 20_000, interval: 50 });
  return { c, pending, request };
}
const approvalEvents = (reason: string, requestId: string) =>
  gw.db.event.findMany({ where: { type: "approval", reason } }).then((rows) => rows.filter((r) => (r.detail as { requestId?: string } | null)?.requestId === requestId));
const readyz = async () => (await (await fetch(`${gw.address}/readyz`)).json()) as { upstreams: Array<{ connection?: string; name?: string }>; sessionLimits: Record<string, { limit: number }> };
const metricsText = async () => (await fetch(`${gw.address}/metrics`, { headers: { authorization: `Bearer ${process.env.EK_METRICS_TOKEN}` } })).text();
const registryConfig = () => (gw.sessions as unknown as { config: GatewayConfig }).config;

/** Behaviour that shows a live key is in force; keys under connections[] without one are checked through the connection the data path reads. */
const IN_FORCE: Record<string, () => Promise<void>> = {
  "keys.ring.upstreamJwt": async () => {
    expect(gw.identity.signer!.kid).toBe("jwt-2");
    const jwks = (await (await fetch(`${gw.address}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string }> };
    expect(jwks.keys.map((k) => k.kid)).toEqual(["jwt-2", "jwt-1"]);
  },
  // A rotation: the new key signs, the old one still verifies (test/keys/rotation.test.ts shows it on the wire).
  ...Object.fromEntries((["requestState", "console", "relay", "masking"] as const).map((p) => [`keys.ring.${p}`, async () => {
    expect(gw.keyring[p].active().id).toBe(`${p}-2`);
    expect(gw.keyring[p].lookup(`${p}-1`).ok).toBe(true);
  }])),
  "approvals.groups": async () => {
    const { c, request } = await heldRequest("groups");
    const vote = await gw.approvals!.service.vote({ requestId: request.id, approver: { email: "carol@example.com" }, decision: "deny", reason: "in force", via: "break_glass" });
    expect(vote.kind).toBe("decided");
    await c.close();
  },
  "approvals.holdFor": async () => {
    // 10m: the call waits for the decision instead of answering "pending" at once.
    const { c, pending, request } = await heldRequest("holdfor");
    let settled = false;
    void pending.finally(() => (settled = true));
    expect(settled).toBe(false);
    expect((await gw.approvals!.service.vote({ requestId: request.id, approver: { email: "bob@example.com" }, decision: "approve", via: "break_glass" })).kind).toBe("decided");
    expect(textOf(await pending)).toContain("Echo: deploy holdfor");
    await c.close();
  },
  "approvals.reminderEvery": async () => {
    const { c, request } = await heldRequest("reminder");
    await expect.poll(() => approvalEvents("reminder", request.id).then((e) => e.length), { timeout: 20_000 }).toBeGreaterThan(0);
    await c.close();
  },
  "approvals.escalation.after": async () => {
    const { c, request } = await heldRequest("escalation-after");
    await expect.poll(() => approvalEvents("escalated", request.id).then((e) => e.length), { timeout: 20_000 }).toBeGreaterThan(0);
    await c.close();
  },
  "approvals.escalation.group": async () => {
    const { c, request } = await heldRequest("escalation-group");
    await expect.poll(() => approvalEvents("escalated", request.id).then((e) => e.map((x) => (x.detail as { group?: string }).group)), { timeout: 20_000 }).toEqual(["managers"]);
    await c.close();
  },
  "log.level": async () => {
    logLines.length = 0;
    await fetch(`${gw.address}/healthz`);
    expect(logLines.some((l) => l.includes('"msg":"request"') && l.includes("/healthz"))).toBe(true);
  },
  "admin.groups": async () => {
    const res = await fetch(`${gw.address}/admin/reload`, { method: "POST", headers: { authorization: `Bearer ${await token(["sre"], `${gw.config.publicUrl}/admin`)}` } });
    expect(res.status).toBe(200);
  },
  "limits.upstreamMessageBytes": async () => {
    expect(registryConfig().limits.upstreamMessageBytes).toBe(16777217);
  },
  "limits.upstreamTimeoutMs": async () => {
    expect(registryConfig().limits.upstreamTimeoutMs).toBe(600001);
  },
  "limits.notificationsPerSecond": async () => {
    expect(registryConfig().limits.notificationsPerSecond).toBe(1001);
  },
  "limits.clientBufferBytes": async () => {
    expect(registryConfig().limits.clientBufferBytes).toBe(33554433);
    expect(gw.sessions.clientBufferBytes).toBe(33554433);
  },
  "sessions.evictIdleAfterSeconds": async () => {
    expect(registryConfig().sessions.evictIdleAfterSeconds).toBe(61);
  },
  "log.requests": async () => {
    expect(registryConfig().log.requests).toBe(false);
  },
  "sessions.idleTimeoutSeconds": async () => {
    // "remote" has no idle timeout of its own: it takes the sessions default.
    expect(gw.sessions.connection("remote")!.idleTimeoutSeconds).toBe(1801);
  },
  "connections[].name": async () => {
    const ready = await readyz();
    expect(Object.keys(ready.sessionLimits)).toEqual(["tools2", "remote", "sealed"]);
    expect(JSON.stringify(ready.upstreams)).toContain("tools2");
    const c = await connect("tools2");
    expect(await metricsText()).toContain('connection="tools2"');
    await c.close();
  },
  "connections[].maxSessions": async () => {
    expect((await readyz()).sessionLimits.tools!.limit).toBe(17);
  },
  "connections[].access.anonymous": async () => {
    const c = await connect("tools", null);
    expect(textOf(await c.callTool({ name: "echo", arguments: { message: "anonymous" } }))).toContain("Echo: anonymous");
    await c.close();
  },
  "connections[].access.groups": async () => {
    await expect(connect("tools", ["dev"])).rejects.toThrow();
  },
  "connections[].access.tools": async () => {
    const c = await connect();
    await expect(c.callTool({ name: "slow", arguments: { ms: 1 } })).rejects.toThrow(/'slow' is not allowed/);
    await c.close();
  },
  "connections[].masking.patterns": async () => {
    const c = await connect();
    const text = textOf(await c.callTool({ name: "echo", arguments: { message: "see TICKET-12345" } }));
    expect(text).not.toContain("TICKET-12345");
    expect(text).toContain("MASKED:ticket");
    await c.close();
  },
  "connections[].masking.enabled": async () => {
    const c = await connect();
    expect(textOf(await c.callTool({ name: "echo", arguments: { message: "see ORDER-777" } }))).toContain("ORDER-777");
    await c.close();
  },
  "connections[].policy.rules": async () => {
    const c = await connect();
    const r = await c.callTool({ name: "slow", arguments: { ms: 1 } });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toContain("no-slow");
    await c.close();
  },
  "connections[].policy.defaultAction": async () => {
    const c = await connect();
    const r = await c.callTool({ name: "slow", arguments: { ms: 1 } });
    expect(r.isError).toBe(true);
    await c.close();
  },
};

/** The connection as the registry hands it to sessions (and open sessions read it through `session.connection`). */
function connectionInForce(key: string): void {
  const index = connectionIndex(key);
  // The loaded connection holds durations in milliseconds.
  const sub = key.slice("connections[].".length).replace(/^pinning\.approvalTimeout$/, "pinning.approvalTimeoutMs");
  const wanted = gw.currentConfig().connections[index]!;
  const seen = gw.sessions.connection(wanted.name);
  expect(seen, `connection ${wanted.name} in the registry`).toBeDefined();
  expect(getAt(seen, sub)).toEqual(getAt(wanted, sub));
  expect(getAt(wanted, sub)).not.toEqual(getAt(parseConfigText(stringify(baseConfig()), "base", process.env).connections[index], sub));
}

// ── the run ─────────────────────────────────────────────────────────────────────────────────
beforeAll(async () => {
  db = await createTestDatabase();
  slack = await startFakeSlack({ botToken: "xoxb-every-key", appToken: "xapp-every-key" });
  scratch = mkdtempSync(join(tmpdir(), "countersign-every-key-"));
  file = join(scratch, "countersign.yaml");
  const secret = randomBytes(24).toString("base64");
  Object.assign(process.env, {
    EK_DATABASE_URL: db.url, EK_DATABASE_URL_2: db.url, EK_METRICS_TOKEN: `metrics-${secret}`, EK_SECRET: `s1-${secret}`, EK_SECRET_2: `s2-${secret}`,
    EK_UPSTREAM_JWT: pem("ed25519"), EK_UPSTREAM_JWT_2: pem("ed25519"), EK_MASKING_HMAC: `hmac-${secret}`, EK_CHECKPOINT_KEY: pem("ed25519"), EK_PEM: pem("public"),
    EK_SLACK_BOT: "xoxb-every-key", EK_SLACK_APP: "xapp-every-key",
  });
  writeRaw(baseConfig());
  const sink = new Writable({ write: (chunk: Buffer, _e, cb) => { logLines.push(...chunk.toString().split("\n").filter(Boolean)); if (logLines.length > 2000) logLines.splice(0, 1000); cb(); } });
  gw = await startGateway(loadConfigFile(file), { log: createLogger("info", sink), progress: () => {} });
});
afterAll(async () => {
  await gw?.stop();
  await slack?.close();
  await db?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe("every key of the configuration, changed by a reload", () => {
  it("the schema's keys are all exercised here, and each has a class", () => {
    expect(KEYS.size).toBeGreaterThan(100);
    for (const key of KEYS.keys()) {
      expect(() => mutated(key), key).not.toThrow();
      if (key !== "version") expect(() => parseConfigText(stringify(mutated(key)), key, process.env), `${key}: the changed file must be valid`).not.toThrow();
      const { mode } = reloadClassOf(key);
      if (mode === "live" && !key.startsWith("connections[].")) expect(IN_FORCE[key], `${key} is live: add how it is seen in force to IN_FORCE`).toBeDefined();
    }
    // Every class names a key of the schema (no stale entries).
    for (const c of RELOAD_CLASSES) expect([...KEYS.keys()].some((k) => k === c.key || k.startsWith(`${c.key}.`) || k.startsWith(`${c.key}[`)), c.key).toBe(true);
  });

  for (const key of KEYS.keys()) {
    const { mode, key: classKey } = reloadClassOf(key);
    const expected = key === "version" ? "rejected (one valid value)" : mode === "live" ? "applied and in force" : "refused: restart to apply";
    it(`${key}: ${expected}`, async () => {
      const before = gw.currentConfig().hash;
      writeRaw(mutated(key));
      const result = await gw.reload({ kind: "signal", subject: `every-key ${key}` });
      try {
        if (key === "version") {
          expect(result.applied).toBe(false);
          expect(result.problems.join("\n")).toMatch(/^version: /m);
        } else if (mode === "restart") {
          expect(result.applied, JSON.stringify(result.problems)).toBe(false);
          expect(result.restartRequired).toEqual([classKey]);
          expect(result.problems).toEqual([`${classKey}: read only at start; restart to apply (nothing was applied)`]);
          expect(gw.currentConfig().hash).toBe(before);
          // Recorded as refused (the event is written behind the answer).
          const refusedEvent = () => gw.db.event.findMany({ where: { type: "config_changed", reason: "refused", subject: `every-key ${key}` } }).then((rows) => rows[0]?.detail);
          await expect.poll(refusedEvent).toMatchObject({ restartRequired: [classKey], hash: result.hash });
        } else {
          expect(result.problems).toEqual([]);
          expect(result.applied).toBe(true);
          expect(result.changes.length).toBeGreaterThan(0);
          await (IN_FORCE[key] ?? (async () => connectionInForce(key)))();
        }
      } finally {
        writeRaw(baseConfig());
        const back = await gw.reload({ kind: "signal", subject: "every-key: back to the base" });
        expect(back.applied, JSON.stringify(back.problems)).toBe(true);
      }
    });
  }

  it("a reload mixing a live change and a restart-only one is refused whole: the live part is not in force either", async () => {
    const raw = baseConfig();
    setAt(raw, "admin.groups", ["ops", "sre"]);
    setAt(raw, "server.port", 1);
    writeRaw(raw);
    const result = await gw.reload({ kind: "signal" });
    expect(result.applied).toBe(false);
    expect(result.restartRequired).toEqual(["server"]);
    const res = await fetch(`${gw.address}/admin/reload`, { method: "POST", headers: { authorization: `Bearer ${await token(["sre"], `${gw.config.publicUrl}/admin`)}` } });
    expect(res.status).toBe(403);
    writeRaw(baseConfig());
  });
});
