// Loads the configuration: finds the file, parses YAML, validates it against the schema, applies
// environment overrides (environment > file > defaults) and resolves secret references.
// Every problem is reported with the key path that is wrong; the gateway refuses to start.
import { createHash, type KeyObject } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { hostname } from "node:os";
import { resolve } from "node:path";
import { parseDocument } from "yaml";
import type { z } from "zod";
import { PACKAGE_ROOT, QUICKSTART_CONFIG } from "../paths.js";
import { configSchema, type ParsedApprovals, type ParsedConfig, type SecretRef } from "./schema.js";
import { parseDuration } from "../policy/schema.js";
import { Secret, type ConfigValue } from "./secret.js";
import { parseEd25519PrivateKey, parseEd25519PublicKey } from "../audit/chain/key-pem.js";
import { createMasker, type Masker } from "../masking/index.js";
import type { PinningConfig } from "../pinning/decide.js";
import { consoleConfig, type ConsoleConfig } from "../console/config.js";
import { oauthConfig, type OAuthConfig } from "../oauth/config.js";

export class ConfigError extends Error {
  constructor(readonly source: string, readonly problems: string[]) {
    super(`Invalid configuration in ${source}:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

export interface TlsConfig {
  ca?: Secret;
  cert?: Secret;
  key?: Secret;
  rejectUnauthorized: boolean;
}

export type UpstreamConfig =
  | { type: "stdio"; command: string; args: string[]; cwd?: string; env: Record<string, ConfigValue>; shared: boolean }
  | { type: "streamable_http" | "sse"; url: string; headers: Record<string, ConfigValue>; tls?: TlsConfig };

export interface ConnectionConfig {
  name: string;
  description?: string;
  upstream: UpstreamConfig;
  maxSessions: number;
  /** Sessions one identity may hold (anonymous: one address); at most maxSessions. */
  maxSessionsPerIdentity: number;
  idleTimeoutSeconds: number;
  access: ParsedConfig["connections"][number]["access"];
  masking: ParsedConfig["connections"][number]["masking"];
  policy: ParsedConfig["connections"][number]["policy"];
  /** Tool pinning (gateway/pinning). */
  pinning: PinningConfig;
  /** Built at load, so a bad pattern or path stops start-up; undefined when masking is off. */
  masker?: Masker | undefined;
  upstreamIdentity?: ParsedConfig["connections"][number]["upstreamIdentity"];
}

export interface ApproverGroupConfig {
  emails: string[];
  slackUserGroups: string[];
  channel?: string | undefined;
}

export interface SlackConfig {
  mode: "http" | "socket";
  botToken: Secret;
  signingSecret?: Secret | undefined;
  appToken?: Secret | undefined;
  channel: string;
  /** Security alerts (tool definition changed, chain verification failed); default: channel. */
  securityChannel?: string | undefined;
  apiUrl: string;
  teamId?: string | undefined;
  appId?: string | undefined;
  /** Slack user id → e-mail. */
  users: Record<string, string>;
  postAttempts: number;
}

export interface ApprovalsConfig {
  groups: Record<string, ApproverGroupConfig>;
  holdForMs: number;
  reminderEveryMs?: number | undefined;
  escalation?: { afterMs: number; group: string } | undefined;
  sweepIntervalMs: number;
  pollIntervalMs: number;
  /** false: decisions from other replicas arrive by polling alone. */
  listen: boolean;
  slack?: SlackConfig | undefined;
  /** Keys the stored arguments hash (gateway/approvals/arguments-key.ts). */
  argumentsKey?: Secret | undefined;
}

/** The audit chain's settings (gateway/audit/chain); keys parsed at load so a bad key stops start-up. */
export interface AuditConfig {
  sealIntervalMs: number;
  checkpoint?: {
    intervalMinutes: number;
    directory?: string | undefined;
    keys: Array<{ id: string; privateKey: KeyObject; notBefore?: Date | undefined; notAfter?: Date | undefined }>;
    publicKeys: Array<{ id: string; publicKey: KeyObject; notBefore?: Date | undefined; notAfter?: Date | undefined }>;
  } | undefined;
  retentionDays?: number | undefined;
}

export interface ClusterConfig {
  internalPort: number;
  internalHost: string;
  /** How peers reach this replica's internal listener. */
  advertiseUrl: string;
  secret?: Secret | undefined;
  deadAfterSeconds: number;
}

export interface GatewayConfig {
  /** The file the configuration came from. */
  source: string;
  /** SHA-256 of the file's bytes: identifies a configuration across replicas. */
  hash: string;
  /** The file as parsed (secret references, not values): what a reload diffs. */
  raw: unknown;
  /** True when the bundled quick-start configuration is in use. */
  quickstart: boolean;
  version: number;
  publicUrl: string;
  server: { host: string; port: number; trustProxy: boolean | string[] };
  database: { url?: Secret; migrateOnStart: boolean; embeddedDataDir: string; commitTimeoutMs: number };
  limits: ParsedConfig["limits"];
  sessions: ParsedConfig["sessions"];
  log: ParsedConfig["log"];
  metrics: { enabled: boolean; token?: Secret | undefined };
  admin: ParsedConfig["admin"];
  auth: ParsedConfig["auth"];
  keys: { upstreamJwt?: Secret; maskingHmac?: Secret };
  /** Several replicas: the internal relay listener (gateway/cluster); internalPort 0 = off. */
  cluster: ClusterConfig;
  audit: AuditConfig;
  /** The weekly evidence digest (gateway/evidence). */
  digest: ParsedConfig["digest"];
  /** Absent when the file has no `approvals` block. */
  approvals?: ApprovalsConfig | undefined;
  connections: ConnectionConfig[];
  /** The web console (gateway/console). */
  console: ConsoleConfig;
  /** The gateway as its connections' OAuth authorization server (gateway/oauth). */
  oauth: OAuthConfig;
}

/** Which file to read: --config, then COUNTERSIGN_CONFIG, then ./countersign.yaml, then the quick start. */
export function findConfigFile(explicit: string | undefined, env: Env = process.env, cwd = process.cwd()): string {
  if (explicit) return resolve(cwd, explicit);
  if (env.COUNTERSIGN_CONFIG) return resolve(cwd, env.COUNTERSIGN_CONFIG);
  const local = resolve(cwd, "countersign.yaml");
  return existsSync(local) ? local : QUICKSTART_CONFIG;
}

export function loadConfigFile(file: string, env: Env = process.env): GatewayConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(file, [`cannot read the file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`]);
  }
  const cfg = parseConfigText(text, file, env);
  if (cfg.quickstart) {
    // The bundled file names its server relative to the package, wherever the gateway runs from.
    for (const c of cfg.connections) if (c.upstream.type === "stdio" && !c.upstream.cwd) c.upstream.cwd = PACKAGE_ROOT;
  }
  return cfg;
}

export function parseConfigText(text: string, source: string, env: Env = process.env): GatewayConfig {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(source, doc.errors.map((e) => `YAML: ${e.message.split("\n")[0]}`));
  }
  const raw: unknown = doc.toJS();
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError(source, ["the file must hold a mapping with at least `version` and `connections`"]);
  }
  const withEnv = applyEnvironment(raw as Record<string, unknown>, env);
  const parsed = configSchema.safeParse(withEnv);
  if (!parsed.success) {
    // A bad value that came from the environment names its variable: the file may not have the key at all.
    const envOf = (issue: z.core.$ZodIssue) =>
      ENV_OVERRIDES.find((o) => env[o.env] !== undefined && env[o.env] !== "" && o.path.join(".") === issue.path.join("."))?.env;
    throw new ConfigError(source, parsed.error.issues.map((i) => formatIssue(i) + (envOf(i) ? ` (from the environment variable ${envOf(i)})` : "")));
  }

  const problems: string[] = [];
  const secret = (ref: SecretRef, path: string): Secret | undefined => {
    try {
      return resolveSecret(ref, env);
    } catch (err) {
      problems.push(`${path}: ${(err as Error).message}`);
      return undefined;
    }
  };
  const value = (v: string | SecretRef, path: string): ConfigValue => (typeof v === "string" ? v : (secret(v, path) ?? ""));
  const values = (rec: Record<string, string | SecretRef>, path: string) =>
    Object.fromEntries(Object.entries(rec).map(([k, v]) => [k, value(v, `${path}.${k}`)]));

  const p = parsed.data;
  const envDbUrl = env.DATABASE_URL ? new Secret(env.DATABASE_URL, "env DATABASE_URL") : undefined;
  const connections: ConnectionConfig[] = p.connections.map((c, i) => {
    const base = `connections[${i}].upstream`;
    const u = c.upstream;
    const upstream: UpstreamConfig =
      u.type === "stdio"
        ? { type: "stdio", command: u.command, args: u.args, ...(u.cwd ? { cwd: u.cwd } : {}), env: values(u.env, `${base}.env`), shared: u.shared }
        : {
            type: u.type,
            url: u.url,
            headers: values(u.headers, `${base}.headers`),
            ...(u.tls
              ? {
                  tls: {
                    rejectUnauthorized: u.tls.rejectUnauthorized,
                    ...(u.tls.ca ? { ca: secret(u.tls.ca, `${base}.tls.ca`) } : {}),
                    ...(u.tls.cert ? { cert: secret(u.tls.cert, `${base}.tls.cert`) } : {}),
                    ...(u.tls.key ? { key: secret(u.tls.key, `${base}.tls.key`) } : {}),
                  } as TlsConfig,
                }
              : {}),
          };
    return {
      name: c.name,
      ...(c.description ? { description: c.description } : {}),
      upstream,
      maxSessions: c.maxSessions,
      maxSessionsPerIdentity: Math.min(c.maxSessions, c.maxSessionsPerIdentity ?? Math.max(1, Math.ceil(c.maxSessions / 2))),
      idleTimeoutSeconds: c.idleTimeoutSeconds ?? p.sessions.idleTimeoutSeconds,
      access: c.access,
      masking: c.masking,
      policy: c.policy,
      pinning: { enabled: c.pinning.enabled, onChange: c.pinning.onChange, approvalTimeoutMs: parseDuration(c.pinning.approvalTimeout), ...(c.pinning.approvalGroup ? { approvalGroup: c.pinning.approvalGroup } : {}) },
      ...(c.upstreamIdentity ? { upstreamIdentity: c.upstreamIdentity } : {}),
    };
  });
  const dbUrl = envDbUrl ?? (p.database.url ? secret(p.database.url, "database.url") : undefined);
  const upstreamJwtKey = p.keys.upstreamJwt ? secret(p.keys.upstreamJwt, "keys.upstreamJwt") : undefined;
  const maskingKey = p.keys.maskingHmac ? secret(p.keys.maskingHmac, "keys.maskingHmac") : undefined;
  const metricsToken = p.metrics.token ? secret(p.metrics.token, "metrics.token") : undefined;
  // /metrics names connections, rules and traffic: off the loopback interface it needs its token.
  if (p.metrics.enabled && !p.metrics.token && !isLoopbackHost(p.server.host)) {
    problems.push(`metrics.token: /metrics is served on ${p.server.host}, which is not a loopback address: set metrics.token ({ env | file }) so scrapes need \`Authorization: Bearer <token>\`, or metrics.enabled: false`);
  }
  const clusterSecret = clusterSecretOf(p, env, secret, problems);
  connections.forEach((c, i) => {
    if (!c.masking.enabled) return;
    try {
      c.masker = createMasker({
        disable: c.masking.disable,
        personalData: c.masking.personalData,
        ip: c.masking.ip,
        fields: c.masking.fields.map((f) => (f.type ? { path: f.path, type: f.type } : { path: f.path })),
        customPatterns: c.masking.patterns.map((x) => ({ id: x.id, pattern: x.pattern, ...(x.flags ? { flags: x.flags } : {}), ...(x.group !== undefined ? { group: x.group } : {}) })),
        ...(maskingKey ? { tokenKey: maskingKey.reveal() } : {}),
      });
    } catch (err) {
      problems.push(`connections[${i}].masking: ${(err as Error).message}`);
    }
  });
  const approvals = p.approvals ? approvalsConfig(p.approvals, secret) : undefined;
  const audit = auditConfig(p.audit, secret, problems, Boolean(dbUrl));
  const consoleSettings = consoleConfig(p, secret, problems);
  const oauthSettings = oauthConfig(p, secret, problems);
  if (problems.length > 0) throw new ConfigError(source, problems);

