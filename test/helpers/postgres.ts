// The tests' PostgreSQL: the server on 127.0.0.1:5432 where there is one (the development and CI
// machines), otherwise a private embedded one. Each test file gets its own database, cloned from
// a template that has every migration applied (so the migrations themselves are exercised).
import { createHash, randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";

export const ROOT = new URL("../..", import.meta.url).pathname;

export function adminUrl(): string {
  return process.env.COUNTERSIGN_TEST_ADMIN_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** Changes whenever a migration changes, so a stale template is never used. */
export function templateName(): string {
  const dir = join(ROOT, "prisma", "migrations");
  const h = createHash("sha256");
  for (const d of readdirSync(dir).sort()) {
    if (d.endsWith(".toml")) continue;
    h.update(d).update(readFileSync(join(dir, d, "migration.sql")));
  }
  return `cs_template_${h.digest("hex").slice(0, 12)}`;
}

export async function adminQuery(sql: string): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: adminUrl() });
  await c.connect();
  try {
    return await c.query(sql);
  } finally {
    await c.end();
  }
}

export interface TestDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  // The creation time in the name lets a later run sweep leftovers without touching live ones.
  const name = `t_${Math.floor(Date.now() / 1000)}_${randomBytes(5).toString("hex")}`;
  await adminQuery(`CREATE DATABASE ${name} TEMPLATE ${templateName()}`);
  return {
    name,
    url: withDatabase(adminUrl(), name),
    drop: async () => {
      await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}
