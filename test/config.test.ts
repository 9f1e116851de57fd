// The configuration file: every mistake is reported with the key path and what is wrong, the
// precedence is environment > file > defaults, the CLI refuses to start on a bad file, secrets
// never reach the log or `config --json`, and the published JSON Schema matches the validator
// and accepts the bundled and example files.
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormatsPlugin from "ajv-formats";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, findConfigFile, loadConfigFile, parseConfigText } from "../gateway/config/load.js";
import { configSchema } from "../gateway/config/schema.js";
import { CONFIG_JSON_SCHEMA_FILE, configJsonSchemaText } from "../gateway/config/write-json-schema.js";
import { QUICKSTART_CONFIG } from "../gateway/paths.js";
import { createTestDatabase, ROOT, type TestDatabase } from "./helpers/postgres.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { runCli } from "./helpers/cli.js";

const FIXTURE = new URL("./fixtures/misbehaving-server.mjs", import.meta.url).pathname;
const EXAMPLE_CONFIG = join(ROOT, "countersign.example.yaml");

let scratch: string;
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), "countersign-config-test-"));
});
afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

/** The problems a configuration text is refused with (fails the test if it is accepted). */
function problemsOf(text: string, env: Record<string, string> = {}): string[] {
  try {
    parseConfigText(text, "test.yaml", env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toContain("test.yaml");
    return (err as ConfigError).problems;
  }
  throw new Error("the configuration was accepted");
}

// Anonymous access, so the connection is valid without a token issuer.
const ONE_STDIO = `
connections:
  - name: local
    upstream: { type: stdio, command: node }
    access: { anonymous: true }
`;

// A token issuer: connections without anonymous access need one (see "who may call" below).
const ISSUER = `auth: { issuers: [{ issuer: "https://login.example.com/" }] }`;

// ── errors name the key path and what is wrong ──────────────────────────────────────────────

describe("a bad configuration is refused with the key path and the problem", () => {
  it("a bad URL in the second connection", () => {
    const problems = problemsOf(`
version: 1
${ISSUER}
connections:
  - name: local
    upstream: { type: stdio, command: node }
  - name: remote
    upstream: { type: streamable_http, url: "not a url" }
`);
    expect(problems).toEqual([expect.stringMatching(/^connections\[1\]\.upstream\.url: not a URL/)]);
  });

  it("unknown keys, at the top level and inside an upstream, each named", () => {
    const problems = problemsOf(`
version: 1
conections: []
connections:
  - name: local
    upstream: { type: stdio, command: node, argz: ["x"] }
`);
    expect(problems).toContain("(top level): unknown key 'conections': remove it or check the spelling");
    expect(problems).toContain("connections[0].upstream: unknown key 'argz': remove it or check the spelling");
  });

  it("an upstream type that does not exist", () => {
    const problems = problemsOf(`
version: 1
connections:
  - name: ws
    upstream: { type: websocket, url: "http://127.0.0.1:9/" }
`);
    expect(problems).toEqual(["connections[0].upstream.type: upstream.type must be one of: stdio, streamable_http, sse"]);
  });

  it("a required key of the chosen upstream type is missing", () => {
    expect(problemsOf(`
version: 1
connections:
  - name: local
    upstream: { type: stdio }
`)).toEqual(["connections[0].upstream.command: required (string)"]);
  });

  it("duplicate connection names", () => {
    const problems = problemsOf(`
version: 1
${ISSUER}
connections:
  - name: same
    upstream: { type: stdio, command: node }
  - name: other
    upstream: { type: stdio, command: node }
  - name: same
    upstream: { type: sse, url: "http://127.0.0.1:9/sse" }
`);
    expect(problems).toEqual(["connections[2].name: duplicate connection name (also connections[0].name)"]);
  });

  it("a connection name that cannot be part of a URL", () => {
    expect(problemsOf(`version: 1\nconnections:\n  - name: "My Server"\n    upstream: { type: stdio, command: node }\n    access: { anonymous: true }\n`)).toEqual([
      expect.stringMatching(/^connections\[0\]\.name: must be lower-case letters/),
    ]);
  });

  it("missing or unknown `version`, and no connections", () => {
    expect(problemsOf(ONE_STDIO)).toEqual(["version: version must be 1"]);
    expect(problemsOf(`version: 2\n${ONE_STDIO}`)).toEqual(["version: version must be 1"]);
    expect(problemsOf("version: 1\n")).toEqual(["connections: required (array)"]);
    expect(problemsOf("version: 1\nconnections: []\n")).toEqual(["connections: declare at least one connection"]);
    expect(problemsOf("- just\n- a list\n")).toEqual(["the file must hold a mapping with at least `version` and `connections`"]);
  });

  it("invalid YAML, with its line", () => {
    const problems = problemsOf(`version: 1
connections:
  - name: local
    upstream: { type: stdio, command: node
  oops: [
`);
    expect(problems.length).toBeGreaterThan(0);
    expect(problems[0]).toMatch(/^YAML: .* at line \d+, column \d+/);
    expect(problemsOf("version: 1\nversion: 1\nconnections: []\n")).toEqual([expect.stringMatching(/^YAML: Map keys must be unique at line 2/)]);
  });

  it("several problems are reported together", () => {
    const problems = problemsOf(`
version: 1
${ISSUER}
limits: { requestBodyBytes: 10 }
connections:
  - name: a
    upstream: { type: streamable_http, url: "ftp://example.com/" }
`);
    expect(problems).toHaveLength(2);
    expect(problems).toContain("connections[0].upstream.url: not a URL (expected http:// or https://)");
    expect(problems.find((p) => p.startsWith("limits.requestBodyBytes: "))).toMatch(/1024/);
  });

  it("a secret `{ env: X }` whose variable is unset", () => {
    const text = `
version: 1
${ISSUER}
connections:
  - name: remote
    upstream:
      type: streamable_http
      url: http://127.0.0.1:9/mcp
      headers: { Authorization: { env: COUNTERSIGN_TEST_UNSET_TOKEN } }
`;
    expect(problemsOf(text)).toEqual([
      "connections[0].upstream.headers.Authorization: environment variable COUNTERSIGN_TEST_UNSET_TOKEN is not set: set it or change the reference",
    ]);
    // An empty value counts as unset; a set one is accepted.
    expect(problemsOf(text, { COUNTERSIGN_TEST_UNSET_TOKEN: "" })).toHaveLength(1);
    expect(() => parseConfigText(text, "test.yaml", { COUNTERSIGN_TEST_UNSET_TOKEN: "Bearer x" })).not.toThrow();
  });

  it("a secret `{ file: ... }` that cannot be read, and one that can", () => {
    const missing = join(scratch, "no-such-ca.pem");
    const text = (file: string) => `
version: 1
${ISSUER}
connections:
  - name: remote
    upstream: { type: sse, url: "https://127.0.0.1:9/sse", tls: { ca: { file: "${file}" } } }
`;
    expect(problemsOf(text(missing))).toEqual([`connections[0].upstream.tls.ca: cannot read secret file ${missing} (ENOENT): check the path and its permissions`]);
    const present = join(scratch, "ca.pem");
    writeFileSync(present, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    const cfg = parseConfigText(text(present), "test.yaml", {});
    const upstream = cfg.connections[0]!.upstream;
    expect(upstream.type === "sse" && upstream.tls?.ca?.reveal()).toBe("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----");
  });

  it("a client certificate without its key", () => {
    expect(problemsOf(`
version: 1
${ISSUER}
connections:
  - name: remote
    upstream: { type: streamable_http, url: "https://127.0.0.1:9/mcp", tls: { cert: { env: CLIENT_CERT } } }
`, { CLIENT_CERT: "pem" })).toEqual(["connections[0].upstream.tls: cert and key must be given together"]);
  });

  it("a bad value from the environment names the key and the variable", () => {
    expect(problemsOf(`version: 1\n${ONE_STDIO}`, { PORT: "eighty" })).toEqual([
      expect.stringMatching(/^server\.port: .* \(from the environment variable PORT\)$/),
    ]);
    expect(problemsOf(`version: 1\n${ONE_STDIO}`, { COUNTERSIGN_LOG_LEVEL: "loud" })).toEqual([
      expect.stringMatching(/^log\.level: .*\(from the environment variable COUNTERSIGN_LOG_LEVEL\)$/),
    ]);
  });

  it("a policy's approval group that approvals.groups does not declare (a rule's and the default), each with its key path", () => {
    const rule = (group: string) => `{ id: hold-${group}, description: deploys wait, tools: [deploy], action: require_approval, approval: { group: ${group} } }`;
    const file = (approvals: string) => `
version: 1
${approvals}
connections:
  - name: ops
    upstream: { type: stdio, command: node }
    access: { anonymous: true }
    policy:
      defaultAction: require_approval
      defaultApproval: { group: nobody }
      rules: [${rule("on-call")}, ${rule("oncall")}]
`;
    expect(problemsOf(file(`approvals: { groups: { oncall: { emails: [a@example.com] } } }`))).toEqual([
      "connections[0].policy.rules[0].approval.group: no approver group 'on-call' in approvals.groups (groups: oncall)",
      "connections[0].policy.defaultApproval.group: no approver group 'nobody' in approvals.groups (groups: oncall)",
    ]);
    expect(problemsOf(file(""))).toEqual([
      "connections[0].policy.rules[0].approval.group: no approver group 'on-call' in approvals.groups (the file has no approvals block)",
      "connections[0].policy.rules[1].approval.group: no approver group 'oncall' in approvals.groups (the file has no approvals block)",
      "connections[0].policy.defaultApproval.group: no approver group 'nobody' in approvals.groups (the file has no approvals block)",
    ]);
  });

  it("a duration the schema does not read (`15 minutes`) is a problem at its key path, not a crash", () => {
    expect(problemsOf(`
version: 1
approvals: { groups: { oncall: { emails: [a@example.com] } }, holdFor: 2 minutes }
connections:
  - name: ops
    upstream: { type: stdio, command: node }
    access: { anonymous: true }
    policy:
      rules: [{ id: hold, description: d, tools: [x], action: require_approval, approval: { group: oncall, timeout: 15 minutes } }]
`)).toEqual([
      "approvals.holdFor: a duration such as 0s, 45s, 15m or 2h",
      "connections[0].policy.rules[0].approval.timeout: a duration such as 90s, 15m, 2h or 1d",
    ]);
  });

  it("a file that cannot be read", () => {
    const missing = join(scratch, "absent.yaml");
    expect(() => loadConfigFile(missing, {})).toThrow(ConfigError);
    try {
      loadConfigFile(missing, {});
    } catch (err) {
      expect((err as ConfigError).problems).toEqual(["cannot read the file: ENOENT"]);
      expect((err as ConfigError).source).toBe(missing);
    }
  });
});

// ── who may call ────────────────────────────────────────────────────────────────────────────

describe("who may call: a connection nobody could authenticate to is refused", () => {
  const NO_ISSUER = /^connections\[(\d+)\]\.access: no token issuer is configured \(auth\.issuers or auth\.devIssuer\) and anonymous access is off/;
  const TWO = `
connections:
  - name: open
    upstream: { type: stdio, command: node }
    access: { anonymous: true }
  - name: closed
    upstream: { type: stdio, command: node }
`;

  it("no issuer and anonymous off: the connection is named, the anonymous one is not", () => {
    const problems = problemsOf(`version: 1\n${TWO}`);
    expect(problems).toEqual([expect.stringMatching(NO_ISSUER)]);
    expect(problems[0]).toMatch(/^connections\[1\]\.access: /);
    expect(problems[0]).toContain("set access.anonymous: true for local use");
  });

  it("an issuer, the dev issuer, or anonymous access each make it callable", () => {
    const withIssuer = parseConfigText(`version: 1\n${ISSUER}\n${TWO}`, "test.yaml", {});
    expect(withIssuer.connections.map((c) => c.access.anonymous)).toEqual([true, false]);
    expect(withIssuer.auth.issuers[0]).toMatchObject({ issuer: "https://login.example.com/", groupsClaim: "groups", algorithms: ["RS256", "PS256", "ES256", "EdDSA"] });
    const withDev = parseConfigText(`version: 1\nauth: { devIssuer: { enabled: true } }\n${TWO}`, "test.yaml", {});
    expect(withDev.auth.devIssuer.enabled).toBe(true);
    // The dev issuer is off unless turned on: naming it is not enough.
    expect(problemsOf(`version: 1\nauth: { devIssuer: { enabled: false } }\n${TWO}`)).toEqual([expect.stringMatching(NO_ISSUER)]);
  });

  it("issuers accept only asymmetric algorithms (never none, never HMAC) and dotted group claims", () => {
    const issuerWith = (extra: string) => `version: 1
auth: { issuers: [{ issuer: "https://login.example.com/", ${extra} }] }
connections:
  - name: a
    upstream: { type: stdio, command: node }
`;
    for (const alg of ["none", "HS256"]) {
      expect(problemsOf(issuerWith(`algorithms: [${alg}]`))).toEqual([expect.stringMatching(/^auth\.issuers\[0\]\.algorithms\[0\]: /)]);
    }
    const cfg = parseConfigText(issuerWith("groupsClaim: realm_access.roles, algorithms: [RS256]"), "test.yaml", {});
    expect(cfg.auth.issuers[0]).toMatchObject({ groupsClaim: "realm_access.roles", algorithms: ["RS256"] });
  });

  it("upstreamIdentity.jwt needs keys.upstreamJwt; identity headers do not", () => {
    const text = (keys: string, identity: string) => `version: 1
${ISSUER}
${keys}
connections:
  - name: remote
    upstream: { type: streamable_http, url: "http://127.0.0.1:9/mcp" }
    upstreamIdentity: ${identity}
`;
    expect(problemsOf(text("", "{ jwt: {} }"))).toEqual([
      "connections[0].upstreamIdentity.jwt: identity JWTs need the gateway's signing key: set keys.upstreamJwt (a PKCS#8 PEM private key, shared by all replicas)",
    ]);
    expect(parseConfigText(text("", "{ headers: {} }"), "test.yaml", {}).connections[0]!.upstreamIdentity?.headers?.subject).toBe("X-Countersign-Subject");
    const cfg = parseConfigText(text("keys: { upstreamJwt: { env: UPSTREAM_JWT_KEY } }", "{ jwt: { ttlSeconds: 60 } }"), "test.yaml", { UPSTREAM_JWT_KEY: "pem" });
    expect(cfg.connections[0]!.upstreamIdentity?.jwt).toEqual({ header: "X-Countersign-Identity", ttlSeconds: 60 });
    expect(cfg.keys.upstreamJwt?.reveal()).toBe("pem");
  });
});

// ── precedence: environment > file > defaults ───────────────────────────────────────────────

describe("environment over file over defaults", () => {
  it("defaults fill what the file leaves out", () => {
    const cfg = parseConfigText(`version: 1\n${ONE_STDIO}`, "test.yaml", {});
    expect(cfg.server).toEqual({ host: "127.0.0.1", port: 8080, trustProxy: false });
    expect(cfg.publicUrl).toBe("http://127.0.0.1:8080");
    expect(cfg.limits).toEqual({ requestBodyBytes: 4 * 1024 * 1024, upstreamMessageBytes: 16 * 1024 * 1024, upstreamTimeoutMs: 600_000, notificationsPerSecond: 1000, requestHeadersTimeoutMs: 10_000, requestTimeoutMs: 30_000, unauthenticatedRequests: 256, clientBufferBytes: 32 * 1024 * 1024 });
    expect(cfg.log.level).toBe("info");
    expect(cfg.database.url).toBeUndefined();
    expect(cfg.database.migrateOnStart).toBe(true);
    expect(cfg.database.commitTimeoutMs).toBe(5000);
    expect(cfg.database.embeddedDataDir).toBe(join(process.cwd(), ".countersign/postgres"));
    const c = cfg.connections[0]!;
    expect(c.maxSessions).toBe(32);
    expect(c.idleTimeoutSeconds).toBe(1800);
    expect(c.upstream).toEqual({ type: "stdio", command: "node", args: [], env: {}, shared: false });
  });

  it("the file overrides the defaults; a connection's idle timeout overrides the sessions default", () => {
    const cfg = parseConfigText(`
version: 1
${ISSUER}
server: { host: 0.0.0.0, port: 9000 }
metrics: { enabled: false }
sessions: { idleTimeoutSeconds: 60 }
limits: { notificationsPerSecond: 5 }
log: { level: warn }
connections:
  - name: a
    upstream: { type: stdio, command: node }
  - name: b
    upstream: { type: stdio, command: node }
    idleTimeoutSeconds: 5
    maxSessions: 2
`, "test.yaml", {});
    expect(cfg.server).toEqual({ host: "0.0.0.0", port: 9000, trustProxy: false });
    expect(cfg.publicUrl).toBe("http://0.0.0.0:9000");
    expect(cfg.limits.notificationsPerSecond).toBe(5);
    expect(cfg.limits.requestBodyBytes).toBe(4 * 1024 * 1024);
    expect(cfg.log.level).toBe("warn");
    expect(cfg.connections.map((c) => [c.idleTimeoutSeconds, c.maxSessions])).toEqual([[60, 32], [5, 2]]);
  });

  it("the environment overrides the file", () => {
    const text = `
version: 1
publicUrl: https://from-the-file.example.com
server: { host: 127.0.0.1, port: 9000 }
database: { url: { env: FILE_DATABASE_URL }, migrateOnStart: true }
log: { level: warn }
limits: { requestBodyBytes: 100000 }
${ONE_STDIO}`;
    const env = {
      FILE_DATABASE_URL: "postgresql://file@127.0.0.1/file",
      DATABASE_URL: "postgresql://env@127.0.0.1/env",
      HOST: "::1",
      PORT: "7000",
      COUNTERSIGN_PUBLIC_URL: "https://from-the-environment.example.com/",
      COUNTERSIGN_LOG_LEVEL: "debug",
      COUNTERSIGN_MIGRATE_ON_START: "false",
      COUNTERSIGN_REQUEST_BODY_BYTES: "2048",
      COUNTERSIGN_UPSTREAM_MESSAGE_BYTES: "4096",
      COUNTERSIGN_DATA_DIR: join(scratch, "pg"),
    };
    const cfg = parseConfigText(text, "test.yaml", env);
    expect(cfg.server).toEqual({ host: "::1", port: 7000, trustProxy: false });
    expect(cfg.publicUrl).toBe("https://from-the-environment.example.com");
    expect(cfg.database.url?.reveal()).toBe("postgresql://env@127.0.0.1/env");
    expect(cfg.database.migrateOnStart).toBe(false);
    expect(cfg.database.embeddedDataDir).toBe(join(scratch, "pg"));
    expect(cfg.log.level).toBe("debug");
    expect(cfg.limits.requestBodyBytes).toBe(2048);
    expect(cfg.limits.upstreamMessageBytes).toBe(4096);

    // Without the overrides, the file's values hold; the public URL follows HOST and PORT.
    const fileOnly = parseConfigText(text, "test.yaml", { FILE_DATABASE_URL: env.FILE_DATABASE_URL });
    expect(fileOnly.publicUrl).toBe("https://from-the-file.example.com");
    expect(fileOnly.database.url?.reveal()).toBe("postgresql://file@127.0.0.1/file");
    expect(parseConfigText(`version: 1\n${ONE_STDIO}`, "test.yaml", { HOST: "::1", PORT: "7000" }).publicUrl).toBe("http://[::1]:7000");
  });

  it("findConfigFile: --config, then COUNTERSIGN_CONFIG, then ./countersign.yaml, then the bundled quick start", () => {
    const dir = join(scratch, "find");
    mkdirSync(dir, { recursive: true });
    // Nothing given, nothing in the directory: the quick start.
    expect(findConfigFile(undefined, {}, dir)).toBe(QUICKSTART_CONFIG);
    writeFileSync(join(dir, "countersign.yaml"), `version: 1\n${ONE_STDIO}`);
    expect(findConfigFile(undefined, {}, dir)).toBe(join(dir, "countersign.yaml"));
    expect(findConfigFile(undefined, { COUNTERSIGN_CONFIG: "from-env.yaml" }, dir)).toBe(join(dir, "from-env.yaml"));
    expect(findConfigFile(undefined, { COUNTERSIGN_CONFIG: "/etc/countersign/a.yaml" }, dir)).toBe("/etc/countersign/a.yaml");
    expect(findConfigFile("explicit.yaml", { COUNTERSIGN_CONFIG: "from-env.yaml" }, dir)).toBe(join(dir, "explicit.yaml"));
    // An empty COUNTERSIGN_CONFIG is no choice.
    expect(findConfigFile(undefined, { COUNTERSIGN_CONFIG: "" }, dir)).toBe(join(dir, "countersign.yaml"));
  });

  it("the bundled quick start loads and runs its server from the package, wherever the gateway starts", () => {
    const cfg = loadConfigFile(QUICKSTART_CONFIG, {});
    expect(cfg.quickstart).toBe(true);
    expect(cfg.connections.map((c) => c.name)).toEqual(["everything"]);
    const u = cfg.connections[0]!.upstream;
    expect(u.type === "stdio" && u.cwd).toBe(ROOT.replace(/\/$/, ""));
  });
});

// ── the CLI ─────────────────────────────────────────────────────────────────────────────────


describe("the CLI", () => {
  it("refuses to start on a bad file (exit 2, the key path on stderr) and validates a good one (exit 0)", async () => {
    const bad = join(scratch, "bad.yaml");
    writeFileSync(bad, `version: 1
${ISSUER}
connections:
  - name: local
    upstream: { type: stdio, command: node }
  - name: remote
    upstream: { type: streamable_http, url: "not a url" }
`);
    const good = join(scratch, "good.yaml");
    writeFileSync(good, `version: 1\n${ONE_STDIO}`);
    const [started, checkedBad, checkedGood] = await Promise.all([
      runCli(["start", "--config", bad]),
      runCli(["config", "--config", bad]),
      runCli(["config", "--config", good]),
    ]);
    expect(started.code).toBe(2);
    expect(started.stderr).toContain(bad);
    expect(started.stderr).toContain("connections[1].upstream.url: not a URL");
    expect(started.stderr).toContain("did not start");
    expect(started.stdout).not.toContain("ready");
    expect(checkedBad.code).toBe(2);
    expect(checkedBad.stderr).toContain("connections[1].upstream.url: not a URL");
    expect(checkedGood.code).toBe(0);
    expect(checkedGood.stdout).toContain(`${good}: valid`);
  }, 60_000);

  it("`config --no-secrets` checks the structure where the secrets are absent (CI); without it, each absent secret is named", async () => {
    const file = join(scratch, "ci.yaml");
    const withSecrets = (extra: string) => `version: 1
${ISSUER}
database: { url: { env: CI_ABSENT_DATABASE_URL } }
keys: { maskingHmac: { file: /nonexistent/masking-hmac } }
audit: { checkpoint: { keys: [{ id: k1, privateKey: { env: CI_ABSENT_CHECKPOINT_KEY } }] } }
connections:
  - name: local
    upstream: { type: stdio, command: node, env: { TOKEN: { env: CI_ABSENT_TOKEN } } }
    masking: { patterns: [{ id: order, pattern: "ORDER-[0-9]+" }] }
${extra}`;
    writeFileSync(file, withSecrets(""));
    const [structure, full] = await Promise.all([runCli(["config", "--no-secrets", "--config", file]), runCli(["config", "--config", file])]);
    expect(structure.code).toBe(0);
    expect(structure.stdout).toContain(`${file}: valid in structure (secrets not read)`);
    expect(full.code).toBe(2);
    for (const path of ["database.url", "keys.maskingHmac", "audit.checkpoint.keys[0].privateKey", "connections[0].upstream.env.TOKEN"]) expect(full.stderr).toContain(`${path}: `);

    // Structure is still checked in full: a cross-reference and a masking pattern, each by key path.
    writeFileSync(file, withSecrets(`    policy: { rules: [{ id: r, description: d, tools: [x], action: require_approval, approval: { group: on-call } }] }`));
    const badRef = await runCli(["config", "--no-secrets", "--config", file]);
    expect(badRef.code).toBe(2);
    expect(badRef.stderr).toContain("connections[0].policy.rules[0].approval.group: no approver group 'on-call' in approvals.groups");
    writeFileSync(file, withSecrets("").replace('"ORDER-[0-9]+"', '"ORDER-[0-9"'));
    const badPattern = await runCli(["config", "--no-secrets", "--config", file]);
    expect(badPattern.code).toBe(2);
    expect(badPattern.stderr).toContain("connections[0].masking");
  }, 60_000);
});

// ── secrets ─────────────────────────────────────────────────────────────────────────────────

describe("secrets never appear in logs or in `config --json`", () => {
  let db: TestDatabase;
  let gw: TestGateway;
  let upstream: Server;
  let upstreamUrl: string;
  const headerSecret = `header-secret-${randomBytes(12).toString("hex")}`;
  const stdioSecret = `stdio-secret-${randomBytes(12).toString("hex")}`;
  const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

  beforeAll(async () => {
    // A real MCP server (the SDK's, stateless) that reports whether the injected header arrived,
    // without echoing it.
    upstream = createServer((req, res) => {
      const server = new McpServer({ name: "header-check", version: "1.0.0" });
      server.registerTool("header-digest", { description: "SHA-256 of the X-Upstream-Token header" }, async (extra) => {
        const value = extra.requestInfo?.headers["x-upstream-token"];
        return { content: [{ type: "text", text: typeof value === "string" ? sha256(value) : "missing" }] };
      });
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
      res.on("close", () => void transport.close().then(() => server.close()));
      void server.connect(transport).then(() => transport.handleRequest(req, res));
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    const addr = upstream.address();
    upstreamUrl = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}/mcp`;

    db = await createTestDatabase();
    gw = await startTestGateway(db.url, secretConnections(), { HEADER_SECRET: headerSecret, STDIO_SECRET: stdioSecret });
  });

  afterAll(async () => {
    await gw?.stop();
    await db?.drop();
    await new Promise((r) => upstream?.close(r));
  });

  function secretConnections() {
    return {
      // The most talkative level: whatever is logged, secrets are not.
      log: { level: "trace" },
      connections: [
        {
          name: "stdio-secret",
          upstream: { type: "stdio", command: process.execPath, args: [FIXTURE, "ok"], env: { FIXTURE_SECRET: { env: "STDIO_SECRET" } } },
          access: { anonymous: true },
        },
        {
          name: "http-secret",
          upstream: { type: "streamable_http", url: upstreamUrl, headers: { "X-Upstream-Token": { env: "HEADER_SECRET" } } },
          access: { anonymous: true },
        },
      ],
    };
  }

  async function callTool(connection: string, name: string, args: Record<string, unknown>): Promise<string> {
    const transport = new StreamableHTTPClientTransport(gw.mcpUrl(connection));
    const client = new Client({ name: "config-test", version: "1.0.0" });
    await client.connect(transport);
    try {
      const result = await client.callTool({ name, arguments: args });
      return (result.content as Array<{ text: string }>)[0]!.text;
    } finally {
      await transport.terminateSession().catch(() => {});
      await client.close();
    }
  }

  it("the upstreams get their secrets; the gateway's log never shows them", async () => {
    // The secrets did reach their upstreams (so their absence from the log means something)…
    expect(await callTool("stdio-secret", "env-digest", { name: "FIXTURE_SECRET" })).toBe(sha256(stdioSecret));
    expect(await callTool("http-secret", "header-digest", {})).toBe(sha256(headerSecret));
    // …and the child saw only what the configuration names, not the gateway's environment.
    expect(await callTool("stdio-secret", "env-digest", { name: "STDIO_SECRET" })).toBe("unset");
    expect(await callTool("stdio-secret", "env-digest", { name: "HEADER_SECRET" })).toBe("unset");

    const log = gw.logText();
    expect(log.length).toBeGreaterThan(0);
    expect(log).not.toContain(headerSecret);
    expect(log).not.toContain(stdioSecret);
  });

  it("`countersign config --json` shows where each secret comes from, never its value", async () => {
    const file = join(scratch, "secrets.yaml");
    writeFileSync(file, stringifyYaml({ version: 1, database: { url: { env: "TEST_DATABASE_URL" } }, ...secretConnections() }));
    const out = await runCli(["config", "--config", file, "--json"], { HEADER_SECRET: headerSecret, STDIO_SECRET: stdioSecret, TEST_DATABASE_URL: db.url });
    expect(out.code).toBe(0);
    expect(out.stdout).not.toContain(headerSecret);
    expect(out.stdout).not.toContain(stdioSecret);
    expect(out.stdout).not.toContain(db.url);
    expect(out.stderr).not.toContain(headerSecret);
    const json = JSON.parse(out.stdout) as { connections: Array<{ upstream: Record<string, any> }>; database: { url: string } };
    expect(json.connections[0]!.upstream.env.FIXTURE_SECRET).toBe("[secret from env STDIO_SECRET]");
    expect(json.connections[1]!.upstream.headers["X-Upstream-Token"]).toBe("[secret from env HEADER_SECRET]");
    expect(json.database.url).toBe("[secret from env TEST_DATABASE_URL]");
  }, 30_000);
  it("`countersign config --json` hides credentials typed inline (headers, environment, URL passwords)", async () => {
    const file = join(scratch, "inline.yaml");
    const inline = `inline-${randomBytes(8).toString("hex")}`;
    writeFileSync(
      file,
      stringifyYaml({
        version: 1,
        connections: [
          { name: "h", access: { anonymous: true }, upstream: { type: "streamable_http", url: `http://svc:${inline}@127.0.0.1:9/mcp`, headers: { Authorization: `Bearer ${inline}` } } },
          { name: "s", access: { anonymous: true }, upstream: { type: "stdio", command: "node", env: { API_KEY: inline, LOG_LEVEL: "debug" } } },
        ],
      }),
    );
    const out = await runCli(["config", "--config", file, "--json"]);
    expect(out.code).toBe(0);
    expect(out.stdout).not.toContain(inline);
    const json = JSON.parse(out.stdout) as { connections: Array<{ upstream: Record<string, any> }> };
    expect(json.connections[0]!.upstream.headers.Authorization).toBe("[redacted]");
    expect(json.connections[0]!.upstream.url).toBe("http://svc:***@127.0.0.1:9/mcp");
    expect(json.connections[1]!.upstream.env).toEqual({ API_KEY: "[redacted]", LOG_LEVEL: "[redacted]" });
  }, 30_000);
});

