// Starts a real gateway in this process on a free port, against a test database.
import { stringify } from "yaml";
import { parseConfigText } from "../../gateway/config/load.js";
import { startGateway, type Gateway } from "../../gateway/gateway.js";
import { createLogger } from "../../gateway/log.js";
import { Writable } from "node:stream";
import type { Clock } from "../../gateway/clock.js";

export const EVERYTHING = new URL("../../node_modules/@modelcontextprotocol/server-everything/dist/index.js", import.meta.url).pathname;

export function everythingStdio(extra: Record<string, unknown> = {}) {
  return { type: "stdio", command: process.execPath, args: [EVERYTHING, "stdio"], ...extra };
}

export interface TestGateway extends Gateway {
  /** http://127.0.0.1:<port>/mcp/<connection> */
  mcpUrl(connection: string): URL;
  sseUrl(connection: string): URL;
  /** Everything the gateway logged, for assertions (e.g. that no secret leaks). */
  logText(): string;
}

export async function startTestGateway(databaseUrl: string, config: Record<string, unknown>, env: Record<string, string> = {}, opts: { clock?: Clock } = {}): Promise<TestGateway> {
  const full: Record<string, unknown> = {
    version: 1,
    server: { host: "127.0.0.1", port: 0 },
    database: { url: { env: "TEST_DATABASE_URL" }, migrateOnStart: false },
    ...config,
  };
  // Tests of the data path run without tokens unless they configure access themselves.
  if (Array.isArray(full.connections)) {
    full.connections = (full.connections as Array<Record<string, unknown>>).map((c) => ({ access: { anonymous: true }, ...c }));
  }
  const cfg = parseConfigText(stringify(full), "test-config.yaml", { ...env, TEST_DATABASE_URL: databaseUrl });
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  const gw = await startGateway(cfg, { log: createLogger(process.env.COUNTERSIGN_TEST_LOG ?? "info", sink), progress: () => {}, clock: opts.clock });
  return Object.assign(gw, {
    mcpUrl: (c: string) => new URL(`${gw.address}/mcp/${c}`),
    sseUrl: (c: string) => new URL(`${gw.address}/sse/${c}`),
    logText: () => chunks.join(""),
  });
}
