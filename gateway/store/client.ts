// The Prisma client over the pg driver adapter (no native engine; see README, "Database").
import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { PrismaClient } from "../generated/prisma/client.js";

export type Db = PrismaClient;

export interface DbOptions {
  /** Fail a connection attempt after this long, so an outage fails closed quickly instead of hanging. */
  connectTimeoutMs?: number;
  poolSize?: number;
}

/** Over a pool of the store's (pools.ts; the pool outlives the client), or a pool of its own. */
export function createDb(urlOrPool: string | pg.Pool, opts: DbOptions = {}): Db {
  const adapter = releaseOnFailedEnd(new PrismaPg(urlOrPool instanceof pg.Pool ? urlOrPool : {
    connectionString: urlOrPool,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 3000,
    max: opts.poolSize ?? 10,
    // Sockets to a dead server must not linger: idle connections are dropped and re-made.
    idleTimeoutMillis: 10_000,
    keepAlive: true,
  }));
  return new PrismaClient({ adapter });
}

/**
 * Prisma's transaction manager sends COMMIT or ROLLBACK and only then releases the pooled
 * connection, so when that statement fails (the database went away mid-transaction) the
 * connection is never released: the pool shrinks with each outage until no commit can run, and
 * `$disconnect` waits forever. Here a failed COMMIT/ROLLBACK releases it (the pool drops a dead one).
 * Still needed with @prisma/client 6.19.3, the last 6.x. The 7.x client does this itself (its
 * transaction manager rolls back after a failed COMMIT and releases in a `finally`), but the 7.x CLI
 * downloads a native schema engine even for `prisma generate`, which an offline build cannot do
 * (README, "Database"). Moving to 7.x (client, CLI and adapter 7.x together) removes this function.
 */
function releaseOnFailedEnd(factory: PrismaPg): PrismaPg {
  const connect = factory.connect.bind(factory);
  factory.connect = async () => {
    const adapter = await connect();
    const startTransaction = adapter.startTransaction.bind(adapter);
    adapter.startTransaction = async (isolationLevel) => {
      const tx = await startTransaction(isolationLevel);
      const executeRaw = tx.executeRaw.bind(tx);
      const commit = tx.commit.bind(tx);
      const rollback = tx.rollback.bind(tx);
      let released = false;
      const releaseOnce = async (end: () => Promise<void>) => {
        if (released) return;
        released = true;
        await end();
      };
      tx.commit = () => releaseOnce(commit);
      tx.rollback = () => releaseOnce(rollback);
      tx.executeRaw = async (query) => {
        try {
          return await executeRaw(query);
        } catch (err) {
          if (/^\s*(COMMIT|ROLLBACK)\s*$/i.test(query.sql)) await releaseOnce(rollback).catch(() => {});
          throw err;
        }
      };
      return tx;
    };
    return adapter;
  };
  return factory;
}

export { redactUrl } from "./url.js";
