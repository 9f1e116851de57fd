// Reloading the configuration while running (SIGHUP, or POST /admin/reload by an administrator).
// The new file is validated first: an invalid file keeps the old configuration and says why
// (config_changed/rejected). Each changed key is either live, and in force when the reload
// answers (the composition root's apply puts it there), or read only at start: a file that
// changes any of those is refused whole, naming the keys ("restart to apply"), and recorded as
// config_changed/refused. Which is which: reload-keys.ts. Each applied configuration is recorded
// once as config_changed/applied (who, when, hash, diff), however many replicas apply it.
import { hostname } from "node:os";
import type { Recorder } from "../audit/recorder.js";
import type { Db } from "../store/client.js";
import { recordConfigApplied } from "../store/config-history.js";
import type { Logger } from "../log.js";
import { ConfigError, loadConfigFile, type GatewayConfig } from "./load.js";
import { redactConfigValue } from "./redact.js";
import { reloadClassesOfChange } from "./reload-keys.js";

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
  /** Keys the file changes that are read only at start (the reload was refused because of them). */
  restartRequired: string[];
  problems: string[];
}

/** What the composition root does with a valid new configuration. */
export interface ReloadHooks {
  /** Work that may still refuse the file (e.g. building its maskers): problems, each with its key path. */
  prepare(next: GatewayConfig): Promise<string[]>;
  /** Puts every live key of `next` in force; returns the connections it removed. */
  apply(next: GatewayConfig, before: GatewayConfig): Promise<{ removedConnections: string[] }>;
}

export class ConfigReloader {
  #current: GatewayConfig;
  #chain: Promise<unknown> = Promise.resolve();

  constructor(
    initial: GatewayConfig,
    private readonly deps: { hooks: ReloadHooks; recorder: Recorder; db: Db; log: Logger; instanceId: string },
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
    const answer = (fields: Partial<ReloadResult> & Pick<ReloadResult, "applied" | "hash">): ReloadResult => ({
      previousHash: before.hash, changes: [], removedConnections: [], restartRequired: [], problems: [], ...fields,
    });
    const notApplied = (reason: "rejected" | "refused", result: ReloadResult): ReloadResult => {
      this.deps.log.warn({ problems: result.problems, by: actor }, `configuration reload ${reason}; the running configuration stays`);
      this.deps.recorder.eventBestEffort({
        type: "config_changed",
        reason,
        subject: actor.subject ?? null,
        detail: {
          source: before.source, hash: result.hash, previousHash: before.hash, problems: result.problems, by: actor, instance: this.deps.instanceId,
          ...(result.restartRequired.length > 0 ? { restartRequired: result.restartRequired, changes: result.changes.slice(0, 200) } : {}),
        },
      });
      return result;
    };

    let next: GatewayConfig;
    try {
      next = loadConfigFile(before.source, env);
    } catch (err) {
      return notApplied("rejected", answer({ applied: false, hash: before.hash, problems: err instanceof ConfigError ? err.problems : [String(err)] }));
    }
    if (next.hash === before.hash) return answer({ applied: true, hash: next.hash });
    // Inline credentials never leave in a change list (the event, the admin API's answer, the log).
    const changes = diff(before.raw, next.raw).map((c) => ({ path: c.path, before: redactConfigValue(c.path, c.before), after: redactConfigValue(c.path, c.after) }));
    // One change read only at start refuses the whole file: half a configuration is never in force.
    const restartRequired = [...new Set(changes.flatMap(reloadClassesOfChange).filter((c) => c.mode === "restart").map((c) => c.key))];
    if (restartRequired.length > 0) {
      const problems = restartRequired.map((k) => `${k}: read only at start; restart to apply (nothing was applied)`);
      return notApplied("refused", answer({ applied: false, hash: next.hash, changes, restartRequired, problems }));
    }
    const prepared = await this.deps.hooks.prepare(next);
    if (prepared.length > 0) return notApplied("rejected", answer({ applied: false, hash: next.hash, problems: prepared }));

    const { removedConnections } = await this.deps.hooks.apply(next, before);
    this.#current = next;
    this.deps.log.info({ hash: next.hash, changes: changes.length, removedConnections, by: actor }, "configuration reloaded");
    await this.#recordApplied(next, before.hash, changes, actor).catch((err) =>
      this.deps.log.error({ err }, "the configuration was applied but its change record could not be written"),
    );
    return answer({ applied: true, hash: next.hash, changes, removedConnections });
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
    await recordConfigApplied(this.deps.db, cfg.hash, actor.subject ?? null, detail);
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
