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
  const adapter = new PrismaPg({
    connectionString: url,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 3000,
    max: opts.poolSize ?? 10,
    // Sockets to a dead server must not linger: idle connections are dropped and re-made.
    idleTimeoutMillis: 10_000,
    keepAlive: true,
  });
  return new PrismaClient({ adapter });
}

/** The URL with its password hidden, for logs and messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(unparseable database URL)";
  }
}
