// The replica's connections to PostgreSQL, made once by the composition root (gateway.ts) and
// handed to each repository: two pools and one LISTEN hub (README, "Connections per replica").
//   hot         the records the data path waits for (the recorder's INSERTs, the pseudonym map):
//               statement and query timeouts from database.commitTimeoutMs, so a stall fails closed
//   background  everything else: sessions and instances (Prisma), approvals, pins, liveness, reload,
//               the console, the digest, OAuth state
//   LISTEN hub  one connection carrying every NOTIFY channel (listener.ts)
// The audit chain's sealer holds one connection of its own besides (it keeps the leader lock for
// its session's lifetime: store/chain/pg.ts).
import pg from "pg";
import type { Logger } from "../log.js";
import { createDb, type Db } from "./client.js";
import { ListenHub } from "./listener.js";

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
/** One connection, for work that takes several statements (the audit chain's, the digest's). */
export type ChainClient = pg.Client;

/** The declared defaults (database.hotPoolSize, database.backgroundPoolSize). */
export const POOL_DEFAULTS = { hot: 4, background: 10 } as const;

export interface StoreOptions {
  log: Logger;
  hotPoolSize?: number | undefined;
  backgroundPoolSize?: number | undefined;
  /** The hot pool's statement timeout (the recorder's commit timeout); none when unset. */
  commitTimeoutMs?: number | undefined;
  /** Fail a connection attempt after this long, so an outage fails closed quickly instead of hanging. */
  connectTimeoutMs?: number | undefined;
}

export interface Store {
  readonly url: string;
  readonly hot: Pool;
  readonly background: Pool;
  /** The Prisma client, over the background pool. */
  readonly db: Db;
  readonly listen: ListenHub;
  close(): Promise<void>;
}

/**
 * Timeouts for the hot pool: the server cancels a statement running longer than the commit
 * timeout, and the client gives up on one whose answer does not come (a stalled connection), which
 * makes the pool discard that connection instead of queueing every later INSERT behind it.
 */
export function hotPoolTimeouts(commitTimeoutMs: number): { statement_timeout: number; query_timeout: number } {
  return { statement_timeout: commitTimeoutMs, query_timeout: commitTimeoutMs + 250 };
}

export function openStore(url: string, opts: StoreOptions): Store {
  const common = { connectionString: url, connectionTimeoutMillis: opts.connectTimeoutMs ?? 3000, idleTimeoutMillis: 10_000, keepAlive: true };
  const hot = new pg.Pool({ ...common, max: opts.hotPoolSize ?? POOL_DEFAULTS.hot, application_name: "countersign-hot", ...(opts.commitTimeoutMs ? hotPoolTimeouts(opts.commitTimeoutMs) : {}) });
  hot.on("error", (err) => opts.log.warn({ err }, "database (hot pool): idle connection failed"));
  const background = new pg.Pool({ ...common, max: opts.backgroundPoolSize ?? POOL_DEFAULTS.background, application_name: "countersign-background" });
  background.on("error", (err) => opts.log.warn({ err }, "database (background pool): idle connection failed"));
  const db = createDb(background);
  const listen = new ListenHub({ databaseUrl: url, log: opts.log });
  let closing: Promise<void> | undefined;
  return {
    url,
    hot,
    background,
    db,
    listen,
    close: () =>
      (closing ??= (async () => {
        await db.$disconnect().catch(() => {});
        await Promise.all([hot.end().catch(() => {}), background.end().catch(() => {})]);
      })()),
  };
}
