#!/usr/bin/env node
// The `countersign` command. Commands that read evidence (sessions, replay) read the database
// directly; `start` runs the gateway; `migrate` applies the schema.
import { Command, Option } from "commander";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { ConfigError, findConfigFile, loadConfigFile, type GatewayConfig } from "./config/load.js";
import { redactUrl } from "./store/url.js";
import { redactConfig } from "./config/redact.js";
import { configProblems, configWarnings } from "./config/checks.js";
import { readEmbeddedConnection, startEmbeddedDatabase } from "./store/embedded.js";
import { prepareDatabase } from "./store/prepare.js";
import { migrateDatabase } from "./store/migrate.js";
import { createLogger, resolveLogFormat } from "./log.js";
import { installProcessHandlers } from "./process-handlers.js";
import { assertPortFree } from "./port-check.js";
import { progressFor } from "./progress.js";
import { registerApprovalsCommand } from "./approvals/command.js";
import { VERSION } from "./version.js";

const program = new Command()
  .name("countersign")
  .description("A gateway in front of MCP servers that records, masks, blocks and holds tool calls for approval.")
  .version(VERSION);

/** Set by `start`: only then does a configuration error mean that the gateway did not start. */
let startingGateway = false;

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

/** The hint `withDb` gives, for commands that open their own pool: only when the database is unreachable. */
function unreachableHint(message: string): string {
  return /ECONNREFUSED|ENOTFOUND|ETIMEDOUT|Can't reach database server/.test(message)
    ? ". Is it running (for the embedded one: is the gateway started)?"
    : "";
}

