// Where a running gateway can be reached, for commands that talk to it (`countersign reload`).
// `start` writes a small file once it listens (and removes it when it stops), keyed by its
// configuration file; reading it needs no secret, and an edit of server.port in that file does not
// move it. Without such a file: $COUNTERSIGN_PUBLIC_URL, then the file's own publicUrl or host/port.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parse } from "yaml";
import { processAlive } from "../process-alive.js";

interface RunningGateway {
  pid: number;
  address: string;
  publicUrl: string;
  config: string;
}

function rawSettings(configFile: string): { publicUrl?: string; host?: string; port?: number; dataDir?: string } {
  try {
    const doc = parse(readFileSync(configFile, "utf8")) as { publicUrl?: unknown; server?: { host?: unknown; port?: unknown }; database?: { embeddedDataDir?: unknown } } | null;
    return {
      publicUrl: typeof doc?.publicUrl === "string" ? doc.publicUrl : undefined,
      host: typeof doc?.server?.host === "string" ? doc.server.host : undefined,
      port: typeof doc?.server?.port === "number" ? doc.server.port : undefined,
      dataDir: typeof doc?.database?.embeddedDataDir === "string" ? doc.database.embeddedDataDir : undefined,
    };
  } catch {
    return {};
  }
}

/** <embeddedDataDir>/../running/<hash of the config path>.json (beside the dev issuer's key). */
export function runningFile(configFile: string, dataDir: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const dir = resolve(dataDir || env.COUNTERSIGN_DATA_DIR || rawSettings(configFile).dataDir || ".countersign/postgres");
  return join(dirname(dir), "running", `${createHash("sha256").update(resolve(configFile)).digest("hex").slice(0, 16)}.json`);
}

export function writeRunningFile(configFile: string, dataDir: string, info: Omit<RunningGateway, "pid" | "config">): () => void {
  const file = runningFile(configFile, dataDir);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify({ pid: process.pid, config: resolve(configFile), ...info }, null, 2), { mode: 0o600 });
  return () => rmSync(file, { force: true });
}


export function reloadTarget(configFile: string, explicitUrl: string | undefined, env: NodeJS.ProcessEnv = process.env): { url: string; from: string } {
  if (explicitUrl) return { url: explicitUrl, from: "--url" };
  const file = runningFile(configFile, undefined, env);
  if (existsSync(file)) {
    try {
      const r = JSON.parse(readFileSync(file, "utf8")) as RunningGateway;
      if (Number.isInteger(r.pid) && processAlive(r.pid) && typeof r.address === "string") return { url: r.address, from: `the gateway running as pid ${r.pid}` };
    } catch {
      // unreadable: fall through to the configuration
    }
  }
  if (env.COUNTERSIGN_PUBLIC_URL) return { url: env.COUNTERSIGN_PUBLIC_URL, from: "$COUNTERSIGN_PUBLIC_URL" };
  const raw = rawSettings(configFile);
  if (raw.publicUrl) return { url: raw.publicUrl, from: `publicUrl in ${configFile}` };
  const host = raw.host ?? "127.0.0.1";
  const port = env.PORT ?? String(raw.port ?? 8080);
  return { url: `http://${host === "0.0.0.0" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host}:${port}`, from: `server.host/port in ${configFile}` };
}
