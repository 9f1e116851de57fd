// Starting and stopping a gateway instance: the database (given or embedded), migrations, this
// instance's row, the recorder, the sessions, and the HTTP service, then the reverse on shutdown.
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { FastifyInstance } from "fastify";
import { Recorder } from "./audit/recorder.js";
import { RejectionLog } from "./audit/rejections.js";
import { startAuditChain, type AuditChain } from "./audit/chain/service.js";
import { ConfigError, type GatewayConfig } from "./config/load.js";
import { redactUrl, type Db } from "./store/client.js";
import { openStore } from "./store/pools.js";
import { markInstanceStopped, registerInstance } from "./store/instances.js";
import type { EmbeddedDatabase } from "./store/embedded.js";
import { prepareDatabase, type PreparedDatabase } from "./store/prepare.js";
import { setLogLevel, type Logger } from "./log.js";
import { SessionRegistry } from "./mcp/sessions.js";
import { Metrics } from "./metrics.js";
import { loadSqlParser, policyUsesSql } from "./policy/index.js";
import { ConfigReloader, type ReloadActor, type ReloadResult } from "./config/reload.js";
import { ruleAsksConfirm, startApprovals, type Approvals } from "./approvals/setup.js";
import { createMasker, type Masker } from "./masking/index.js";
import { PgRestorer } from "./masking/restore/index.js";
import { CheckpointKeyError, loadCheckpointKeys } from "./audit/chain/keys.js";
import { definitionChangeAlert } from "./pinning/alert.js";
import { consoleSessionUrl } from "./console/links.js";
import { startDigestSchedule } from "./evidence/setup.js";
import type { DigestScheduler } from "./evidence/scheduler.js";
import { loadArgumentsKey } from "./approvals/arguments-key.js";
import { createIdentityLayer, type IdentityLayer } from "./auth/setup.js";
import { resourceUrl } from "./auth/authenticator.js";
import { signDevToken } from "./auth/dev-issuer.js";
import { buildServer } from "./server.js";
import { registerConsole } from "./console/plugin.js";
import { registerAuthorizationServer } from "./oauth/plugin.js";
import { ToolPins } from "./pinning/service.js";
import type { EventRecord } from "./audit/recorder.js";
import { ClusterRelay } from "./cluster/relay.js";
import { OwnerLookup } from "./cluster/owner-lookup.js";
import { startRelayServer } from "./cluster/relay-server.js";
import { startMetricsListener } from "./metrics-listener.js";
import { startLiveness } from "./cluster/liveness.js";
import { VERSION } from "./version.js";
import { CloseSteps, ShutdownError } from "./lifecycle.js";
import { systemClock, type Clock } from "./clock.js";
import { applyKeyring, buildKeyring, describeKeyring, keyringProblems, maskingKey, upstreamJwtKeys, upstreamJwtProblems, type Keyring } from "./keys/keyring.js";