  return {
    source,
    hash: createHash("sha256").update(text).digest("hex"),
    raw,
    quickstart: resolve(source) === QUICKSTART_CONFIG,
    version: p.version,
    publicUrl: (p.publicUrl ?? `http://${p.server.host.includes(":") ? `[${p.server.host}]` : p.server.host}:${p.server.port}`).replace(/\/+$/, ""),
    server: p.server,
    database: {
      ...(dbUrl ? { url: dbUrl } : {}),
      migrateOnStart: p.database.migrateOnStart,
      embeddedDataDir: resolve(p.database.embeddedDataDir),
      commitTimeoutMs: p.database.commitTimeoutMs,
    },
    limits: p.limits,
    sessions: p.sessions,
    log: p.log,
    metrics: { enabled: p.metrics.enabled, ...(metricsToken ? { token: metricsToken } : {}) },
    admin: p.admin,
    auth: p.auth,
    keys: { ...(upstreamJwtKey ? { upstreamJwt: upstreamJwtKey } : {}), ...(maskingKey ? { maskingHmac: maskingKey } : {}) },
    cluster: clusterConfig(p, clusterSecret, env),
    audit,
    digest: p.digest,
    ...(approvals ? { approvals } : {}),
    connections,
    console: consoleSettings,
    oauth: oauthSettings,
  };
}

