#!/usr/bin/env node
// The `countersign` command. Commands that read evidence (sessions, replay) read the database
// directly; `start` runs the gateway; `migrate` applies the schema.
import { Command, Option } from "commander";
import { ConfigError, findConfigFile, loadConfigFile, type GatewayConfig } from "./config/load.js";
import { createDb, redactUrl } from "./db/client.js";
import { readEmbeddedConnection, startEmbeddedDatabase } from "./db/embedded.js";
import { migrateDatabase } from "./db/migrate.js";
import { listSessions, loadExchange, formatExchange } from "./audit/replay.js";
import { startGateway } from "./gateway.js";
import { resourceUrl } from "./auth/authenticator.js";
import { devIssuerUrl, loadDevIssuerKey, parseTtl, signDevToken } from "./auth/dev-issuer.js";
import { devIssuerKeyFile } from "./auth/setup.js";
import { createLogger } from "./log.js";
import { VERSION } from "./version.js";

const program = new Command()
  .name("countersign")
  .description("A gateway in front of MCP servers that records, masks, blocks and holds tool calls for approval.")
  .version(VERSION);

function config(opts: { config?: string }): GatewayConfig {
  return loadConfigFile(findConfigFile(opts.config));
}

function fail(message: string, code = 1): never {
  process.stderr.write(`countersign: ${message}\n`);
  process.exit(code);
}

/** The database URL for evidence commands: DATABASE_URL, the config's, or the running embedded one. */
function evidenceDatabaseUrl(cfg: GatewayConfig): string {
  if (cfg.database.url) return cfg.database.url.reveal();
  const embedded = readEmbeddedConnection(cfg.database.embeddedDataDir);
  if (!embedded) {
    fail(`no database configured and no embedded database found in ${cfg.database.embeddedDataDir}: set DATABASE_URL, or start the gateway (npm start) first`);
  }
  return embedded.url;
}

async function withDb<T>(opts: { config?: string }, fn: (db: ReturnType<typeof createDb>) => Promise<T>): Promise<T> {
  const cfg = config(opts);
  const url = evidenceDatabaseUrl(cfg);
  const db = createDb(url, { poolSize: 2 });
  try {
    return await fn(db);
  } catch (err) {
    const msg = (err as Error).message.split("\n").filter(Boolean).pop() ?? String(err);
    fail(`cannot read the database at ${redactUrl(url)}: ${msg}. Is it running (for the embedded one: is the gateway started)?`);
  } finally {
    await db.$disconnect();
  }
}

const configOption = new Option("-c, --config <file>", "configuration file (default: $COUNTERSIGN_CONFIG, ./countersign.yaml, the bundled quick start)");

program
  .command("start")
  .description("run the gateway")
  .addOption(configOption)
  .action(async (opts: { config?: string }) => {
    const cfg = config(opts);
    const log = createLogger(cfg.log.level);
    const say = (line: string) => process.stderr.write(`countersign: ${line}\n`);
    if (cfg.quickstart) say(`using the bundled quick-start configuration (${cfg.source})`);
    const gw = await startGateway(cfg, { log, progress: say });
    const names = cfg.connections.map((c) => c.name);
    // One line on stdout once ready, so scripts can wait for it.
    process.stdout.write(`Countersign ready at ${gw.address} — MCP endpoint: ${gw.address}/mcp/${names[0]}\n`);
    say(`connections: ${names.map((n) => `${gw.address}/mcp/${n} (legacy SSE: ${gw.address}/sse/${n})`).join(", ")}`);
    if (gw.devToken) {
      say(`a token from the built-in dev issuer (sub alice, groups dev,oncall; valid 8 h; make others with \`npm run countersign -- token --sub <who> --groups <g>\`):`);
      process.stderr.write(`\n${gw.devToken}\n\n`);
    }
    if (cfg.quickstart) {
      say(`try it:  npx @modelcontextprotocol/inspector --cli ${gw.address}/mcp/${names[0]} --transport http --method tools/list${gw.devToken ? ` --header "Authorization: Bearer <token above>"` : ""}`);
      say(`then:    npm run countersign -- sessions   and   npm run countersign -- replay <session-id>`);
    }
    let signals = 0;
    const shutdown = (signal: string) => {
      if (signals++ > 0) {
        say("second signal: exiting now");
        process.exit(1);
      }
      say(`${signal}: finishing in-flight calls and shutting down`);
      gw.stop().then(
        () => process.exit(0),
        (err) => {
          say(`shutdown failed: ${String(err)}`);
          process.exit(1);
        },
      );
    };
    process.on("SIGTERM", () => shutdown("SIGTERM"));
    process.on("SIGINT", () => shutdown("SIGINT"));
  });

program
  .command("migrate")
  .description("apply the database migrations (DATABASE_URL, the config's database.url, or the embedded database)")
  .addOption(configOption)
  .action(async (opts: { config?: string }) => {
    const cfg = config(opts);
    let url = cfg.database.url?.reveal();
    let stop: (() => Promise<void>) | undefined;
    if (!url) {
      const embedded = await startEmbeddedDatabase(cfg.database.embeddedDataDir, (l) => process.stderr.write(`countersign: ${l}\n`));
      url = embedded.connection.url;
      if (embedded.owned) stop = embedded.stop;
    }
    try {
      process.stderr.write(`countersign: applying migrations to ${redactUrl(url)}\n`);
      const { output } = await migrateDatabase(url);
      const summary = output.split("\n").filter((l) => /migration|applied|No pending/i.test(l)).join("\n");
      process.stdout.write(`${summary || "migrations applied"}\n`);
    } finally {
      await stop?.();
    }
  });