export interface Gateway {
  config: GatewayConfig;
  app: FastifyInstance;
  db: Db;
  recorder: Recorder;
  sessions: SessionRegistry;
  /** The keys of the requestState seal, the console and the relay, rotated in place by a reload. */
  keyring: Keyring;
  instanceId: string;
  /** The address the service listens on, e.g. http://127.0.0.1:8080 */
  address: string;
  databaseUrl: string;
  embedded?: EmbeddedDatabase | undefined;
  identity: IdentityLayer;
  metrics: Metrics;
  /** The audit chain's sealer and checkpoints (gateway/audit/chain). */
  auditChain: AuditChain;
  approvals?: Approvals | undefined;
  /** The weekly evidence digest's schedule, with digest.enabled. */
  digest?: DigestScheduler | undefined;
  /** With the built-in dev issuer on: a token ready to paste (sub alice, groups dev,oncall). */
  devToken?: string | undefined;
  /** Re-reads the configuration file and applies it (validated first; refused whole on any problem). */
  reload(actor: ReloadActor): Promise<ReloadResult>;
  /** The configuration in force (changes on reload). */
  currentConfig(): GatewayConfig;
  stop(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  log: Logger;
  /** Progress lines for a person (start-up steps); default: the log. */
  progress?: (line: string) => void;
  /** The database, already prepared (db/prepare.ts): `countersign start` does that while this module loads. */
  database?: PreparedDatabase;
  /** The clock of approvals' timers, tasks, sessions and the recorder (gateway/clock.ts); default: the system's. */
  clock?: Clock | undefined;
}

/**
 * What the gateway builds from a configuration before running it, checked before anything
 * starts (and before a reload applies): each connection's masker (attached to the connection,
 * which the data path reads) and the checkpoint keys. Each problem starts with its key path.
 * `secrets: false` (`countersign config --no-secrets`): keys were not read, so they are not checked.
 */
export function prepareRuntime(config: GatewayConfig, opts: { secrets?: boolean } = {}): string[] {
  const problems: string[] = [];
  // The active masking key (keys.ring.masking, else keys.maskingHmac): a reload rebuilds the maskers with it.
  const tokenKey = opts.secrets === false ? undefined : maskingKey(config);
  config.connections.forEach((c, i) => {
    c.masker = undefined;
    if (!c.masking.enabled) return;
    try {
      c.masker = createMasker({
        disable: c.masking.disable,
        personalData: c.masking.personalData,
        ip: c.masking.ip,
        fields: c.masking.fields.map((f) => (f.type ? { path: f.path, type: f.type } : { path: f.path })),
        customPatterns: c.masking.patterns.map((x) => ({ id: x.id, pattern: x.pattern, ...(x.flags ? { flags: x.flags } : {}), ...(x.group !== undefined ? { group: x.group } : {}) })),
        ...(tokenKey ? { tokenKey } : {}),
      });
    } catch (err) {
      problems.push(`connections[${i}].masking: ${(err as Error).message}`);
    }
  });
  if (opts.secrets !== false && config.audit.checkpoint) {
    try {
      loadCheckpointKeys(config, false);
    } catch (err) {
      if (!(err instanceof CheckpointKeyError)) throw err;
      problems.push(...err.problems);
    }
  }
  return problems;
}

export async function startGateway(config: GatewayConfig, opts: StartOptions): Promise<Gateway> {
  const { log } = opts;
  const progress = opts.progress ?? ((line: string) => log.info(line));
  const clock = opts.clock ?? systemClock;
  const runtimeProblems = prepareRuntime(config);
  if (runtimeProblems.length > 0) throw new ConfigError(config.source, runtimeProblems);
  const { url, embedded } = opts.database ?? (await prepareDatabase(config, progress));
  // Each part registers what stops it as it starts; a stop (or a failed start) runs them in the
  // reverse order, each isolated (gateway/lifecycle.ts).
  const steps = new CloseSteps();
  if (embedded?.owned) {
    steps.onClose("embedded PostgreSQL", async () => {
      await embedded.stop();
      progress("embedded PostgreSQL stopped");
    }, 30_000);
  }
  try {
    // Every connection to the database: two pools and one LISTEN hub (gateway/store/pools.ts).
    const store = openStore(url, { log, hotPoolSize: config.database.hotPoolSize, backgroundPoolSize: config.database.backgroundPoolSize, commitTimeoutMs: config.database.commitTimeoutMs });
    steps.onClose("database pools", () => store.close());
    const db = store.db;
    const instanceId = `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
    try {
      const relayUrl = config.cluster.internalPort > 0 ? config.cluster.advertiseUrl : null;
      await registerInstance(db, { id: instanceId, host: hostname(), pid: process.pid, version: VERSION, relayUrl });
    } catch (err) {
      throw new Error(`cannot write to the database at ${redactUrl(url)}: ${(err as Error).message.split("\n").pop()}. Is it running, and are the migrations applied (countersign migrate)?`, { cause: err });
    }
    steps.onClose("instance row (stoppedAt)", () => markInstanceStopped(db, instanceId));

    // PostgreSQL's SQL parser (WebAssembly, ~20 MB) only where a policy classifies SQL.
    if (config.connections.some((c) => policyUsesSql(c.policy))) await loadSqlParser();
    const metrics = new Metrics();
    // The recorder's INSERTs go to the hot pool, not through Prisma (see Recorder).
    const auditPool = store.hot;
    let lastRefusalLog = 0;
    const recorder = new Recorder(auditPool, {
      commitTimeoutMs: config.database.commitTimeoutMs,
      clock,
      onStatusChange: (s) => {
        metrics.auditHealthy.set(s.healthy ? 1 : 0);
        if (s.healthy) log.warn("audit store recovered; traffic flows again");
        else log.error({ error: s.lastError }, "audit store unavailable: failing closed");
      },
      onBatch: (rows, ms, ok) => {
        metrics.auditCommit.observe(ms / 1000);
        if (ok) metrics.auditBatchRows.observe(rows);
        else metrics.auditFailures.inc();
      },
      onCommitted: (messages, events) => metrics.committed(messages, events),
      // The refusals cannot be recorded in the store they are about: the log says so, once a second at most.
      onRefused: (reason, s) => {
        const now = Date.now();
        if (now - lastRefusalLog < 1000) return;
        lastRefusalLog = now;
        log.warn({ reason, refused: s.refused, queuedRows: s.queuedRows, queuedBytes: s.queuedBytes }, reason === "queue_full" ? "audit queue full: refusing new records" : "audit store down: refusing new records until a probe commit succeeds");
      },
      onRowRejected: (error) => log.error({ error }, "audit store refused one record; its caller failed closed, the rest of its batch was committed"),
    });
    steps.onClose("recorder", () => recorder.close());
    // Audit chain: seal committed records, sign checkpoints (only on the replica holding the lock).
    // It stops after the recorder's drain (below), so it seals the last records.
    const auditChain = startAuditChain(config, url, log);
    steps.onClose("audit chain", () => auditChain.stop(), 30_000);
    // Every part started after this point may record while it stops: the recorder drains after them.
    steps.onClose("recorder drain", async () => {
      const stopped = await recorder.event({ type: "gateway", reason: "stopped", detail: { instanceId } }).then(() => undefined, (err: unknown) => err);
      await recorder.drain();
      if (stopped !== undefined) throw new Error("the stop could not be recorded (gateway/stopped)", { cause: stopped });
      progress("sessions closed and the stop recorded (gateway/stopped)");
    }, 30_000);
    const rejections = new RejectionLog(recorder);
    steps.onClose("rejection log", () => rejections.stop());
    // One keyring for the requestState seal, the console's cookies and the relay (gateway/keys): a reload rotates it in place.
    const keyring = buildKeyring(config, (line) => log.warn(`WARNING: ${line}`));
    log.info({ keyring: describeKeyring(keyring) }, "keyring loaded");
    const identity = await createIdentityLayer(config, recorder, log);
    steps.onClose("identity", () => identity.stop());
    // The configuration in force: what every reader below consults, replaced by each applied reload.
    let live = config;
    const connectionNow = (name: string) => live.connections.find((c) => c.name === name);
    // approvals: held calls wait here for a decision taken in Slack or with the CLI.
    const maskerOf = (connection: string): Masker | undefined => connectionNow(connection)?.masker;
    const approvals = config.approvals ? await startApprovals(config.approvals, {
          pool: store.background,
          hub: store.listen,
          recorder,
          log,
          argumentsKey: loadArgumentsKey(config),
          // A held resources/read URI and a justification are masked like any content before they are stored or shown.
          maskText: (connection: string, text: string): string => maskerOf(connection)?.maskText(text).masked ?? text,
          confirmRule: (c, r) => ruleAsksConfirm(live, c, r),
          // The approval message links the caller's session to its replay in the console.
          sessionPage: config.console.enabled ? (id: string) => consoleSessionUrl(id, config.publicUrl) : undefined,
          clock,
        }) : undefined;
    if (approvals) steps.onClose("approvals", () => approvals.stop());
    // tool pinning: every replica keeps the pins in memory (decisions read no database per call).
    const pins = new ToolPins({
      pool: store.background,
      hub: store.listen,
      log,
      onEvents: (events) => metrics.committed([], events as unknown as EventRecord[]),
      // A rug pull is told to people at once (the approvals notifier: Slack), not only recorded.
      onDefinitionChanged: (c) => void approvals?.service.securityAlert(definitionChangeAlert({ ...c, onChange: connectionNow(c.connection)?.pinning.onChange ?? "hold" })),
    });
    await pins.start();
    steps.onClose("tool pins", () => pins.stop());
    // The pseudonym map: what the mask stage showed a caller, the restore stage puts back (gateway/masking/restore).
    const restorer = new PgRestorer({ pool: store.hot, keys: keyring.masking });
    steps.onClose("pseudonym map", () => restorer.close());
    const restorerSweep = setInterval(() => void restorer.sweep().catch((err: unknown) => log.warn({ err }, "pseudonym map: expired rows not swept")), 10 * 60_000);
    restorerSweep.unref();
    steps.onClose("pseudonym map sweep", () => clearInterval(restorerSweep));
    // holdForMs as a getter: each session opened after a reload takes the hold in force then.
    const sessions = new SessionRegistry(config, db, recorder, instanceId, log, identity.signer, metrics, approvals && { service: approvals.service, get holdForMs() { return approvals.holdForMs; } }, pins, restorer, clock, keyring);
    // Heartbeat, and the closing of sessions whose replica died (gateway/cluster/liveness.ts).
    const liveness = startLiveness({ relays: config.cluster.internalPort > 0, db, sessions, instanceId, deadAfterSeconds: config.cluster.deadAfterSeconds, log });
    steps.onClose("liveness", () => liveness.stop());
    // Reload: each live key (gateway/config/reload-keys.ts) is put in force here, before the reload answers.
    const reloader = new ConfigReloader(config, {
      recorder, db, log, instanceId,
      hooks: {
        prepare: async (next) => {
          // A new sql condition needs the SQL parser before its rule is applied (policy/sql.ts).
          if (next.connections.some((c) => policyUsesSql(c.policy))) await loadSqlParser();
          return [...prepareRuntime(next), ...keyringProblems(next), ...upstreamJwtProblems(next, Boolean(identity.signer))];
        },
        apply: async (next) => {
          setLogLevel(log, next.log.level);
          const keysBefore = JSON.stringify(describeKeyring(keyring));
          applyKeyring(keyring, next);
          const signerKeys = upstreamJwtKeys(next);
          if (identity.signer && signerKeys) identity.signer.replace(signerKeys);
          if (JSON.stringify(describeKeyring(keyring)) !== keysBefore) log.info({ keyring: describeKeyring(keyring) }, "keyring in force");
          const removedConnections = await sessions.applyConfig(next);
          // Adding or removing the approvals block is refused (restart-only), so both sides have it.
          if (approvals && next.approvals) approvals.apply(next.approvals);
          live = next;
          return { removedConnections };
        },
      },
    });
    const cluster = config.cluster.internalPort > 0 ? new ClusterRelay(new OwnerLookup(db, config.cluster.deadAfterSeconds), keyring.relay, instanceId) : undefined;
    const app = buildServer({ config, log, sessions, recorder, rejections, identity, metrics, reloader, approvals, cluster, pins, auditPool });
    // MCP clients log in through the browser: the gateway as its connections' authorization server.
    const authorizationServer = identity.oauthKey ? registerAuthorizationServer(app, { config, db, recorder, log, key: identity.oauthKey, consoleKeys: keyring.console, current: () => reloader.current }) : undefined;
    registerConsole(app, { config, currentConfig: () => live, db, pool: store.background, recorder, log, approvals, pins, devIssuer: identity.devIssuer, keys: keyring.console, pages: authorizationServer ? [authorizationServer.registerConsentPages] : [] }); // the web console at /console
    steps.onClose("http service", () => app.close());
    await app.listen({ host: config.server.host, port: config.server.port });
    const relayServer = cluster
      ? await startRelayServer(app, { host: config.cluster.internalHost, port: config.cluster.internalPort, keys: keyring.relay, log, rejections })
      : undefined;
    if (relayServer) {
      steps.onClose("relay listener", () => relayServer.close());
      progress(`relay listener for the other replicas at ${relayServer.address} (advertised as ${config.cluster.advertiseUrl})`);
    }
    const metricsListener = config.metrics.enabled && config.metrics.port > 0 ? await startMetricsListener(app, { host: config.server.host, port: config.metrics.port }) : undefined;
    if (metricsListener) {
      steps.onClose("metrics listener", () => metricsListener.close());
      progress(`metrics at ${metricsListener.address}/metrics`);
    }
    // The first step of a stop: refuse new work and let in-flight calls finish while the
    // listeners still answer (local sessions, and the requests this replica relays to others).
    let graceMs = 10_000;
    steps.onClose("sessions drain", () => Promise.all([sessions.shutdown(graceMs), cluster?.drain(graceMs)]), () => graceMs + 15_000);
    const addr = app.server.address();
    const port = typeof addr === "object" && addr ? addr.port : config.server.port;
    const host = config.server.host.includes(":") ? `[${config.server.host}]` : config.server.host;
    const address = `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${port}`;
    recorder.eventBestEffort({ type: "gateway", reason: "started", detail: { instanceId, version: VERSION, configHash: config.hash } });
    await reloader.recordStartup().catch((err: unknown) => log.warn({ err }, "could not record the configuration in force"));
    // Weekly evidence digest: every replica checks the schedule, one generates and posts each week.
    const digest = config.digest.enabled ? await startDigestSchedule(config, url, store.background, auditChain.keys, log, instanceId, (a) => void approvals?.service.securityAlert(a)) : undefined;

    if (digest) steps.onClose("evidence digest schedule", () => digest.stop());

    let stopping: Promise<void> | undefined;
    const stop = (grace = 10_000) =>
      (stopping ??= (async () => {
        graceMs = grace;
        const { failed } = await steps.close(log);
        if (failed.length > 0) throw new ShutdownError(failed);
      })());
    const devToken = identity.devIssuer
      ? await signDevToken(identity.devIssuer.key, identity.devIssuer.url, {
          subject: "alice",
          email: "alice@example.com",
          name: "Alice (dev issuer)",
          groups: ["dev", "oncall"],
          audience: config.connections.map((c) => resourceUrl(config.publicUrl, c.name)),
          ttlSeconds: 8 * 3600,
        })
      : undefined;
    return { config, app, db, recorder, sessions, keyring, instanceId, address, databaseUrl: url, embedded, identity, metrics, auditChain, approvals, digest, devToken, stop,
      reload: (actor: ReloadActor) => reloader.reload(actor),
      currentConfig: () => reloader.current,
    };
  } catch (err) {
    // A failed start undoes what had started, in the same order as a stop.
    await steps.close(log);
    throw err;
  }
}