/** The relay's shared secret: cluster.secret, or COUNTERSIGN_CLUSTER_SECRET when the relay listener is on. */
function clusterSecretOf(p: ParsedConfig, env: Env, secret: (ref: SecretRef, path: string) => Secret | undefined, problems: string[]): Secret | undefined {
  const { internalPort, secret: ref } = p.cluster;
  if (!ref && internalPort === 0) return undefined;
  if (!ref && !env.COUNTERSIGN_CLUSTER_SECRET) {
    problems.push("cluster.secret: the relay listener (cluster.internalPort) needs a secret shared by all replicas: set COUNTERSIGN_CLUSTER_SECRET (at least 32 random characters, the same Secret for every replica, e.g. openssl rand -base64 32) or cluster.secret: { env | file }");
    return undefined;
  }
  const value = secret(ref ?? { env: "COUNTERSIGN_CLUSTER_SECRET" }, "cluster.secret");
  if (value && value.reveal().length < 32) problems.push("cluster.secret: too short: use at least 32 random characters (e.g. openssl rand -base64 32)");
  return value;
}

function clusterConfig(p: ParsedConfig, secret: Secret | undefined, env: Env): ClusterConfig {
  const c = p.cluster;
  const internalHost = c.internalHost ?? p.server.host;
  // Peers need a routable address: the pod's IP (Kubernetes downward API), else the bound address, else the host name.
  const wildcard = internalHost === "0.0.0.0" || internalHost === "::";
  const host = env.POD_IP || (wildcard ? hostname() : internalHost);
  const advertiseUrl = (c.advertiseUrl ?? `http://${host.includes(":") ? `[${host}]` : host}:${c.internalPort}`).replace(/\/+$/, "");
  return { internalPort: c.internalPort, internalHost, advertiseUrl, ...(secret ? { secret } : {}), deadAfterSeconds: c.deadAfterSeconds };
}

