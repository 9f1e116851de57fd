// Loads the configuration: finds the file, parses YAML, validates it against the schema (which
// also resolves each slice to the options its module reads), applies environment overrides
// (environment > file > defaults) and resolves secret references. Every problem is reported with
// the key path that is wrong; the gateway refuses to start. The types below are the schema's
// output with secrets resolved: there is no second declaration of the configuration. Runtime
// objects built from it (maskers, keys, clients) are made by the composition root (gateway.ts).
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { hostname } from "node:os";
import { resolve } from "node:path";
import { parseDocument } from "yaml";
import type { z } from "zod";
import { PACKAGE_ROOT, QUICKSTART_CONFIG } from "../paths.js";
import { configSchema, SecretReference, type ParsedConfig } from "./schema.js";
import { Secret } from "./secret.js";
import type { Masker } from "../masking/index.js";

export { isLoopbackHost } from "./schema.js";

export class ConfigError extends Error {
  constructor(readonly source: string, readonly problems: string[]) {
    super(`Invalid configuration in ${source}:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

/** The schema's output with every secret reference replaced by its value (a Secret). */
export type Resolved<T> = T extends SecretReference
  ? Secret
  : T extends Date
    ? T
    : T extends ReadonlyArray<infer U>
      ? Array<Resolved<U>>
      : T extends object
        ? { [K in keyof T]: Resolved<T[K]> }
        : T;

type Settings = Resolved<ParsedConfig>;

/** A connection as the data path reads it; `masker` is attached by the composition root (undefined when masking is off). */
export type ConnectionConfig = Settings["connections"][number] & { masker?: Masker | undefined };
export type UpstreamConfig = ConnectionConfig["upstream"];
export type TlsConfig = NonNullable<Extract<UpstreamConfig, { type: "sse" | "streamable_http" }>["tls"]>;
export type ApprovalsConfig = NonNullable<Settings["approvals"]>;
export type ApproverGroupConfig = ApprovalsConfig["groups"][string];
export type SlackConfig = NonNullable<ApprovalsConfig["slack"]>;
export type AuditConfig = Settings["audit"];
export type ClusterConfig = Settings["cluster"] & { internalHost: string; advertiseUrl: string };
export type ConsoleConfig = Settings["console"];
/** The gateway as its connections' OAuth authorization server (gateway/oauth). */
export type OAuthConfig = Settings["oauth"];

export type GatewayConfig = Omit<Settings, "connections" | "cluster"> & {
  /** The file the configuration came from. */
  source: string;
  /** SHA-256 of the file's bytes: identifies a configuration across replicas. */
  hash: string;
  /** The file as parsed (secret references, not values): what a reload diffs. */
  raw: unknown;
  /** True when the bundled quick-start configuration is in use. */
  quickstart: boolean;
  connections: ConnectionConfig[];
  /** Several replicas: the internal relay listener (gateway/cluster); internalPort 0 = off. */
  cluster: ClusterConfig;
};

export interface LoadOptions {
  /**
   * false (`countersign config --no-secrets`, for CI): secret references are checked for form
   * only, not read; what needs their values (lengths, keys) is not checked.
   */
  secrets?: boolean;
}

/** Which file to read: --config, then COUNTERSIGN_CONFIG, then ./countersign.yaml, then the quick start. */
export function findConfigFile(explicit: string | undefined, env: Env = process.env, cwd = process.cwd()): string {
  if (explicit) return resolve(cwd, explicit);
  if (env.COUNTERSIGN_CONFIG) return resolve(cwd, env.COUNTERSIGN_CONFIG);
  const local = resolve(cwd, "countersign.yaml");
  return existsSync(local) ? local : QUICKSTART_CONFIG;
}

export function loadConfigFile(file: string, env: Env = process.env, opts: LoadOptions = {}): GatewayConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(file, [`cannot read the file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`]);
  }
  const cfg = parseConfigText(text, file, env, opts);
  if (cfg.quickstart) {
    // The bundled file names its server relative to the package, wherever the gateway runs from.
    for (const c of cfg.connections) if (c.upstream.type === "stdio" && !c.upstream.cwd) c.upstream.cwd = PACKAGE_ROOT;
  }
  return cfg;
}

export function parseConfigText(text: string, source: string, env: Env = process.env, opts: LoadOptions = {}): GatewayConfig {
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
  const readSecrets = opts.secrets !== false;
  // Placeholders for secrets not read (--no-secrets) or unreadable (already a problem): no further check looks at them.
  const unread = new WeakSet<Secret>();
  const placeholder = (origin: string) => {
    const s = new Secret("", origin);
    unread.add(s);
    return s;
  };
  const secret = (ref: SecretReference, path: string): Secret => {
    if (!readSecrets) return placeholder(`${ref.origin} (not read)`);
    try {
      return resolveSecret(ref, env);
    } catch (err) {
      problems.push(`${path}: ${(err as Error).message}`);
      return placeholder(`${ref.origin} (unreadable)`);
    }
  };
  const readable = (s: Secret | undefined): s is Secret => s !== undefined && !unread.has(s);
  const settings = resolveSecrets(parsed.data, "", secret);
  const database = {
    ...settings.database,
    ...(env.DATABASE_URL ? { url: new Secret(env.DATABASE_URL, "env DATABASE_URL") } : {}),
  };
  const clusterSecret = clusterSecretOf(settings.cluster, env, secret, problems, readSecrets, readable, Boolean(settings.keys.ring.relay?.length));
  for (const [purpose, ring] of Object.entries(settings.keys.ring)) {
    (ring ?? []).forEach((k, i) => {
      if (readable(k.secret) && k.secret.reveal().length < 32) problems.push(`keys.ring.${purpose}[${i}].secret: too short: use at least 32 random characters (e.g. openssl rand -base64 32)`);
    });
  }
  if (readable(settings.console.sessionKey) && settings.console.sessionKey.reveal().length < 32) {
    problems.push("console.sessionKey: too short: use at least 32 random characters (e.g. openssl rand -base64 32)");
  }
  // Retention cuts at a signed checkpoint; with an external database those need configured keys.
  if (settings.audit.retentionDays !== undefined && !settings.audit.checkpoint && database.url) {
    problems.push("audit.retentionDays: retention deletes only up to a signed checkpoint: configure audit.checkpoint.keys as well");
  }
  if (problems.length > 0) throw new ConfigError(source, problems);

  return {
    ...settings,
    source,
    hash: createHash("sha256").update(text).digest("hex"),
    raw,
    quickstart: resolve(source) === QUICKSTART_CONFIG,
    database,
    cluster: { ...settings.cluster, internalHost: settings.cluster.internalHost ?? settings.server.host, advertiseUrl: advertiseUrlOf(settings.cluster, settings.server.host, env), secret: clusterSecret },
  };
}

/** The parsed configuration with each SecretReference replaced by its value; `path` names the key in problems. */
function resolveSecrets<T>(value: T, path: string, secret: (ref: SecretReference, path: string) => Secret): Resolved<T> {
  if (value instanceof SecretReference) return secret(value, path) as Resolved<T>;
  if (Array.isArray(value)) return value.map((v, i) => resolveSecrets(v, `${path}[${i}]`, secret)) as Resolved<T>;
  if (value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveSecrets(v, path ? `${path}.${k}` : k, secret)])) as Resolved<T>;
  }
  return value as Resolved<T>;
}

/** The relay's shared secret: cluster.secret, or COUNTERSIGN_CLUSTER_SECRET when the relay listener is on. */
function clusterSecretOf(
  c: Settings["cluster"],
  env: Env,
  secret: (ref: SecretReference, path: string) => Secret,
  problems: string[],
  readSecrets: boolean,
  readable: (s: Secret | undefined) => s is Secret,
  /** keys.ring.relay is configured: it keys the relay, so no cluster.secret is needed. */
  relayRing = false,
): Secret | undefined {
  if (c.secret) {
    if (readable(c.secret) && c.secret.reveal().length < 32) problems.push("cluster.secret: too short: use at least 32 random characters (e.g. openssl rand -base64 32)");
    return c.secret;
  }
  if (c.internalPort === 0 || relayRing) return undefined;
  if (readSecrets && !env.COUNTERSIGN_CLUSTER_SECRET) {
    problems.push("cluster.secret: the relay listener (cluster.internalPort) needs a secret shared by all replicas: set COUNTERSIGN_CLUSTER_SECRET (at least 32 random characters, the same Secret for every replica, e.g. openssl rand -base64 32) or cluster.secret: { env | file }");
    return undefined;
  }
  const value = secret(new SecretReference({ env: "COUNTERSIGN_CLUSTER_SECRET" }), "cluster.secret");
  if (readable(value) && value.reveal().length < 32) problems.push("cluster.secret: too short: use at least 32 random characters (e.g. openssl rand -base64 32)");
  return value;
}

/** How peers reach this replica: the pod's IP (Kubernetes downward API), else the bound address, else the host name. */
function advertiseUrlOf(c: Settings["cluster"], serverHost: string, env: Env): string {
  const internalHost = c.internalHost ?? serverHost;
  const wildcard = internalHost === "0.0.0.0" || internalHost === "::";
  const host = env.POD_IP || (wildcard ? hostname() : internalHost);
  return (c.advertiseUrl ?? `http://${host.includes(":") ? `[${host}]` : host}:${c.internalPort}`).replace(/\/+$/, "");
}

/** Environment variables win over the file (12-factor); each maps to one key. */
export const ENV_OVERRIDES: ReadonlyArray<{ env: string; path: string[]; type: "string" | "int" | "bool" }> = [
  { env: "HOST", path: ["server", "host"], type: "string" },
  { env: "PORT", path: ["server", "port"], type: "int" },
  { env: "COUNTERSIGN_PUBLIC_URL", path: ["publicUrl"], type: "string" },
  { env: "COUNTERSIGN_LOG_LEVEL", path: ["log", "level"], type: "string" },
  { env: "COUNTERSIGN_METRICS_PORT", path: ["metrics", "port"], type: "int" },
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

function resolveSecret(reference: SecretReference, env: Env): Secret {
  const ref = reference.ref;
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