// ── the published JSON Schema ───────────────────────────────────────────────────────────────

describe("the published JSON Schema", () => {
  const committed = () => readFileSync(CONFIG_JSON_SCHEMA_FILE, "utf8");

  it("is exactly what `npm run schema` generates from the validator now (no drift)", () => {
    expect(committed(), "gateway/config/countersign.schema.json is stale: run `npm run schema` and commit it").toBe(configJsonSchemaText());
  });

  function jsonSchemaValidator() {
    // Union types (`type: [string, number, …]`) are valid JSON Schema; strict mode only flags them.
    const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
    addFormatsPlugin.default(ajv);
    return ajv.compile(JSON.parse(committed()) as object);
  }

  it.each([
    ["the bundled quick start", QUICKSTART_CONFIG],
    ["countersign.example.yaml", EXAMPLE_CONFIG],
  ])("%s validates against the zod schema and the JSON Schema", (_label, file) => {
    const raw = parseYaml(readFileSync(file, "utf8")) as unknown;
    const zod = configSchema.safeParse(raw);
    expect(zod.success, JSON.stringify(zod.error?.issues)).toBe(true);
    const validate = jsonSchemaValidator();
    expect(validate(raw), JSON.stringify(validate.errors)).toBe(true);
  });

  it("the example has all three upstream kinds, secrets only as references, TLS and limits", () => {
    const text = readFileSync(EXAMPLE_CONFIG, "utf8");
    const raw = parseYaml(text) as { connections: Array<{ upstream: Record<string, any> }>; limits: object };
    expect(new Set(raw.connections.map((c) => c.upstream.type))).toEqual(new Set(["stdio", "streamable_http", "sse"]));
    const http = raw.connections.find((c) => c.upstream.type === "streamable_http")!.upstream;
    expect(http.headers.Authorization).toEqual({ env: expect.any(String) });
    expect(Object.keys(http.tls)).toEqual(expect.arrayContaining(["ca", "cert", "key"]));
    expect(Object.keys(raw.limits)).toEqual(expect.arrayContaining(["requestBodyBytes", "upstreamMessageBytes"]));
    // It loads end to end once its references resolve (files are checked only by a real deployment).
    const env = {
      COUNTERSIGN_DATABASE_URL: "postgresql://u@127.0.0.1/db", EVERYTHING_API_TOKEN: "t", GITHUB_MCP_AUTHORIZATION: "Bearer t", COUNTERSIGN_UPSTREAM_JWT_KEY: "pem",
      COUNTERSIGN_CLUSTER_SECRET: "s".repeat(32), COUNTERSIGN_APPROVALS_ARGUMENTS_KEY: "k", SLACK_BOT_TOKEN: "xoxb-t", SLACK_APP_TOKEN: "xapp-t", COUNTERSIGN_METRICS_TOKEN: "m",
    };
    const problems = (() => {
      try {
        parseConfigText(text, EXAMPLE_CONFIG, env);
        return [];
      } catch (err) {
        return (err as ConfigError).problems;
      }
    })();
    // Only the `{ file: … }` secrets remain, each named by its key path.
    expect(problems.length).toBeGreaterThan(0);
    for (const p of problems) expect(p).toMatch(/^(connections\[\d+\]\.upstream\.(tls\.(ca|cert|key)|headers\.X-Api-Key)|audit\.checkpoint\.keys\[0\]\.privateKey): cannot read secret file /);
  });

  it("the example shows what a production deployment sets: replicas, approvals, checkpoints, digest, rules and pinning", () => {
    const raw = parseYaml(readFileSync(EXAMPLE_CONFIG, "utf8")) as Record<string, any>;
    expect(raw.cluster).toMatchObject({ internalPort: 8081, secret: { env: expect.any(String) } });
    expect(raw.approvals.slack.botToken).toEqual({ env: expect.any(String) });
    expect(Object.keys(raw.approvals.groups)).toEqual(expect.arrayContaining(["oncall", raw.approvals.escalation.group]));
    expect(raw.audit.checkpoint.keys[0].privateKey).toEqual({ file: expect.any(String) });
    expect(raw.digest).toMatchObject({ enabled: true, slackChannel: expect.any(String) });
    const github = (raw.connections as Array<Record<string, any>>).find((c) => c.name === "github")!;
    expect(github.policy.rules.map((r: { action: string }) => r.action)).toEqual(expect.arrayContaining(["block", "require_approval"]));
    expect(github.pinning).toEqual({ onChange: "hold", approvalGroup: "leads" });
  });

  it("the example shows identity: a people IdP and a CI issuer, groups and tool rules per connection, identity to upstreams", () => {
    const raw = parseYaml(readFileSync(EXAMPLE_CONFIG, "utf8")) as {
      auth: { issuers: Array<Record<string, any>> };
      keys: Record<string, unknown>;
      connections: Array<{ name: string; access?: { anonymous?: boolean; groups?: string[]; tools?: unknown[] }; upstreamIdentity?: Record<string, unknown> }>;
    };
    expect(raw.auth.issuers).toHaveLength(2);
    const ci = raw.auth.issuers.find((i) => i.label === "ci")!;
    expect(ci.groupsClaim).toBe("kubernetes.io.namespace");
    expect(ci.audience).toBeDefined();
    expect(raw.keys.upstreamJwt).toEqual({ env: expect.any(String) });
    for (const c of raw.connections) {
      expect(c.access?.anonymous, c.name).toBeFalsy();
      expect(c.access?.groups?.length, c.name).toBeGreaterThan(0);
      expect(c.access?.tools?.length, c.name).toBeGreaterThan(0);
    }
    const kinds = new Set(raw.connections.flatMap((c) => Object.keys(c.upstreamIdentity ?? {})));
    expect(kinds).toEqual(new Set(["headers", "jwt"]));
  });

  it("the JSON Schema refuses what the validator refuses: unknown keys, a wrong upstream type, a missing version", () => {
    const validate = jsonSchemaValidator();
    const base = { version: 1, connections: [{ name: "a", upstream: { type: "stdio", command: "node" } }] };
    expect(validate(base)).toBe(true);
    expect(validate({ ...base, conections: [] })).toBe(false);
    expect(validate({ ...base, version: 2 })).toBe(false);
    expect(validate({ connections: base.connections })).toBe(false);
    expect(validate({ version: 1, connections: [{ name: "a", upstream: { type: "websocket", url: "http://x" } }] })).toBe(false);
    expect(validate({ version: 1, connections: [{ name: "a", upstream: { type: "sse", url: "not a url" } }] })).toBe(false);
    expect(validate({ version: 1, connections: [{ name: "Bad Name", upstream: { type: "stdio", command: "node" } }] })).toBe(false);
  });
});
