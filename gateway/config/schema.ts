// The configuration file's schema. It is the single source of truth: the loader validates with
// it and `npm run schema` publishes it as JSON Schema (gateway/config/countersign.schema.json)
// for editors and for the Helm chart.
import { z } from "zod";

export const CONFIG_VERSION = 1;

const secretRef = z
  .union([
    z.strictObject({ env: z.string().min(1).describe("Name of an environment variable holding the value") }),
    z.strictObject({ file: z.string().min(1).describe("Path of a file holding the value (trailing newline removed)") }),
  ])
  .describe("A reference to a secret: { env: NAME } or { file: /path }. Secrets are never written literally in the file.");

const valueOrSecret = z.union([z.string(), secretRef]);

const connectionName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, "must be lower-case letters, digits, '-' or '_' (it becomes part of a URL)");

const httpUrl = z.url({ protocol: /^https?$/, error: "not a URL (expected http:// or https://)" });

const tls = z
  .strictObject({
    ca: secretRef.optional().describe("PEM bundle of certificate authorities to trust for this upstream"),
    cert: secretRef.optional().describe("Client certificate (PEM) for mutual TLS"),
    key: secretRef.optional().describe("Client private key (PEM) for mutual TLS"),
    rejectUnauthorized: z.boolean().default(true),
  })
  .refine((t) => (t.cert === undefined) === (t.key === undefined), {
    message: "cert and key must be given together",
  });

const stdioUpstream = z.strictObject({
  type: z.literal("stdio"),
  command: z.string().min(1),
  args: z.array(z.string()).default([]),
  cwd: z.string().optional(),
  env: z
    .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "not an environment variable name"), valueOrSecret)
    .default({})
    .describe("The child's environment on top of a minimal base (PATH, HOME, LANG); the gateway's own environment is never passed"),
});

const httpUpstream = <T extends "streamable_http" | "sse">(type: T) =>
  z.strictObject({
    type: z.literal(type),
    url: httpUrl,
    headers: z.record(z.string().min(1), valueOrSecret).default({}).describe("Headers sent to the upstream (credentials go here, as secret references)"),
    tls: tls.optional(),
  });

const upstream = z.discriminatedUnion("type", [stdioUpstream, httpUpstream("streamable_http"), httpUpstream("sse")], {
  error: (issue) =>
    issue.code === "invalid_union" ? "upstream.type must be one of: stdio, streamable_http, sse" : undefined,
});

const connection = z.strictObject({
  name: connectionName,
  description: z.string().optional(),
  upstream,
  maxSessions: z.int().min(1).max(10_000).default(32).describe("Concurrent client sessions (for stdio: child processes)"),
  idleTimeoutSeconds: z.int().min(1).optional().describe("Close a session after this long without traffic (default: sessions.idleTimeoutSeconds)"),
});

export const configSchema = z
  .strictObject({
    version: z.literal(CONFIG_VERSION, { error: `version must be ${CONFIG_VERSION}` }),
    publicUrl: httpUrl.optional().describe("Externally visible base URL (token audiences, metadata, links). Default: http://HOST:PORT"),
    server: z
      .strictObject({
        host: z.string().default("127.0.0.1"),
        port: z.int().min(0).max(65535).default(8080),
      })
      .prefault({}),
    database: z
      .strictObject({
        url: secretRef.optional().describe("PostgreSQL URL; without it (and without DATABASE_URL) an embedded PostgreSQL is started"),
        migrateOnStart: z.boolean().default(true),
        embeddedDataDir: z.string().default(".countersign/postgres"),
        commitTimeoutMs: z.int().min(100).default(5000).describe("How long a record may take to commit before the gateway fails closed"),
      })
      .prefault({}),
    limits: z
      .strictObject({
        requestBodyBytes: z.int().min(1024).default(4 * 1024 * 1024),
        upstreamMessageBytes: z.int().min(1024).default(16 * 1024 * 1024),
        upstreamTimeoutMs: z.int().min(1000).default(10 * 60 * 1000),
        notificationsPerSecond: z.int().min(1).default(1000).describe("Per session; notifications above it are dropped, counted and reported to the client"),
      })
      .prefault({}),
    sessions: z
      .strictObject({
        idleTimeoutSeconds: z.int().min(1).default(1800),
      })
      .prefault({}),
    log: z
      .strictObject({
        level: z.enum(["fatal", "error", "warn", "info", "debug", "trace"]).default("info"),
      })
      .prefault({}),
    connections: z.array(connection).min(1, "declare at least one connection"),
  })
  .superRefine((cfg, ctx) => {
    const seen = new Map<string, number>();
    cfg.connections.forEach((c, i) => {
      const first = seen.get(c.name);
      if (first !== undefined) {
        ctx.addIssue({ code: "custom", path: ["connections", i, "name"], message: `duplicate connection name (also connections[${first}].name)` });
      } else seen.set(c.name, i);
    });
  });

export type RawConfig = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
export type SecretRef = z.output<typeof secretRef>;