function approvalsConfig(a: ParsedApprovals, secret: (ref: SecretRef, path: string) => Secret | undefined): ApprovalsConfig {
  const s = a.slack;
  const slack: SlackConfig | undefined = s
    ? {
        mode: s.mode,
        botToken: secret(s.botToken, "approvals.slack.botToken") ?? new Secret("", "missing"),
        ...(s.signingSecret ? { signingSecret: secret(s.signingSecret, "approvals.slack.signingSecret") } : {}),
        ...(s.appToken ? { appToken: secret(s.appToken, "approvals.slack.appToken") } : {}),
        channel: s.channel,
        ...(s.securityChannel ? { securityChannel: s.securityChannel } : {}),
        apiUrl: s.apiUrl.endsWith("/") ? s.apiUrl : `${s.apiUrl}/`,
        ...(s.teamId ? { teamId: s.teamId } : {}),
        ...(s.appId ? { appId: s.appId } : {}),
        users: Object.fromEntries(Object.entries(s.users).map(([id, email]) => [id, email.toLowerCase()])),
        postAttempts: s.postAttempts,
      }
    : undefined;
  return {
    groups: Object.fromEntries(
      Object.entries(a.groups).map(([name, g]) => [name, { emails: g.emails.map((e) => e.toLowerCase()), slackUserGroups: g.slackUserGroups, ...(g.channel ? { channel: g.channel } : {}) }]),
    ),
    holdForMs: parseDuration(a.holdFor),
    ...(a.reminderEvery ? { reminderEveryMs: parseDuration(a.reminderEvery) } : {}),
    ...(a.escalation ? { escalation: { afterMs: parseDuration(a.escalation.after), group: a.escalation.group } } : {}),
    sweepIntervalMs: a.sweepIntervalMs,
    pollIntervalMs: a.pollIntervalMs,
    listen: a.listen,
    ...(slack ? { slack } : {}),
    ...(a.argumentsKey ? { argumentsKey: secret(a.argumentsKey, "approvals.argumentsKey") } : {}),
  };
}

