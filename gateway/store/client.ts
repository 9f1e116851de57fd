// The Prisma client over the pg driver adapter (no native engine; see README, "Database").
import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "../generated/prisma/client.js";

export type Db = PrismaClient;

export interface DbOptions {
  /** Fail a connection attempt after this long, so an outage fails closed quickly instead of hanging. */
  connectTimeoutMs?: number;
  poolSize?: number;
}

export function createDb(url: string, opts: DbOptions = {}): Db {
  const adapter = releaseOnFailedEnd(new PrismaPg({
    connectionString: url,
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
