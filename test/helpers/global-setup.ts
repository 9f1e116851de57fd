// Before any test file: the built CLI is current, a PostgreSQL is reachable and the migrated
// template exists.
import { migrateDatabase } from "../../gateway/store/migrate.js";
import { ensureBuilt } from "./built.js";
import { adminQuery, adminUrl, templateName, withDatabase } from "./postgres.js";

export default async function setup(): Promise<() => Promise<void>> {
  ensureBuilt((line) => process.stderr.write(`${line}\n`));
  let stop = async () => {};
  try {
    await adminQuery("SELECT 1");
  } catch {
    // No server on 5432: run a private embedded one for this test run.
    const { startEmbeddedDatabase } = await import("../../gateway/store/embedded.js");
    const { mkdtempSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const dir = mkdtempSync(join(tmpdir(), "countersign-test-pg-"));
    const { chmodSync } = await import("node:fs");
    chmodSync(dir, 0o777);
    const db = await startEmbeddedDatabase(dir, () => {});
    process.env.COUNTERSIGN_TEST_ADMIN_URL = db.connection.url;
    stop = () => db.stop();
  }
  const tpl = templateName();
  const exists = await adminQuery(`SELECT 1 FROM pg_database WHERE datname = '${tpl}'`);
  if (exists.rowCount === 0) {
    const building = `${tpl}_building_${process.pid}`;
    await adminQuery(`DROP DATABASE IF EXISTS ${building}`);
    await adminQuery(`CREATE DATABASE ${building}`);
    await migrateDatabase(withDatabase(adminUrl(), building));
    await adminQuery(`ALTER DATABASE ${building} RENAME TO ${tpl}`).catch(async () => {
      await adminQuery(`DROP DATABASE IF EXISTS ${building}`); // another run made it first
    });
  }
  // Leftovers of interrupted runs: only databases older than two hours, so runs going on at the
  // same time (another terminal, CI) keep theirs.
  const cutoff = Math.floor(Date.now() / 1000) - 2 * 3600;
  const stale = await adminQuery(`SELECT datname FROM pg_database WHERE datname ~ '^t_[0-9]+_'`);
  for (const r of stale.rows as Array<{ datname: string }>) {
    if (Number(r.datname.split("_")[1]) < cutoff) await adminQuery(`DROP DATABASE IF EXISTS ${r.datname} WITH (FORCE)`).catch(() => {});
  }
  return stop;
}