function auditConfig(
  a: ParsedConfig["audit"],
  secret: (ref: SecretRef, path: string) => Secret | undefined,
  problems: string[],
  externalDatabase: boolean,
): AuditConfig {
  const when = (iso: string | undefined) => (iso ? { notBefore: new Date(iso) } : {});
  const until = (iso: string | undefined) => (iso ? { notAfter: new Date(iso) } : {});
  const key = <T>(path: string, parse: () => T): T | undefined => {
    try {
      return parse();
    } catch (err) {
      problems.push(`${path}: ${(err as Error).message}`);
      return undefined;
    }
  };
  const cp = a.checkpoint;
  const checkpoint = cp && {
    intervalMinutes: cp.intervalMinutes,
    ...(cp.directory ? { directory: resolve(cp.directory) } : {}),
    keys: cp.keys.flatMap((k, i) => {
      const path = `audit.checkpoint.keys[${i}].privateKey`;
      const pem = secret(k.privateKey, path);
      const privateKey = pem && key(path, () => parseEd25519PrivateKey(pem.reveal()));
      return privateKey ? [{ id: k.id, privateKey, ...when(k.notBefore), ...until(k.notAfter) }] : [];
    }),
    publicKeys: cp.publicKeys.flatMap((k, i) => {
      const path = `audit.checkpoint.publicKeys[${i}].publicKey`;
      const pem = typeof k.publicKey === "string" ? k.publicKey : secret(k.publicKey, path)?.reveal();
      const publicKey = pem && key(path, () => parseEd25519PublicKey(pem));
      return publicKey ? [{ id: k.id, publicKey, ...when(k.notBefore), ...until(k.notAfter) }] : [];
    }),
  };
  // Retention cuts at a signed checkpoint; with an external database those need configured keys.
  if (a.retentionDays !== undefined && !checkpoint && externalDatabase) {
    problems.push("audit.retentionDays: retention deletes only up to a signed checkpoint: configure audit.checkpoint.keys as well");
  }
  return { sealIntervalMs: a.sealIntervalMs, ...(checkpoint ? { checkpoint } : {}), ...(a.retentionDays !== undefined ? { retentionDays: a.retentionDays } : {}) };
}

