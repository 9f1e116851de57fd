// The database a gateway starts on: the configured one, or the embedded PostgreSQL started now,
// with the migrations applied where the configuration asks for it (always for the embedded one).
// A module of its own, light to import, so that `countersign start` can do this while the
// gateway's heavy modules (Fastify, Prisma, the MCP SDK) are still loading.
import type { GatewayConfig } from "../config/load.js";
import { startEmbeddedDatabase, type EmbeddedDatabase } from "./embedded.js";
import { migrateDatabase } from "./migrate.js";
import { redactUrl } from "./url.js";

export interface PreparedDatabase {
  url: string;
  embedded?: EmbeddedDatabase | undefined;
}

export async function resolveDatabase(config: GatewayConfig, progress: (line: string) => void): Promise<PreparedDatabase> {
  if (config.database.url) return { url: config.database.url.reveal() };
  progress(`no DATABASE_URL: starting the embedded PostgreSQL in ${config.database.embeddedDataDir}`);
  const embedded = await startEmbeddedDatabase(config.database.embeddedDataDir, progress);
  return { url: embedded.connection.url, embedded };
}

/** Resolves the database and applies pending migrations; stops an embedded database it started if that fails. */
export async function prepareDatabase(config: GatewayConfig, progress: (line: string) => void): Promise<PreparedDatabase> {
  const database = await resolveDatabase(config, progress);
  try {
    if (config.database.migrateOnStart || database.embedded) {
      const result = await migrateDatabase(database.url, { progress: (p) => p.phase === "applied" && progress(`migration ${p.index}/${p.total} applied: ${p.name}`) });
      progress(`database ${redactUrl(database.url)}: ${result.output.split("\n")[0]}`);
    }
    return database;
  } catch (err) {
    if (database.embedded?.owned) await database.embedded.stop().catch(() => {});
    throw err;
  }
}
