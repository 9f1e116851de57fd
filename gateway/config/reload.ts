// Reloading the configuration while running (SIGHUP, or POST /admin/reload by an administrator).
// The new file is validated first: an invalid file keeps the old configuration and says why.
// Connections, access, policy and masking change live (open sessions follow them); what the
// process was started with (listen address, database, identity issuers, keys, metrics) needs a
// restart, and a file that changes it is refused whole. Each applied configuration is recorded
// once as a config_changed event (who, when, hash, diff), however many replicas apply it.
import { hostname } from "node:os";
import type { Recorder } from "../audit/recorder.js";
import type { Db } from "../db/client.js";
import type { Logger } from "../log.js";
import type { SessionRegistry } from "../mcp/sessions.js";
import { ConfigError, loadConfigFile, type GatewayConfig } from "./load.js";
import { redactConfigValue } from "./redact.js";
import { loadSqlParser, policyUsesSql } from "../policy/index.js";

export interface ReloadActor {
  kind: "startup" | "signal" | "admin";
  subject?: string | undefined;
  email?: string | undefined;
}

export interface ReloadResult {
  applied: boolean;
  hash: string;
  previousHash: string;
  changes: Array<{ path: string; before: unknown; after: unknown }>;
  removedConnections: string[];
  problems: string[];
}

/** Keys that only take effect at start. */
const RESTART_ONLY = ["server", "database", "auth", "keys", "metrics", "publicUrl", "cluster", "oauth"] as const;

export class ConfigReloader {
  #current: GatewayConfig;
  #chain: Promise<unknown> = Promise.resolve();

  constructor(
    initial: GatewayConfig,
    private readonly deps: { sessions: SessionRegistry; recorder: Recorder; db: Db; log: Logger; instanceId: string },
  ) {
    this.#current = initial;
  }

  get current(): GatewayConfig {
    return this.#current;
  }

  /** Records the configuration in force at start (once across replicas starting with the same file). */
  recordStartup(): Promise<void> {
    return this.#recordApplied(this.#current, undefined, [], { kind: "startup" });
  }

  /** Re-reads the configuration file and applies it. Reloads run one at a time. */
  reload(actor: ReloadActor, env: Record<string, string | undefined> = process.env): Promise<ReloadResult> {
    const next = this.#chain.then(() => this.#reload(actor, env));
    this.#chain = next.catch(() => {});
    return next;
  }

  async #reload(actor: ReloadActor, env: Record<string, string | undefined>): Promise<ReloadResult> {
    const before = this.#current;
    const refused = (problems: string[], hash = before.hash): ReloadResult => {
      this.deps.log.warn({ problems, by: actor }, "configuration reload refused; the running configuration stays");
      this.deps.recorder.eventBestEffort({
        type: "config_changed",
        reason: "rejected",
        subject: actor.subject ?? null,
        detail: { source: before.source, problems, by: actor, instance: this.deps.instanceId },
      });
      return { applied: false, hash, previousHash: before.hash, changes: [], removedConnections: [], problems };
    };

    let next: GatewayConfig;
    try {
      next = loadConfigFile(before.source, env);
    } catch (err) {
      return refused(err instanceof ConfigError ? err.problems : [String(err)]);
    }
    if (next.hash === before.hash) {
      return { applied: true, hash: next.hash, previousHash: before.hash, changes: [], removedConnections: [], problems: [] };
    }
    // A new sql condition needs the SQL parser before its rule is applied (sql.ts).
    if (next.connections.some((c) => policyUsesSql(c.policy))) await loadSqlParser();
    // Inline credentials never leave in a change list (the event, the admin API's answer, the log).
    const changes = diff(before.raw, next.raw).map((c) => ({ path: c.path, before: redactConfigValue(c.path, c.before), after: redactConfigValue(c.path, c.after) }));
    const restartNeeded = RESTART_ONLY.filter((key) => changes.some((c) => c.path === key || c.path.startsWith(`${key}.`) || c.path.startsWith(`${key}[`)));
    if (restartNeeded.length > 0) {
      return refused(restartNeeded.map((k) => `${k}: changes here take effect only at start; restart the gateway (nothing was applied)`), next.hash);
    }

    const removedConnections = await this.deps.sessions.applyConfig(next);
    this.#current = next;
    this.deps.log.info({ hash: next.hash, changes: changes.length, removedConnections, by: actor }, "configuration reloaded");
    await this.#recordApplied(next, before.hash, changes, actor).catch((err) =>
      this.deps.log.error({ err: String(err) }, "the configuration was applied but its change record could not be written"),
    );
    return { applied: true, hash: next.hash, previousHash: before.hash, changes, removedConnections, problems: [] };
  }

  /**
   * One config_changed/applied event per transition (previous hash → hash): replicas applying the
   * same change race for an advisory lock, and the loser sees the winner's row.
   */
  async #recordApplied(cfg: GatewayConfig, previousHash: string | undefined, changes: ReloadResult["changes"], actor: ReloadActor): Promise<void> {
    const detail = {
      hash: cfg.hash,
      previousHash: previousHash ?? null,
      source: cfg.source,
      by: { ...actor, instance: this.deps.instanceId, host: hostname() },
      changes: changes.slice(0, 200),
      ...(changes.length > 200 ? { truncatedChanges: changes.length - 200 } : {}),
    };
    await this.deps.db.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext('countersign-config-change'))`;
      // At start there is no "previous" of our own: the last applied configuration in the record is.
      const last = await tx.$queryRaw<Array<{ hash: string | null }>>`
        SELECT detail->>'hash' AS hash FROM events WHERE type = 'config_changed' AND reason = 'applied' ORDER BY id DESC LIMIT 1`;
      if (last[0]?.hash === cfg.hash) return;
      await tx.$executeRaw`INSERT INTO events (type, reason, subject, detail) VALUES ('config_changed', 'applied', ${actor.subject ?? null}, ${JSON.stringify(detail)}::jsonb)`;
    });
  }
}

/** Paths whose values differ, with both values (secret references, never secret values). */
export function diff(a: unknown, b: unknown, path = ""): Array<{ path: string; before: unknown; after: unknown }> {
  const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);
  if (isObj(a) && isObj(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => diff(a[k], b[k], path ? `${path}.${k}` : k));
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    const out: Array<{ path: string; before: unknown; after: unknown }> = [];
    for (let i = 0; i < Math.max(a.length, b.length); i++) out.push(...diff(a[i], b[i], `${path}[${i}]`));
    return out;
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [{ path: path || "(root)", before: a ?? null, after: b ?? null }];
}