/** Environment variables win over the file (12-factor); each maps to one key. */
export const ENV_OVERRIDES: ReadonlyArray<{ env: string; path: string[]; type: "string" | "int" | "bool" }> = [
  { env: "HOST", path: ["server", "host"], type: "string" },
  { env: "PORT", path: ["server", "port"], type: "int" },
  { env: "COUNTERSIGN_PUBLIC_URL", path: ["publicUrl"], type: "string" },
  { env: "COUNTERSIGN_LOG_LEVEL", path: ["log", "level"], type: "string" },
  { env: "COUNTERSIGN_LOG_FORMAT", path: ["log", "format"], type: "string" },
  { env: "COUNTERSIGN_MIGRATE_ON_START", path: ["database", "migrateOnStart"], type: "bool" },
  { env: "COUNTERSIGN_DATA_DIR", path: ["database", "embeddedDataDir"], type: "string" },
  { env: "COUNTERSIGN_REQUEST_BODY_BYTES", path: ["limits", "requestBodyBytes"], type: "int" },
  { env: "COUNTERSIGN_UPSTREAM_MESSAGE_BYTES", path: ["limits", "upstreamMessageBytes"], type: "int" },
  { env: "COUNTERSIGN_INTERNAL_PORT", path: ["cluster", "internalPort"], type: "int" },
  { env: "COUNTERSIGN_INTERNAL_HOST", path: ["cluster", "internalHost"], type: "string" },
  { env: "COUNTERSIGN_ADVERTISE_URL", path: ["cluster", "advertiseUrl"], type: "string" },
];

function applyEnvironment(raw: Record<string, unknown>, env: Env): Record<string, unknown> {
  const out = structuredClone(raw);
  for (const o of ENV_OVERRIDES) {
    const v = env[o.env];
    if (v === undefined || v === "") continue;
    let node = out;
    for (const key of o.path.slice(0, -1)) {
      const next = node[key];
      node = (next && typeof next === "object" ? next : (node[key] = {})) as Record<string, unknown>;
    }
    // Leave the value as text when it does not convert, so validation names the key and the problem.
    node[o.path[o.path.length - 1]!] =
      o.type === "int" ? (/^\d+$/.test(v) ? Number(v) : v) : o.type === "bool" ? (v === "true" ? true : v === "false" ? false : v) : v;
  }
  return out;
}

function resolveSecret(ref: SecretRef, env: Env): Secret {
  if ("env" in ref) {
    const v = env[ref.env];
    if (v === undefined || v === "") throw new Error(`environment variable ${ref.env} is not set: set it or change the reference`);
    return new Secret(v, `env ${ref.env}`);
  }
  try {
    return new Secret(readFileSync(ref.file, "utf8").replace(/\r?\n$/, ""), `file ${ref.file}`);
  } catch (err) {
    throw new Error(`cannot read secret file ${ref.file} (${(err as NodeJS.ErrnoException).code ?? "error"}): check the path and its permissions`);
  }
}

/** `connections[1].upstream.url: not a URL` */
export function formatIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path.reduce<string>(
    (acc, seg) => (typeof seg === "number" ? `${acc}[${seg}]` : acc ? `${acc}.${String(seg)}` : String(seg)),
    "",
  );
  let message = issue.message;
  if (issue.code === "unrecognized_keys") message = `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `'${k}'`).join(", ")}: remove ${issue.keys.length > 1 ? "them" : "it"} or check the spelling`;
  else if (issue.code === "invalid_type" && /received undefined/.test(issue.message)) message = `required (${issue.expected})`;
  return `${path || "(top level)"}: ${message}`;
}

/** True for addresses only this host can reach (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h) || /^::ffff:127(\.\d{1,3}){3}$/.test(h);
}