program
  .command("sessions")
  .description("list recent sessions")
  .addOption(configOption)
  .option("--connection <name>", "only this connection")
  .option("--since <time>", "only sessions opened at or after this ISO time (or 1h, 30m, 7d ago)")
  .option("--method <method>", "only sessions with a message of this method, e.g. tools/call")
  .option("--limit <n>", "at most this many", "50")
  .option("--json", "JSON for machines")
  .action(async (opts: { config?: string; connection?: string; since?: string; method?: string; limit: string; json?: boolean }) => {
    const since = opts.since ? parseSince(opts.since) : undefined;
    const rows = await withDb(opts, (db) =>
      listSessions(db, { connection: opts.connection, since, method: opts.method, limit: Number(opts.limit) || 50 }),
    );
    if (opts.json) return void process.stdout.write(JSON.stringify(rows, null, 2) + "\n");
    if (rows.length === 0) return void process.stdout.write("no sessions match\n");
    const table = rows.map((r) => [r.createdAt.replace("T", " ").slice(0, 19), r.id, r.connection, String(r.messages), r.closeReason ?? (r.closedAt ? "closed" : "open"), r.client ?? "", r.subject ?? ""]);
    printTable(["OPENED (UTC)", "SESSION", "CONNECTION", "MSGS", "STATE", "CLIENT", "WHO"], table);
  });

program
  .command("replay")
  .description("print one session's exchange in order")
  .argument("<session-id>")
  .addOption(configOption)
  .option("--json", "JSON for machines (full payloads)")
  .action(async (sessionId: string, opts: { config?: string; json?: boolean }) => {
    const x = await withDb(opts, (db) => loadExchange(db, sessionId));
    if (!x) fail(`no session '${sessionId}': list sessions with \`countersign sessions\``, 2);
    process.stdout.write((opts.json ? JSON.stringify(x, null, 2) : formatExchange(x, process.stdout.columns || 160)) + "\n");
  });

program
  .command("token")
  .description("print a token from the built-in dev issuer (auth.devIssuer.enabled), for local use")
  .addOption(configOption)
  .requiredOption("--sub <subject>", "the subject (user or service account id)")
  .option("--email <email>", "e-mail claim")
  .option("--name <name>", "name claim")
  .option("--groups <list>", "comma-separated groups", "")
  .option("--client-id <id>", "make it a service-account token for this client")
  .option("--connection <name...>", "connections it is valid for (default: all)")
  .option("--ttl <duration>", "lifetime, e.g. 15m, 1h, 8h", "1h")
  .action(async (opts: { config?: string; sub: string; email?: string; name?: string; groups: string; clientId?: string; connection?: string[]; ttl: string }) => {
    const cfg = config(opts);
    if (!cfg.auth.devIssuer.enabled) fail(`the built-in dev issuer is off in ${cfg.source}: set auth.devIssuer.enabled: true, or get a token from your identity provider`, 2);
    let ttlSeconds: number;
    try {
      ttlSeconds = parseTtl(opts.ttl);
    } catch (err) {
      fail((err as Error).message, 2);
    }
    const names = opts.connection ?? cfg.connections.map((c) => c.name);
    for (const n of names) if (!cfg.connections.some((c) => c.name === n)) fail(`--connection: no connection named '${n}' in ${cfg.source}`, 2);
    const key = await loadDevIssuerKey(devIssuerKeyFile(cfg));
    const token = await signDevToken(key, devIssuerUrl(cfg.publicUrl), {
      subject: opts.sub,
      email: opts.email,
      name: opts.name,
      groups: opts.groups.split(",").map((g) => g.trim()).filter(Boolean),
      audience: names.map((n) => resourceUrl(cfg.publicUrl, n)),
      ttlSeconds,
      clientId: opts.clientId,
    });
    process.stdout.write(token + "\n");
  });

program
  .command("config")
  .description("validate a configuration file and print a summary")
  .addOption(configOption)
  .option("--json", "the resolved configuration as JSON (secrets hidden)")
  .action((opts: { config?: string; json?: boolean }) => {
    const cfg = config(opts);
    if (opts.json) return void process.stdout.write(JSON.stringify(cfg, null, 2) + "\n");
    process.stdout.write(`${cfg.source}: valid (version ${cfg.version}, ${cfg.connections.length} connection(s): ${cfg.connections.map((c) => `${c.name} [${c.upstream.type}]`).join(", ")})\n`);
  });

function parseSince(text: string): Date {
  const rel = /^(\d+)([smhd])$/.exec(text);
  if (rel) return new Date(Date.now() - Number(rel[1]) * { s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 }[rel[2] as "s"]);
  const d = new Date(text);
  if (Number.isNaN(d.getTime())) fail(`--since: '${text}' is neither an ISO time nor a duration like 30m, 2h, 7d`, 2);
  return d;
}

function printTable(head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  process.stdout.write([line(head), ...rows.map(line)].join("\n") + "\n");
}

program.parseAsync().catch((err: unknown) => {
  if (err instanceof ConfigError) fail(`${err.message}\nThe gateway did not start: fix the configuration and try again.`, 2);
  fail((err as Error).message ?? String(err));
});