async function withDb<T>(opts: { config?: string }, fn: (db: import("./store/client.js").Db) => Promise<T>): Promise<T> {
  const cfg = config(opts);
  const url = evidenceDatabaseUrl(cfg);
  const { createDb } = await import("./store/client.js"); // the Prisma client: only for commands that read
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
  .option("--reload-on-change <seconds>", "re-read the configuration file when its content changes, checked this often (a mounted ConfigMap); 0: only on SIGHUP or `countersign reload`", "0")
  .action(async (opts: { config?: string; reloadOnChange: string }) => {
    startingGateway = true;
    // The gateway's modules (Fastify, Prisma, the MCP SDK: seconds on a busy machine) load while
    // the configuration is read, the ports checked, the database started (initdb on a first
    // start) and its migrations checked.
    const gatewayModule = import("./gateway.js");
    gatewayModule.catch(() => {}); // awaited below, where a failure is reported
    const cfg = config(opts);
    const say = (line: string) => process.stderr.write(`countersign: ${line}\n`);
    // A busy port is reported before anything slow (database, migrations), with the setting to change.
    try {
      await assertPortFree(cfg.server.host, cfg.server.port, `PORT=<port> (or server.port in ${cfg.source})`);
      if (cfg.cluster.internalPort > 0) await assertPortFree(cfg.cluster.internalHost ?? cfg.server.host, cfg.cluster.internalPort, `COUNTERSIGN_INTERNAL_PORT=<port> (or cluster.internalPort in ${cfg.source})`);
      if (cfg.metrics.enabled && cfg.metrics.port > 0) await assertPortFree(cfg.server.host, cfg.metrics.port, `COUNTERSIGN_METRICS_PORT=<port> (or metrics.port in ${cfg.source})`);
    } catch (err) {
      fail(`${(err as Error).message}. The gateway did not start.`);
    }
    const log = createLogger(cfg.log.level, process.stdout, resolveLogFormat(cfg.log.format));
    if (cfg.quickstart) say(`using the bundled quick-start configuration (${cfg.source})`);

    // Signal handlers first: a Ctrl-C during start-up stops the gateway as soon as it is up (the
    // embedded PostgreSQL runs in its own process group, so the signal reaches only this process).
    let gw: import("./gateway.js").Gateway | undefined;
    // An error nothing caught (gateway/process-handlers.ts): a rejection is logged and counted, an
    // exception stops the gateway gracefully and exits 1.
    let rejectionsBeforeStart = 0;
    installProcessHandlers({
      log,
      countRejection: () => (gw ? gw.metrics.unhandledRejections.inc() : rejectionsBeforeStart++),
      stop: () => gw?.stop(),
      exit: (code) => process.exit(code),
    });
    let pending: string | undefined;
    let signals = 0;
    const shutdown = (signal: string) => {
      if (signals++ > 0) {
        say("second signal: exiting now");
        process.exit(1);
      }
      if (!gw) {
        pending = signal;
        say(`${signal}: stopping as soon as start-up finishes (again to exit now)`);
        return;
      }
      say(`${signal}: finishing in-flight calls and shutting down`);
      const t0 = performance.now();
      gw.stop().then(
        () => {
          say(`stopped in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
          process.exit(0);
        },
        (err: unknown) => {
          log.error({ err }, "shutdown failed");
          say(`shutdown failed: ${(err as Error).message ?? String(err)}`);
          process.exit(1);
        },
      );
    };
    process.on("SIGTERM", () => shutdown("SIGTERM"));
    process.on("SIGINT", () => shutdown("SIGINT"));

    const database = await prepareDatabase(cfg, say);
    let startGateway: typeof import("./gateway.js").startGateway;
    try {
      ({ startGateway } = await gatewayModule);
    } catch (err) {
      if (database.embedded?.owned) await database.embedded.stop().catch(() => {});
      throw err;
    }
    gw = await startGateway(cfg, { log, progress: say, database });
    if (rejectionsBeforeStart > 0) gw.metrics.unhandledRejections.inc(rejectionsBeforeStart);
    const names = cfg.connections.map((c) => c.name);
    process.on("SIGHUP", () => {
      gw!.reload({ kind: "signal", subject: `local operator (SIGHUP to pid ${process.pid})` }).then(
        (r) => say(r.applied ? `configuration reloaded (${r.changes.length} change(s))` : `reload refused, the running configuration stays:\n  - ${r.problems.join("\n  - ")}`),
        (err: unknown) => {
          log.error({ err }, "reload failed");
          say(`reload failed: ${(err as Error).message ?? String(err)}`);
        },
      );
    });
    if (pending) return shutdown(pending);
    const watchSeconds = opts.reloadOnChange === "0" ? 0 : positiveInt("--reload-on-change", opts.reloadOnChange, 3600);
    if (watchSeconds > 0 && !cfg.quickstart) watchConfigFile(cfg.source, cfg.hash, watchSeconds, (hash) =>
      gw!.reload({ kind: "signal", subject: `file watcher (${cfg.source} changed to sha256 ${hash.slice(0, 12)})` }).then(
        (r) => void say(r.applied ? `configuration file changed: reloaded (${r.changes.length} change(s))` : `configuration file changed: reload refused, the running configuration stays:\n  - ${r.problems.join("\n  - ")}`),
        (err) => say(`reload failed: ${String(err)}`),
      ),
    );
    // Where `countersign reload` finds this gateway (removed at exit).
    const { writeRunningFile } = await import("./config/running.js");
    const removeRunningFile = writeRunningFile(cfg.source, cfg.database.embeddedDataDir, { address: gw.address, publicUrl: cfg.publicUrl });
    process.once("exit", removeRunningFile);
    // One line on stdout once ready, so scripts can wait for it; what a person needs goes to stderr.
    process.stdout.write(`Countersign ready at ${gw.address} — MCP endpoint: ${gw.address}/mcp/${names[0]}\n`);
    say(`connections: ${names.map((n) => `${gw!.address}/mcp/${n} (legacy SSE: ${gw!.address}/sse/${n})`).join(", ")}`);
    if (cfg.console.enabled) say(`web console: ${gw!.address}/console/ (approvals inbox, sessions and replay, evidence)`);
    if (cfg.oauth.enabled) say(`MCP clients without a token log in through the browser (authorization server ${cfg.publicUrl}/.well-known/oauth-authorization-server)`);
    if (gw.devToken) {
      say(`a token from the built-in dev issuer (sub alice, groups dev,oncall; valid 8 h; make others with \`npm run countersign -- token --sub <who> --groups <g>\`):`);
      process.stderr.write(`\n${gw.devToken}\n\n`);
    }
    if (cfg.quickstart) {
      say(`try it:  npx @modelcontextprotocol/inspector@0.17 --cli ${gw.address}/mcp/${names[0]} --transport http --method tools/list${gw.devToken ? ` --header "Authorization: Bearer <token above>"` : ""}`);
      say(`then:    npm run countersign -- sessions   and   npm run countersign -- replay <session-id>`);
      say("stop:    Ctrl-C (finishes in-flight calls, records the stop, then stops the embedded PostgreSQL)");
    }
  });

program
  .command("migrate")
  .description("apply the database migrations (DATABASE_URL, the config's database.url, or the embedded database)")
  .addOption(configOption)
  .option("--json", "the result as JSON")
  .action(async (opts: { config?: string; json?: boolean }) => {
    const cfg = config(opts);
    const say = (l: string) => process.stderr.write(`countersign: ${l}\n`);
    let url = cfg.database.url?.reveal();
    let stop: (() => Promise<void>) | undefined;
    if (!url) {
      const embedded = await startEmbeddedDatabase(cfg.database.embeddedDataDir, say);
      url = embedded.connection.url;
      if (embedded.owned) stop = embedded.stop;
    }
    try {
      say(`checking migrations of ${redactUrl(url)}`);
      const bar = progressFor("migrations", opts);
      const result = await migrateDatabase(url, {
        progress: (p) => {
          if (p.phase === "applying") bar.update(p.index - 1, p.total, p.name);
          else say(`applied ${p.index}/${p.total}: ${p.name} (${Math.round(p.ms ?? 0)} ms)`);
        },
      }).catch((err: unknown) => fail(`${(err as Error).message}`));
      bar.done();
      if (opts.json) process.stdout.write(JSON.stringify({ applied: result.applied, alreadyApplied: result.alreadyApplied, via: result.via }, null, 2) + "\n");
      else process.stdout.write(`${result.output}\n`);
    } finally {
      await stop?.();
    }
  });

/**
 * A POST to the running gateway's admin API, as a member of admin.groups: the address is the
 * running gateway's (not the file's), the token from --token or $COUNTERSIGN_TOKEN.
 */
async function postAdmin(path: string, opts: { config?: string; url?: string; token?: string }, body?: unknown): Promise<Response> {
  const token = opts.token ?? process.env.COUNTERSIGN_TOKEN;
  if (!token) fail("no token: pass --token or set COUNTERSIGN_TOKEN (with the dev issuer: `countersign token --admin --sub <you> --groups <admin group>`)", 2);
  const { reloadTarget } = await import("./config/running.js");
  const target = reloadTarget(findConfigFile(opts.config), opts.url);
  const base = target.url.replace(/\/+$/, "");
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) };
  try {
    return await fetch(`${base}${path}`, { method: "POST", headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  } catch (err) {
    return fail(`cannot reach the gateway at ${base} (${target.from}): ${(err as Error).message}; is it running? (--url sets where)`);
  }
}

const sessionsCommand = program
  .command("sessions")
  .description("list recent sessions (and `sessions close` to close open ones)")
  .addOption(configOption)
  .option("--connection <name>", "only this connection")
  .option("--since <time>", "only sessions opened at or after this ISO time (or 1h, 30m, 7d ago)")
  .option("--method <method>", "only sessions with a message of this method, e.g. tools/call")
  .option("--who <email|subject>", "only sessions of this caller (e-mail address or subject)")
  .option("--group <group>", "only sessions of callers in this group")
  .option("--request <id>", "only the session of this HTTP request id (the log's reqId, X-Request-Id)")
  .option("--limit <n>", "at most this many", "50")
  .option("--json", "JSON for machines")
  .action(async (opts: { config?: string; connection?: string; since?: string; method?: string; who?: string; group?: string; request?: string; limit: string; json?: boolean }) => {
    const since = opts.since ? parseSince(opts.since) : undefined;
    const limit = positiveInt("--limit", opts.limit, 10_000);
    const { listSessions } = await import("./audit/replay.js");
    const rows = await withDb(opts, (db) =>
      listSessions(db, { connection: opts.connection, since, method: opts.method, who: opts.who, group: opts.group, requestId: opts.request, limit }),
    );
    if (opts.json) return void process.stdout.write(JSON.stringify(rows, null, 2) + "\n");
    if (rows.length === 0) return void process.stdout.write("no sessions match\n");
    const table = rows.map((r) => [r.createdAt.replace("T", " ").slice(0, 19), r.id, r.connection, String(r.messages), r.closeReason ?? (r.closedAt ? "closed" : "open"), r.client ?? "", r.email ?? r.subject ?? ""]);
    printTable(["OPENED (UTC)", "SESSION", "CONNECTION", "MSGS", "STATE", "CLIENT", "WHO"], table);
  });

sessionsCommand
  .command("close")
  .description("close an open session, or every idle one, on the running gateway (admin API; needs a token of a member of admin.groups)")
  .argument("[session-id]", "the session to close")
  .option("--idle", "close every idle session (nothing in flight, no held call, no open stream)")
  .addOption(configOption)
  .option("--url <url>", "the gateway's base URL (default: the running gateway's address, else $COUNTERSIGN_PUBLIC_URL, else the file's publicUrl)")
  .option("--token <token>", "bearer token with audience <publicUrl>/admin (default: $COUNTERSIGN_TOKEN)")
  .option("--json", "the result as JSON")
  .action(async (sessionId: string | undefined, opts: { idle?: boolean; config?: string; url?: string; token?: string; json?: boolean }) => {
    if (!sessionId === !opts.idle) fail("name one session id, or pass --idle", 2);
    const res = await postAdmin("/admin/sessions/close", opts, sessionId ? { id: sessionId } : { idle: true });
    const body = (await res.json().catch(() => ({}))) as { closed?: string[]; error?: { message?: string; data?: { code?: string; detail?: string } } };
    if (opts.json) process.stdout.write(JSON.stringify(body, null, 2) + "\n");
    else if (res.ok) process.stdout.write(body.closed?.length ? `closed ${body.closed.length} session(s):\n${body.closed.map((id) => `  ${id}`).join("\n")}\n` : "no idle session to close\n");
    else process.stdout.write(`HTTP ${res.status}: ${body.error?.data?.code ?? ""} ${body.error?.message ?? "no details"}${body.error?.data?.detail ? ` (${body.error.data.detail})` : ""}\n`);
    process.exit(res.ok ? 0 : 1);
  });

program
  .command("replay")
  .description("print one session's exchange in order")
  .argument("<session-id>")
  .addOption(configOption)
  .option("--json", "JSON for machines (full payloads)")
  .action(async (sessionId: string, opts: { config?: string; json?: boolean }) => {
    const { loadExchange, formatExchange, timeline } = await import("./audit/replay.js");
    const x = await withDb(opts, (db) => loadExchange(db, sessionId));
    if (!x) fail(`no session '${sessionId}': list sessions with \`countersign sessions\``, 2);
    // JSON: the session (with the caller), and messages and events interleaved by time.
    if (opts.json) return void process.stdout.write(JSON.stringify({ session: x!.session, timeline: timeline(x!), messages: x!.messages, events: x!.events }, null, 2) + "\n");
    process.stdout.write(formatExchange(x!, process.stdout.isTTY ? process.stdout.columns : undefined) + "\n");
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
  .option("--admin", "for the admin API (audience <publicUrl>/admin) instead of connections")
  .option("--approvals", "for the approvals API (audience <publicUrl>/approvals; `countersign approvals`): give --email, the approver's identity")
  .action(async (opts: { config?: string; sub: string; email?: string; name?: string; groups: string; clientId?: string; connection?: string[]; ttl: string; admin?: boolean; approvals?: boolean }) => {
    const cfg = config(opts);
    const [{ resourceUrl }, { devIssuerUrl, loadDevIssuerKey, parseTtl, signDevToken }, { devIssuerKeyFile }, { approvalsAudience }] = await Promise.all([
      import("./auth/authenticator.js"),
      import("./auth/dev-issuer.js"),
      import("./auth/setup.js"),
      import("./approvals/routes.js"),
    ]);
    if (!cfg.auth.devIssuer.enabled) fail(`the built-in dev issuer is off in ${cfg.source}: set auth.devIssuer.enabled: true, or get a token from your identity provider`, 2);
    let ttlSeconds: number;
    try {
      ttlSeconds = parseTtl(opts.ttl);
    } catch (err) {
      fail((err as Error).message, 2);
    }
    if (opts.admin && opts.approvals) fail("--admin and --approvals are different audiences: make one token for each", 2);
    if (opts.approvals && !opts.email) fail("--approvals needs --email: approvers are identified by e-mail (approvals.groups)", 2);
    const names = opts.connection ?? cfg.connections.map((c) => c.name);
    for (const n of names) if (!cfg.connections.some((c) => c.name === n)) fail(`--connection: no connection named '${n}' in ${cfg.source}`, 2);
    const key = await loadDevIssuerKey(devIssuerKeyFile(cfg));
    const token = await signDevToken(key, devIssuerUrl(cfg.publicUrl), {
      subject: opts.sub,
      email: opts.email,
      name: opts.name,
      groups: opts.groups.split(",").map((g) => g.trim()).filter(Boolean),
      audience: opts.admin ? [`${cfg.publicUrl}/admin`] : opts.approvals ? [approvalsAudience(cfg.publicUrl)] : names.map((n) => resourceUrl(cfg.publicUrl, n)),
      ttlSeconds,
      clientId: opts.clientId,
    });
    process.stdout.write(token + "\n");
  });

program
  .command("reload")
  .description("ask the running gateway to re-read its configuration (admin API; needs a token of a member of admin.groups)")
  .addOption(configOption)
  .option("--url <url>", "the gateway's base URL (default: the running gateway's address, else $COUNTERSIGN_PUBLIC_URL, else the file's publicUrl)")
  .option("--token <token>", "bearer token with audience <publicUrl>/admin (default: $COUNTERSIGN_TOKEN)")
  .option("--json", "the result as JSON")
  .action(async (opts: { config?: string; url?: string; token?: string; json?: boolean }) => {
    // The gateway validates the file (and records a refusal); here it is not loaded, so neither its
    // secrets nor a just-edited server.port matter: the address is the running gateway's.
    const res = await postAdmin("/admin/reload", opts);
    const body = (await res.json().catch(() => ({}))) as { applied?: boolean; changes?: Array<{ path: string }>; problems?: string[]; restartRequired?: string[]; error?: { message?: string; data?: { code?: string; detail?: string } } };
    if (opts.json) process.stdout.write(JSON.stringify(body, null, 2) + "\n");
    else if (body.applied) process.stdout.write(`reloaded: ${body.changes?.length ?? 0} change(s)${body.changes?.length ? `\n${body.changes.map((c) => `  ${c.path}`).join("\n")}` : ""}\n`);
    else if (body.problems) process.stdout.write(`refused (recorded as config_changed/${body.restartRequired?.length ? "refused" : "rejected"}); the running configuration stays:\n${body.problems.map((p) => `  - ${p}`).join("\n")}\n`);
    else process.stdout.write(`HTTP ${res.status}: ${body.error?.data?.code ?? ""} ${body.error?.message ?? "no details"}${body.error?.data?.detail ? ` (${body.error.data.detail})` : ""}\n`);
    process.exit(res.ok ? 0 : 1);
  });

program
  .command("config")
  .description("validate a configuration file and print a summary")
  .addOption(configOption)
  .option("--json", "the resolved configuration as JSON (secrets hidden)")
  .option("--no-secrets", "check the structure without reading any secret (CI, where the secrets are absent): references are checked for form, values and keys are not")
  .action(async (opts: { config?: string; json?: boolean; secrets: boolean }) => {
    const cfg = loadConfigFile(findConfigFile(opts.config), process.env, { secrets: opts.secrets });
    // What the gateway builds from the file at start (maskers, checkpoint keys) is checked too.
    const { prepareRuntime } = await import("./gateway.js");
    const problems = [...prepareRuntime(cfg, { secrets: opts.secrets }), ...configProblems(cfg)];
    const warnings = configWarnings(cfg);
    if (problems.length) fail(`${cfg.source}: invalid configuration:\n  - ${problems.join("\n  - ")}\nFix the configuration and try again.`, 2);
    if (opts.json) return void process.stdout.write(JSON.stringify({ ...(redactConfig(JSON.parse(JSON.stringify(cfg))) as object), warnings }, null, 2) + "\n");
    for (const w of warnings) process.stderr.write(`countersign: warning: ${w}\n`);
    process.stdout.write(`${cfg.source}: valid${opts.secrets ? "" : " in structure (secrets not read)"}${warnings.length ? `, with ${warnings.length} warning(s)` : ""} (version ${cfg.version}, ${cfg.connections.length} connection(s): ${cfg.connections.map((c) => `${c.name} [${c.upstream.type}]`).join(", ")})\n`);
  });

// Audit chain: `verify` recomputes it and checks the signed checkpoints (exit 1 on any failure);
// `checkpoint` seals what is queued and signs the head now (gateway/audit/chain/commands.ts).
program
  .command("verify")
  .description("recompute the tamper-evident audit chain and check its signed checkpoints; exits non-zero on any failure")
  .addOption(configOption)
  .option("--since <time>", "start at the last checkpoint at or before this ISO time (or 1h, 7d ago)")
  .option("--until <time>", "stop at the last record sealed by this ISO time")
  .option("--checkpoints <dir>", "also check the checkpoint files in this directory (default: audit.checkpoint.directory)")
  .option("--require-anchor", "fail unless a recent checkpoint outside the database (the checkpoint directory) vouches for the chain")
  .option("--allow-missing", "report rows deleted before they were sealed as a warning instead of a failure")
  .option("--json", "JSON for machines")
  .action(async (opts: { config?: string; since?: string; until?: string; checkpoints?: string; json?: boolean; requireAnchor?: boolean; allowMissing?: boolean }) => {
    const { verifyCommand, UsageError } = await import("./audit/chain/commands.js");
    const cfg = config(opts);
    const url = evidenceDatabaseUrl(cfg);
    const code = await verifyCommand(cfg, url, opts).catch((err: unknown) =>
      fail(err instanceof UsageError ? err.message : `cannot verify the audit chain at ${redactUrl(url)}: ${(err as Error).message.split("\n").pop()}${unreachableHint((err as Error).message)}`, 2),
    );
    process.exitCode = code;
  });

program
  .command("checkpoint")
  .description("sign the audit chain's head now (the gateway also does so every audit.checkpoint.intervalMinutes)")
  .addOption(configOption)
  .option("--json", "JSON for machines")
  .action(async (opts: { config?: string; json?: boolean }) => {
    const { checkpointCommand, UsageError } = await import("./audit/chain/commands.js");
    const cfg = config(opts);
    const url = evidenceDatabaseUrl(cfg);
    await checkpointCommand(cfg, url, opts).catch((err: unknown) =>
      fail(err instanceof UsageError ? err.message : `cannot take a checkpoint at ${redactUrl(url)}: ${(err as Error).message.split("\n").pop()}${unreachableHint((err as Error).message)}`, 2),
    );
  });

// ── tool pinning ─────────────────────────────────────────────────────────────────────────────
// Lists a connection's pinned tools (with what changed) and accepts changed definitions as the
// new pins, recorded with who did it (gateway/pinning/commands.ts). Database-direct, like approvals.
const toolsCommand = program.command("tools").description("list a connection's pinned tool definitions and re-pin changed ones");

async function runToolsCommand(connection: string, opts: { config?: string }, run: (m: typeof import("./pinning/commands.js"), cfg: GatewayConfig, url: string) => Promise<void>): Promise<void> {
  const m = await import("./pinning/commands.js");
  const cfg = config(opts);
  const url = evidenceDatabaseUrl(cfg);
  await run(m, cfg, url).catch((err: unknown) =>
    fail(err instanceof m.UsageError ? err.message : `cannot read the tool pins at ${redactUrl(url)}: ${(err as Error).message.split("\n").pop()}${unreachableHint((err as Error).message)}`, 2),
  );
}

toolsCommand
  .command("list <connection>")
  .description("the connection's pinned tools: hash, when and by whom pinned, and ok or changed (with the diff)")
  .addOption(configOption)
  .option("--json", "JSON for machines")
  .action((connection: string, opts: { config?: string; json?: boolean }) => runToolsCommand(connection, opts, (m, cfg, url) => m.toolsListCommand(cfg, url, connection, opts)));

toolsCommand
  .command("pin <connection>")
  .description("accept the current definitions of the connection's changed tools as their new pins (recorded with who did it)")
  .addOption(configOption)
  .option("--tool <name>", "only this tool")
  .option("--as <email>", "the admin re-pinning (recorded; default: the local user)")
  .option("--json", "JSON for machines")
  .action((connection: string, opts: { config?: string; tool?: string; as?: string; json?: boolean }) => runToolsCommand(connection, opts, (m, cfg, url) => m.toolsPinCommand(cfg, url, connection, opts)));

// Weekly evidence digest on demand (gateway/evidence/command.ts); the gateway also generates it on schedule.
program
  .command("digest")
  .description("generate, sign and record the SOC 2 evidence digest of an ISO week (default: the last complete week)")
  .addOption(configOption)
  .option("--week <week>", "ISO week in digest.timeZone, e.g. 2026-W47")
  .addOption(new Option("--format <format>", "output format").choices(["md", "html", "json"]).default("md"))
  .option("--post", "also post it to digest.slackChannel (summary, with the Markdown report attached)")
  .option("--out <file>", "write the report to this file instead of stdout")
  .option("--verify <file>", "check a digest saved with --format json against the configured checkpoint keys (exit 1 if invalid)")
  .action(async (opts: { config?: string; week?: string; format?: string; post?: boolean; out?: string; verify?: string }) => {
    const { digestCommand, verifyDigestFile, DigestUsageError } = await import("./evidence/command.js");
    const cfg = config(opts);
    if (opts.verify) {
      try {
        process.exitCode = verifyDigestFile(cfg, opts.verify);
      } catch (err) {
        fail(err instanceof DigestUsageError ? err.message : String(err), 2);
      }
      return;
    }
    const url = evidenceDatabaseUrl(cfg);
    const code = await digestCommand(cfg, url, opts).catch((err: unknown) =>
      fail(err instanceof DigestUsageError ? err.message : `cannot generate the digest from ${redactUrl(url)}: ${(err as Error).message.split("\n").pop()}${unreachableHint((err as Error).message)}`, 2),
    );
    process.exitCode = code;
  });

// ── approvals (fallback without Slack) ──────────────────────────────────────────────────────
// Through the gateway's approvals API with a token (same rules as Slack); `--database --as` is the
// break-glass path (gateway/approvals/command.ts).
registerApprovalsCommand(program, { config, fail, printTable, evidenceDatabaseUrl, configOption });

function parseSince(text: string): Date {
  const rel = /^(\d+)([smhd])$/.exec(text);
  if (rel) return new Date(Date.now() - Number(rel[1]) * { s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 }[rel[2] as "s"]);
  const d = new Date(text);
  if (Number.isNaN(d.getTime())) fail(`--since: '${text}' is neither an ISO time nor a duration like 30m, 2h, 7d`, 2);
  return d;
}

/** Calls `onChange` once per new content of `file` (by SHA-256), polled every `seconds`. */
function watchConfigFile(file: string, initialHash: string, seconds: number, onChange: (hash: string) => Promise<unknown>): void {
  let seen = initialHash;
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    let hash: string;
    try {
      hash = createHash("sha256").update(readFileSync(file)).digest("hex");
    } catch {
      return; // mid-swap (a ConfigMap update) or briefly missing: look again next time
    }
    if (hash === seen) return;
    seen = hash;
    busy = true;
    void onChange(hash).finally(() => (busy = false));
  }, seconds * 1000);
  timer.unref();
}

/** A whole number from 1 to max, or a usage error naming the option (never silently a default). */
function positiveInt(option: string, text: string, max: number): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1 || Number(text) > max) fail(`${option}: '${text}' is not a whole number from 1 to ${max}`, 2);
  return Number(text);
}

function printTable(head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  process.stdout.write([line(head), ...rows.map(line)].join("\n") + "\n");
}

program.parseAsync().catch((err: unknown) => {
  if (err instanceof ConfigError) fail(`${err.message}\n${startingGateway ? "The gateway did not start: fix" : "Fix"} the configuration and try again.`, 2);
  fail((err as Error).message ?? String(err));
});
