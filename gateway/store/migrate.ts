// Applies the migrations in prisma/migrations. Proving that nothing is pending is one query
// (the `_prisma_migrations` table against the folder's names and SHA-256 checksums), and pending
// migrations that simply follow the applied ones are run with plain SQL, each in a transaction
// with its `_prisma_migrations` row, exactly as Prisma records them (so `prisma migrate deploy`
// and `prisma migrate status` agree). Anything unusual (a failed or unknown migration, a changed
// file, out-of-order history) is left to Prisma's own `migrate deploy`, the authority, whose
// output is returned without its driver-adapter preamble.
import { spawn } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import pg from "pg";
import { PACKAGE_ROOT } from "../paths.js";

export interface MigrationFile {
  name: string;
  /** SHA-256 of migration.sql, hex: what Prisma stores in _prisma_migrations.checksum. */
  checksum: string;
  sql: string;
}

export interface MigrateProgress {
  /** 1-based position among the pending migrations, and how many there are. */
  index: number;
  total: number;
  name: string;
  phase: "applying" | "applied";
  ms?: number;
}

export interface MigrateResult {
  /** Names of the migrations this run applied, in order. */
  applied: string[];
  /** How many were already applied before this run. */
  alreadyApplied: number;
  /** "none": nothing was pending; "sql": applied here; "prisma": handed to `prisma migrate deploy`. */
  via: "none" | "sql" | "prisma";
  /** A one-paragraph account for a person. */
  output: string;
}

export interface MigrateOptions {
  progress?: (p: MigrateProgress) => void;
  migrationsDir?: string;
}

/** The same advisory lock `prisma migrate deploy` takes, so this and Prisma never run at once. */
const PRISMA_MIGRATE_LOCK = 72707369;

const MIGRATIONS_TABLE_DDL = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
  "id" VARCHAR(36) PRIMARY KEY NOT NULL,
  "checksum" VARCHAR(64) NOT NULL,
  "finished_at" TIMESTAMPTZ,
  "migration_name" VARCHAR(255) NOT NULL,
  "logs" TEXT,
  "rolled_back_at" TIMESTAMPTZ,
  "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
  "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)`;

export function migrationFiles(dir = join(PACKAGE_ROOT, "prisma", "migrations")): MigrationFile[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(dir, d.name, "migration.sql")))
    .map((d) => {
      const bytes = readFileSync(join(dir, d.name, "migration.sql"));
      return { name: d.name, checksum: createHash("sha256").update(bytes).digest("hex"), sql: bytes.toString("utf8") };
    })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export interface MigrationPlan {
  alreadyApplied: string[];
  pending: MigrationFile[];
  /** Set when the history is not a plain prefix of the folder: Prisma must judge. */
  needsPrisma?: string;
}

interface AppliedRow {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
}

export async function planMigrations(client: pg.ClientBase, files: MigrationFile[]): Promise<MigrationPlan> {
  const exists = await client.query<{ t: string | null }>(`SELECT to_regclass('"_prisma_migrations"')::text AS t`);
  const rows: AppliedRow[] = exists.rows[0]?.t
    ? (await client.query<AppliedRow>(`SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations"`)).rows
    : [];
  const live = rows.filter((r) => r.rolled_back_at === null);
  const failed = live.filter((r) => r.finished_at === null);
  if (failed.length) return { alreadyApplied: [], pending: [], needsPrisma: `migration ${failed[0]!.migration_name} failed earlier` };
  const byName = new Map(files.map((f) => [f.name, f]));
  const unknown = live.find((r) => !byName.has(r.migration_name));
  if (unknown) return { alreadyApplied: [], pending: [], needsPrisma: `the database has migration ${unknown.migration_name}, which this version does not know` };
  const applied = new Set(live.map((r) => r.migration_name));
  const changed = live.find((r) => byName.get(r.migration_name)!.checksum !== r.checksum);
  if (changed) return { alreadyApplied: [], pending: [], needsPrisma: `migration ${changed.migration_name} was modified after it was applied` };
  const pending = files.filter((f) => !applied.has(f.name));
  const lastApplied = files.filter((f) => applied.has(f.name)).pop();
  if (pending.length && lastApplied && pending[0]!.name < lastApplied.name) {
    return { alreadyApplied: [], pending: [], needsPrisma: `migration ${pending[0]!.name} is older than the applied ${lastApplied.name}` };
  }
  return { alreadyApplied: [...applied].sort(), pending };
}

export async function migrateDatabase(url: string, opts: MigrateOptions = {}): Promise<MigrateResult> {
  const files = migrationFiles(opts.migrationsDir);
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  await client.connect();
  let plan: MigrationPlan;
  const applied: string[] = [];
  try {
    await client.query("SELECT pg_advisory_lock($1)", [PRISMA_MIGRATE_LOCK]);
    try {
      plan = await planMigrations(client, files);
      if (!plan.needsPrisma && plan.pending.length) await client.query(MIGRATIONS_TABLE_DDL);
      for (const [i, m] of (plan.needsPrisma ? [] : plan.pending).entries()) {
        const step = { index: i + 1, total: plan.pending.length, name: m.name };
        opts.progress?.({ ...step, phase: "applying" });
        const t0 = performance.now();
        await applyOne(client, m);
        applied.push(m.name);
        opts.progress?.({ ...step, phase: "applied", ms: performance.now() - t0 });
      }
    } finally {
      await client.query("SELECT pg_advisory_unlock($1)", [PRISMA_MIGRATE_LOCK]).catch(() => {});
    }
  } finally {
    await client.end().catch(() => {});
  }
  if (plan.needsPrisma) {
    const output = await prismaMigrateDeploy(url, plan.needsPrisma);
    return { applied: [], alreadyApplied: 0, via: "prisma", output };
  }
  const count = plan.alreadyApplied.length;
  const output = applied.length
    ? `applied ${applied.length} migration(s): ${applied.join(", ")}${count ? ` (${count} already applied)` : ""}`
    : `no pending migrations: the database has all ${count} (latest ${plan.alreadyApplied.at(-1) ?? "none"})`;
  return { applied, alreadyApplied: count, via: applied.length ? "sql" : "none", output };
}

async function applyOne(client: pg.ClientBase, m: MigrationFile): Promise<void> {
  const id = randomUUID();
  await client.query("BEGIN");
  try {
    await client.query(`INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count) VALUES ($1, $2, $3, now(), 0)`, [id, m.checksum, m.name]);
    await client.query(m.sql); // several statements: the simple query protocol, inside this transaction
    await client.query(`UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE id = $1`, [id]);
    await client.query("COMMIT");
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    const e = err as { message?: string; position?: string };
    throw new Error(`migration ${m.name} failed and was rolled back: ${e.message ?? String(err)}`);
  }
}

/** `prisma migrate deploy`, for histories only Prisma should judge; its output without the preamble. */
async function prismaMigrateDeploy(url: string, why: string): Promise<string> {
  const require = createRequire(import.meta.url);
  const cli = require.resolve("prisma/build/index.js", { paths: [PACKAGE_ROOT] });
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, [cli, "migrate", "deploy"], {
      cwd: PACKAGE_ROOT,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", DATABASE_URL: url, PRISMA_HIDE_UPDATE_MESSAGE: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let text = "";
    child.stdout.on("data", (d: Buffer) => (text += d.toString()));
    child.stderr.on("data", (d: Buffer) => (text += d.toString()));
    child.on("error", (err) => reject(new Error(`cannot run the Prisma CLI for migrations: ${err.message}`)));
    child.on("close", (code) => {
      if (code === 0) resolve(withoutPreamble(text));
      else reject(new Error(`migrations failed (${why}; prisma migrate deploy exited with ${code}):\n${withoutPreamble(text)}`));
    });
  });
  return `${why}: handed to prisma migrate deploy\n${output}`;
}

/** Drops Prisma's paragraphs about driver adapters, config files and schema loading: not the operator's concern. */
export function withoutPreamble(text: string): string {
  return text
    .split(/\n\s*\n/)
    .filter((p) => !/driver ?adapter|preview feature|prisma\.config\.ts|Prisma schema loaded|Datasource "db"|Loaded Prisma config/i.test(p))
    .join("\n\n")
    .trim();
}
