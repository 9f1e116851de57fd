// Identity against a real OpenID Provider: `oidc-provider` runs in this process on loopback
// (discovery, JWKS, client_credentials with JWT access tokens whose `aud` is the gateway
// connection's resource URL, a `groups` claim). The gateway discovers it and accepts its tokens;
// every attack is refused with the right status and code and recorded with the right reason;
// key rotation needs no restart; failures are rate-limited without a row per attempt; groups
// decide connections and tools; upstreams get the gateway's credential and identity, never the
// caller's token; records carry the identity. Also the built-in dev issuer (`countersign token`)
// and `countersign sessions --who/--group`.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import {
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  jwtVerify,
  SignJWT,
  type CryptoKey,
  type JWK,
  type JWTPayload,
} from "jose";
import Provider from "oidc-provider";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { listSessions } from "../gateway/audit/replay.js";
import { QUICKSTART_CONFIG } from "../gateway/paths.js";
import { createTestDatabase, ROOT, type TestDatabase } from "./helpers/postgres.js";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { freePort, waitFor } from "./helpers/upstreams.js";
import { runCli } from "./helpers/cli.js";

// ── a real OpenID Provider ──────────────────────────────────────────────────────────────────

/** What each service account's tokens carry, added by the provider (extraTokenClaims). */
const ACCOUNTS: Record<string, { groups: string[]; email?: string; name?: string }> = {
  "alice-agent": { groups: ["engineering"], email: "alice@example.com", name: "Alice's agent" },
  "ci-deployer": { groups: ["ci"] },
  "mallory-bot": { groups: ["contractors"] },
};
const secretOf = (clientId: string) => `secret-of-${clientId}-0123456789abcdef`;

interface SigningKey {
  kid: string;
  privateJwk: JWK;
  privateKey: CryptoKey;
  publicPem: string;
}

async function newSigningKey(kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
  return { kid, privateJwk: { ...(await exportJWK(privateKey)), kid, alg: "RS256", use: "sig" }, privateKey, publicPem: await exportSPKI(publicKey) };
}

/** oidc-provider on loopback, behind a small HTTP front that counts JWKS fetches and lets keys rotate. */
class OpenIdProvider {
  /** Every access token this provider issued, to check that none ever reaches an upstream. */
  readonly issued: string[] = [];
  jwksFetches = 0;
  lastJwksFetchAt = 0;
  keys: SigningKey[] = [];
  #handler!: (req: any, res: any) => void;

  private constructor(readonly server: Server, readonly issuer: string) {}

  static async start(): Promise<OpenIdProvider> {
    let self: OpenIdProvider | undefined;
    const server = createServer((req, res) => {
      if (req.url?.startsWith("/jwks")) {
        self!.jwksFetches++;
        self!.lastJwksFetchAt = Date.now();
      }
      self!.#handler(req, res);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const addr = server.address();
    self = new OpenIdProvider(server, `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`);
    await self.rotate();
    return self;
  }

  get current(): SigningKey {
    return this.keys[0]!;
  }

  /**
   * Publishes a new signing key first in the JWKS (so new tokens carry its kid) and keeps the
   * previous one published, as providers do, so tokens already issued stay valid.
   */
  async rotate(): Promise<SigningKey> {
    const key = await newSigningKey(`key-${this.keys.length + 1}-${randomBytes(3).toString("hex")}`);
    this.keys = [key, ...this.keys.slice(0, 1)];
    const provider = new Provider(this.issuer, {
      jwks: { keys: this.keys.map((k) => k.privateJwk) as any },
      clients: Object.keys(ACCOUNTS).map((id) => ({
        client_id: id,
        client_secret: secretOf(id),
        grant_types: ["client_credentials"],
        redirect_uris: [],
        response_types: [],
      })),
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        resourceIndicators: {
          enabled: true,
          // Every resource gets JWT access tokens whose audience is the resource itself.
          getResourceServerInfo: async (_ctx, resource) => ({
            scope: "mcp",
            audience: resource,
            accessTokenTTL: 600,
            accessTokenFormat: "jwt",
            jwt: { sign: { alg: "RS256" } },
          }),
        },
      },
      ttl: { ClientCredentials: 600 },
      extraTokenClaims: async (_ctx, token) => {
        const account = ACCOUNTS[(token as { clientId?: string }).clientId ?? ""];
        return account ? { ...account } : undefined;
      },
    });
    const handle = provider.callback();
    // oidc-provider's callback returns a promise; the HTTP server ignores it, so failures are caught here.
    this.#handler = (req, res) => void Promise.resolve(handle(req, res)).catch((err: unknown) => res.destroy(err as Error));
    return key;
  }

  /** A client_credentials access token for `clientId`, meant for `resource`. */
  async token(clientId: string, resource: string): Promise<string> {
    const res = await fetch(`${this.issuer}/token`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        authorization: `Basic ${Buffer.from(`${clientId}:${secretOf(clientId)}`).toString("base64")}`,
      },
      body: new URLSearchParams({ grant_type: "client_credentials", resource, scope: "mcp" }),
    });
    const body = (await res.json()) as { access_token?: string };
    if (!res.ok || !body.access_token) throw new Error(`token endpoint: ${res.status} ${JSON.stringify(body)}`);
    this.issued.push(body.access_token);
    return body.access_token;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
}

/** Re-signs a token's payload, changed by `change`, with `key` under its kid. */
async function resign(token: string, change: (p: JWTPayload) => JWTPayload, key: { kid: string; privateKey: CryptoKey }): Promise<string> {
  return new SignJWT(change(decodeJwt(token)))
    .setProtectedHeader({ alg: "RS256", typ: "at+jwt", kid: key.kid })
    .sign(key.privateKey);
}

const b64 = (v: unknown) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");
const now = () => Math.floor(Date.now() / 1000);

// ── an HTTP upstream that shows what it receives ────────────────────────────────────────────

interface Seen {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

async function startCapturingUpstream(): Promise<{ server: Server; url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      seen.push({ path: req.url ?? "", headers: req.headers, body });
      // A stateless SDK server per request: it answers initialize, tools/list and tools/call.
      const mcp = new McpServer({ name: "capture", version: "1.0.0" });
      mcp.registerTool("read-status", { description: "Reads the status" }, async () => ({ content: [{ type: "text", text: "all good" }] }));
      mcp.registerTool("delete-records", { description: "Deletes records" }, async () => ({ content: [{ type: "text", text: "deleted" }] }));
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
      res.on("close", () => void transport.close().then(() => mcp.close()));
      void mcp.connect(transport).then(() => transport.handleRequest(req, res, body ? JSON.parse(body) : undefined));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  return { server, url: `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`, seen };
}

// ── the gateway under test ──────────────────────────────────────────────────────────────────

/** Starts a test gateway whose publicUrl is its own listen address (token audiences derive from it). */
async function startOnKnownPort(databaseUrl: string, config: Record<string, unknown>, env: Record<string, string> = {}): Promise<TestGateway> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const publicUrl = `http://127.0.0.1:${port}`;
    try {
      return await startTestGateway(databaseUrl, { publicUrl, server: { host: "127.0.0.1", port }, ...config }, env);
    } catch (err) {
      // The port was taken between the probe and the bind: try another one.
      if (attempt < 3 && /EADDRINUSE/.test(String(err))) continue;
      throw err;
    }
  }
}

const UPSTREAM_CREDENTIAL = `Bearer upstream-credential-${randomBytes(8).toString("hex")}`;
const { privateKey: upstreamJwtKey } = generateKeyPairSync("ed25519");
const UPSTREAM_JWT_KEY = upstreamJwtKey.export({ type: "pkcs8", format: "pem" }).toString();
/** An initialize request whose client name is unique, so the test can tell whether it reached the upstream. */
const initialize = (client = `raw-${randomBytes(6).toString("hex")}`) => ({
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: client, version: "1" } },
});
const reachedUpstream = (marker: string) => upstream.seen.some((s) => s.body.includes(marker));

let db: TestDatabase;
let idp: OpenIdProvider;
let rogue: OpenIdProvider;
let upstream: Awaited<ReturnType<typeof startCapturingUpstream>>;
let gw: TestGateway;
let scratch: string;
const clients: Client[] = [];

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), "countersign-identity-"));
  [db, idp, rogue, upstream] = await Promise.all([createTestDatabase(), OpenIdProvider.start(), OpenIdProvider.start(), startCapturingUpstream()]);
  const httpUpstream = (path: string) => ({ type: "streamable_http", url: `${upstream.url}${path}`, headers: { Authorization: { env: "UPSTREAM_CREDENTIAL" } } });
  gw = await startOnKnownPort(
    db.url,
    {
      auth: {
        issuers: [{ issuer: idp.issuer, label: "test-idp" }],
        // Short, so rotation and the single refetch on an unknown kid are seen within the test.
        jwksCooldownSeconds: 1,
        // High: every attack below comes from 127.0.0.1 and must reach verification; the
        // limiter is tested on a gateway of its own.
        failedAttemptsPerMinute: 100_000,
      },
      keys: { upstreamJwt: { env: "UPSTREAM_JWT_KEY" } },
      connections: [
        {
          name: "tools",
          upstream: httpUpstream("/tools"),
          access: { groups: ["engineering", "ci"], tools: [{ groups: ["ci"], deny: ["delete-*"] }] },
          upstreamIdentity: { jwt: {} },
        },
        { name: "reports", upstream: httpUpstream("/reports"), access: { groups: ["engineering", "ci"] }, upstreamIdentity: { headers: {} } },
        { name: "finance", upstream: httpUpstream("/finance"), access: { groups: ["finance", "audit"] } },
        { name: "public", upstream: httpUpstream("/public"), access: { anonymous: true } },
      ],
    },
    { UPSTREAM_CREDENTIAL, UPSTREAM_JWT_KEY },
  );
}, 60_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  await gw?.stop();
  await Promise.all([idp?.stop(), rogue?.stop(), new Promise((r) => (upstream ? upstream.server.close(r) : r(undefined)))]);
  await db?.drop();
  rmSync(scratch, { recursive: true, force: true });
});

const resource = (connection: string) => `${gw.config.publicUrl}/mcp/${connection}`;

async function connect(connection: string, token: string | undefined, g: TestGateway = gw): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(g.mcpUrl(connection), token ? { requestInit: { headers: { Authorization: `Bearer ${token}` } } } : {});
  const client = new Client({ name: "identity-test", version: "1.0.0" });
  await client.connect(transport);
  clients.push(client);
  return { client, transport };
}

interface Reply {
  status: number;
  headers: Headers;
  body: { error?: { code: number; message: string; data?: { code?: string; detail?: string } } } & Record<string, unknown>;
}

async function post(url: string | URL, authorization: string | undefined, body: unknown = initialize(), headers: Record<string, string> = {}): Promise<Reply> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...(authorization ? { authorization } : {}), ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as Reply["body"]) : {} };
}

async function lastEventId(): Promise<bigint> {
  return (await gw.db.event.aggregate({ _max: { id: true } }))._max.id ?? 0n;
}

/** The event `type/reason` recorded after `after` (waits for the recorder's commit). */
async function eventAfter(after: bigint, type: string, reason: string, where: { connection?: string; sessionId?: string } = {}) {
  return waitFor(() => gw.db.event.findFirst({ where: { id: { gt: after }, type, reason, ...where }, orderBy: { id: "asc" } }), `event ${type}/${reason}`);
}

type EventRow = Awaited<ReturnType<TestGateway["db"]["event"]["findMany"]>>[number];
const countOf = (r: EventRow) => Number((r.detail as { count?: number } | null)?.count ?? 1);

/** Waits until the rows `query` returns account for `attempts` attempts (aggregated rows carry a count). */
async function countedEvents(query: () => Promise<EventRow[]>, attempts: number): Promise<EventRow[]> {
  let last = 0;
  try {
    return await waitFor(async () => {
      const rows = await query();
      last = rows.reduce((n, r) => n + countOf(r), 0);
      return last === attempts ? rows : undefined;
    }, `events counting ${attempts} attempts`);
  } catch (err) {
    throw new Error(`${(err as Error).message}: they count ${last}`);
  }
}

/**
 * A flood is recorded as at most 20 rows a second plus one counted row per second and reason
 * (audit/rejections.ts), never as a row per attempt.
 */
function expectAggregated(rows: EventRow[], attempts: number, elapsedMs: number): void {
  expect(rows.some((r) => (r.detail as { aggregated?: boolean } | null)?.aggregated === true && countOf(r) > 1)).toBe(true);
  expect(rows.length).toBeLessThanOrEqual((Math.ceil(elapsedMs / 1000) + 2) * 21);
  expect(rows.length).toBeLessThan(attempts);
}

// ── discovery and the gateway accepting the provider's tokens ────────────────────────────────

describe("a real OpenID Provider", () => {
  it("no token: 401 with WWW-Authenticate naming the resource metadata, which names the provider", async () => {
    const mark = await lastEventId();
    const reply = await post(gw.mcpUrl("tools"), undefined, initialize(), { "x-request-id": "req-no-token-1" });
    expect(reply.status).toBe(401);
    expect(reply.headers.get("x-request-id")).toBe("req-no-token-1");
    expect(reply.body.error?.data?.code).toBe("CS_ERR_UNAUTHENTICATED");
    const challenge = reply.headers.get("www-authenticate")!;
    const metadataUrl = `${gw.config.publicUrl}/.well-known/oauth-protected-resource/mcp/tools`;
    expect(challenge).toBe(`Bearer resource_metadata="${metadataUrl}"`);
    const metadata = (await (await fetch(metadataUrl)).json()) as Record<string, unknown>;
    expect(metadata).toMatchObject({ resource: resource("tools"), authorization_servers: [idp.issuer], bearer_methods_supported: ["header"] });
    // The connection's SSE endpoint is the same resource.
    const sseMetadata = (await (await fetch(`${gw.config.publicUrl}/.well-known/oauth-protected-resource/sse/tools`)).json()) as Record<string, unknown>;
    expect(sseMetadata.resource).toBe(resource("tools"));
    const sse = await fetch(gw.sseUrl("tools"));
    expect(sse.status).toBe(401);
    expect(sse.headers.get("www-authenticate")).toBe(challenge);
    await sse.body?.cancel();
    const event = await eventAfter(mark, "auth_failed", "missing_token", { connection: "tools" });
    expect(event.detail).toMatchObject({ address: "127.0.0.1" });
    expect(event.requestId).toBe("req-no-token-1"); // the log line's reqId finds this record
  });

  it("discovers the provider and accepts its client_credentials tokens; the session and its messages carry the identity", async () => {
    const token = await idp.token("alice-agent", resource("tools"));
    expect(decodeJwt(token)).toMatchObject({ iss: idp.issuer, aud: resource("tools"), sub: "alice-agent", client_id: "alice-agent", groups: ["engineering"] });
    const { client, transport } = await connect("tools", token);
    const result = await client.callTool({ name: "read-status", arguments: {} });
    expect(result.content).toEqual([{ type: "text", text: "all good" }]);
    const session = await gw.db.session.findUniqueOrThrow({ where: { id: transport.sessionId! } });
    expect(session).toMatchObject({
      subject: "alice-agent",
      issuer: idp.issuer,
      email: "alice@example.com",
      name: "Alice's agent",
      groups: ["engineering"],
      clientId: "alice-agent",
      remoteAddress: "127.0.0.1",
    });
    const messages = await gw.db.message.findMany({ where: { sessionId: session.id } });
    expect(messages.length).toBeGreaterThanOrEqual(4);
    expect(new Set(messages.map((m) => m.subject))).toEqual(new Set(["alice-agent"]));
  });
});

// ── attacks ─────────────────────────────────────────────────────────────────────────────────

describe("attacks on the token, each refused with 401 and recorded with its reason", () => {
  /** A valid token for `tools` that the attacks start from. */
  let genuine: string;
  beforeAll(async () => {
    genuine = await idp.token("alice-agent", resource("tools"));
  });

  const cases: Array<[string, string, () => Promise<string>, string?]> = [
    ["malformed", "malformed_token", async () => "Bearer this-is-not-a-jwt"],
    ["not a bearer token", "malformed_token", async () => `Basic ${Buffer.from("alice:password").toString("base64")}`],
    ["expired (signed by the provider's key)", "expired", async () => `Bearer ${await resign(genuine, (p) => ({ ...p, iat: now() - 7200, exp: now() - 3600 }), idp.current)}`],
    ["not yet valid (nbf in an hour)", "not_yet_valid", async () => `Bearer ${await resign(genuine, (p) => ({ ...p, nbf: now() + 3600, exp: now() + 7200 }), idp.current)}`],
    ["from another real provider the gateway does not trust", "wrong_issuer", async () => `Bearer ${await rogue.token("alice-agent", resource("tools"))}`],
    ["for another resource (wrong audience)", "wrong_audience", async () => `Bearer ${await idp.token("alice-agent", "https://elsewhere.example.com/mcp")}`],
    ["alg: none", "algorithm_not_allowed", async () => {
      const p = decodeJwt(genuine);
      return `Bearer ${b64({ alg: "none", typ: "at+jwt" })}.${b64({ ...p, groups: ["finance"] })}.`;
    }],
    ["HS256 signed with the provider's public key as the HMAC secret", "algorithm_not_allowed", async () => {
      const token = await new SignJWT({ ...decodeJwt(genuine), groups: ["finance"] })
        .setProtectedHeader({ alg: "HS256", typ: "at+jwt", kid: idp.current.kid })
        .sign(new TextEncoder().encode(idp.current.publicPem));
      return `Bearer ${token}`;
    }],
    ["tampered payload (groups changed, signature kept)", "bad_signature", async () => {
      const [h, , s] = genuine.split(".");
      return `Bearer ${h}.${b64({ ...decodeJwt(genuine), groups: ["engineering", "finance"] })}.${s}`;
    }],
    ["signed by another key under the provider's kid", "bad_signature", async () => `Bearer ${await resign(genuine, (p) => p, { kid: idp.current.kid, privateKey: (await newSigningKey("x")).privateKey })}`],
    ["a token for connection `tools` used on connection `reports`", "wrong_audience", async () => `Bearer ${genuine}`, "reports"],
  ];

  it.each(cases)("%s → %s", async (_name, reason, makeAuthorization, connection = "tools") => {
    const authorization = await makeAuthorization();
    const mark = await lastEventId();
    const sessionsBefore = await gw.db.session.count();
    const attacker = `attacker-${randomBytes(6).toString("hex")}`;
    const reply = await post(gw.mcpUrl(connection), authorization, initialize(attacker));
    expect(reply.status).toBe(401);
    expect(reply.body.error?.data?.code).toBe("CS_ERR_UNAUTHENTICATED");
    const challenge = reply.headers.get("www-authenticate")!;
    expect(challenge).toContain(`resource_metadata="${gw.config.publicUrl}/.well-known/oauth-protected-resource/mcp/${connection}"`);
    expect(challenge).toContain('error="invalid_token"');
    const event = await eventAfter(mark, "auth_failed", reason, { connection });
    expect(event.detail).toMatchObject({ address: "127.0.0.1" });
    // Nothing reached the upstream, and no session was opened.
    expect(reachedUpstream(attacker)).toBe(false);
    expect(await gw.db.session.count()).toBe(sessionsBefore);
  });

  /** A token the provider never signed: a key of its own under a kid the provider never published. */
  async function forger(): Promise<() => Promise<string>> {
    const stranger = await newSigningKey("never-published");
    return () => resign(genuine, (p) => ({ ...p, groups: ["finance"] }), { kid: `never-published-${randomBytes(4).toString("hex")}`, privateKey: stranger.privateKey });
  }

  it("unknown kid: exactly one JWKS refetch, then refused", async () => {
    const forged = await forger();
    // The gateway holds the provider's keys already; let its refetch cooldown (1 s here) pass.
    await idp.token("alice-agent", resource("tools")).then((t) => connect("tools", t));
    await waitFor(() => idp.jwksFetches > 0 && Date.now() - idp.lastJwksFetchAt > 1500, "the JWKS cooldown to pass");

    const fetchesBefore = idp.jwksFetches;
    const mark = await lastEventId();
    const reply = await post(gw.mcpUrl("tools"), `Bearer ${await forged()}`);
    expect(reply.status).toBe(401);
    expect(reply.body.error?.data?.code).toBe("CS_ERR_UNAUTHENTICATED");
    await eventAfter(mark, "auth_failed", "unknown_key", { connection: "tools" });
    expect(idp.jwksFetches - fetchesBefore).toBe(1);
  });

  it("a flood of 200 unknown-kid tokens causes no JWKS refetch storm and no row per attempt", async () => {
    // A gateway with the default cooldown (30 s): at most one refetch per 30 s, whatever arrives.
    const flooded = await startOnKnownPort(
      db.url,
      {
        auth: { issuers: [{ issuer: idp.issuer }], failedAttemptsPerMinute: 100_000 },
        connections: [{ name: "flooded", upstream: { type: "streamable_http", url: `${upstream.url}/flooded`, headers: { Authorization: { env: "UPSTREAM_CREDENTIAL" } } }, access: {} }],
      },
      { UPSTREAM_CREDENTIAL },
    );
    try {
      // A genuine caller first: the gateway discovers the provider and fetches its keys once.
      const fetchesAtStart = idp.jwksFetches;
      const { client } = await connect("flooded", await idp.token("alice-agent", `${flooded.config.publicUrl}/mcp/flooded`), flooded);
      await client.close();
      expect(idp.jwksFetches - fetchesAtStart).toBe(1);

      const forged = await forger();
      const tokens = await Promise.all(Array.from({ length: 200 }, forged));
      const floodStart = Date.now();
      const fetchesBefore = idp.jwksFetches;
      const statuses: number[] = [];
      for (let i = 0; i < tokens.length; i += 20) {
        const batch = await Promise.all(tokens.slice(i, i + 20).map((t) => post(flooded.mcpUrl("flooded"), `Bearer ${t}`)));
        statuses.push(...batch.map((r) => r.status));
      }
      const elapsedMs = Date.now() - floodStart;
      expect(statuses.every((s) => s === 401)).toBe(true);
      const floodFetches = idp.jwksFetches - fetchesBefore;
      expect(floodFetches).toBeLessThanOrEqual(1);
      console.log(`unknown-kid flood: 200 tokens in ${elapsedMs} ms caused ${floodFetches} JWKS fetch(es)`);
      // Every attempt is counted, but not one row each.
      const rows = await countedEvents(() => gw.db.event.findMany({ where: { type: "auth_failed", reason: "unknown_key", connection: "flooded" } }), 200);
      expectAggregated(rows, 200, elapsedMs);
      console.log(`unknown-kid flood: 200 failed attempts recorded as ${rows.length} event rows`);
    } finally {
      await flooded.stop();
    }
  });

  it("session hijack: another identity presenting the session id gets 403, recorded; the owner's session still works", async () => {
    const owner = await connect("tools", await idp.token("alice-agent", resource("tools")));
    const sid = owner.transport.sessionId!;
    const mark = await lastEventId();
    const intruder = await idp.token("ci-deployer", resource("tools"));
    const reply = await post(gw.mcpUrl("tools"), `Bearer ${intruder}`, { jsonrpc: "2.0", id: "hijack-7f3a", method: "tools/call", params: { name: "read-status", arguments: {} } }, {
      "mcp-session-id": sid,
      "mcp-protocol-version": "2025-06-18",
    });
    expect(reply.status).toBe(403);
    expect(reply.body.error?.data?.code).toBe("CS_ERR_SESSION_FORBIDDEN");
    const event = await eventAfter(mark, "access_denied", "session_identity_mismatch", { sessionId: sid });
    expect(event.subject).toBe("ci-deployer");
    expect(event.detail).toMatchObject({ owner: { subject: "alice-agent" }, presenter: { subject: "ci-deployer" } });
    expect(reachedUpstream("hijack-7f3a")).toBe(false);
    expect((await owner.client.callTool({ name: "read-status", arguments: {} })).content).toEqual([{ type: "text", text: "all good" }]);
    const messages = await gw.db.message.findMany({ where: { sessionId: sid } });
    expect(messages.some((m) => m.subject === "ci-deployer")).toBe(false);
  });
});

describe("sessions on the legacy SSE front are bound to their identity too", () => {
  it("another identity posting to the session's message endpoint gets 403; the owner's messages are accepted", async () => {
    const alice = await idp.token("alice-agent", resource("tools"));
    const stream = await fetch(gw.sseUrl("tools"), { headers: { accept: "text/event-stream", authorization: `Bearer ${alice}` } });
    expect(stream.status).toBe(200);
    // The first event names the message endpoint, with the session id.
    const reader = stream.body!.getReader();
    let text = "";
    const endpoint = await waitFor(async () => {
      const { value } = await reader.read();
      text += new TextDecoder().decode(value);
      return /event: endpoint\ndata: (\S+)/.exec(text)?.[1];
    }, "the endpoint event");
    const sessionId = new URL(endpoint, gw.config.publicUrl).searchParams.get("sessionId")!;
    const messageUrl = new URL(endpoint, gw.config.publicUrl);
    const mark = await lastEventId();
    const hijack = await post(messageUrl, `Bearer ${await idp.token("ci-deployer", resource("tools"))}`, initialize("sse-hijacker"));
    expect(hijack.status).toBe(403);
    expect(hijack.body.error?.data?.code).toBe("CS_ERR_SESSION_FORBIDDEN");
    await eventAfter(mark, "access_denied", "session_identity_mismatch", { sessionId });
    expect(reachedUpstream("sse-hijacker")).toBe(false);
    const own = await fetch(messageUrl, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${alice}` }, body: JSON.stringify(initialize("sse-owner")) });
    expect(own.status).toBe(202);
    await waitFor(() => reachedUpstream("sse-owner"), "the owner's initialize at the upstream");
    await reader.cancel();
  });
});

// ── key rotation ────────────────────────────────────────────────────────────────────────────

describe("key rotation at the provider", () => {
  it("tokens signed with the new key are accepted without restarting the gateway; older ones stay valid", async () => {
    const old = await idp.token("ci-deployer", resource("tools"));
    await connect("tools", old);
    const previousKid = idp.current.kid;
    const rotated = await idp.rotate();
    const fresh = await idp.token("ci-deployer", resource("tools"));
    expect(decodeProtectedHeader(fresh).kid).toBe(rotated.kid);
    expect(rotated.kid).not.toBe(previousKid);
    // An unknown kid refetches the JWKS once the cooldown since the last fetch has passed.
    await waitFor(() => Date.now() - idp.lastJwksFetchAt > 1500, "the JWKS cooldown to pass");
    const { client } = await connect("tools", fresh);
    expect((await client.callTool({ name: "read-status", arguments: {} })).content).toEqual([{ type: "text", text: "all good" }]);
    await connect("tools", old);
  });
});

// ── access: connections and tools by group ──────────────────────────────────────────────────

describe("access by group", () => {
  it("a caller outside the connection's groups gets 403 naming the groups it needs, recorded", async () => {
    const mark = await lastEventId();
    const reply = await post(gw.mcpUrl("finance"), `Bearer ${await idp.token("mallory-bot", resource("finance"))}`);
    expect(reply.status).toBe(403);
    expect(reply.body.error?.data?.code).toBe("CS_ERR_CONNECTION_FORBIDDEN");
    expect(reply.body.error?.data?.detail).toContain("finance, audit");
    expect(reply.body.error?.data?.detail).toContain("contractors");
    const event = await eventAfter(mark, "access_denied", "connection_not_granted", { connection: "finance" });
    expect(event).toMatchObject({ subject: "mallory-bot", detail: { needed: ["finance", "audit"], groups: ["contractors"] } });
  });

  it("a denied tool is absent from tools/list and refused on call (CS_ERR_TOOL_DENIED, recorded); other groups keep it", async () => {
    const ci = await connect("tools", await idp.token("ci-deployer", resource("tools")));
    const listed = (await ci.client.listTools()).tools.map((t) => t.name);
    expect(listed).toEqual(["read-status"]);
    const before = upstream.seen.filter((s) => s.body.includes("delete-records")).length;
    const mark = await lastEventId();
    const err = await ci.client.callTool({ name: "delete-records", arguments: {} }).then(
      () => undefined,
      (e: { code?: number; data?: { code?: string } }) => e,
    );
    expect(err?.data?.code).toBe("CS_ERR_TOOL_DENIED");
    const event = await eventAfter(mark, "access_denied", "tool_denied", { sessionId: ci.transport.sessionId! });
    expect(event).toMatchObject({ subject: "ci-deployer", detail: { tool: "delete-records", groups: ["ci"] } });
    expect(upstream.seen.filter((s) => s.body.includes("delete-records")).length).toBe(before);
    // Engineering has no rule against it.
    const alice = await connect("tools", await idp.token("alice-agent", resource("tools")));
    expect((await alice.client.listTools()).tools.map((t) => t.name).sort()).toEqual(["delete-records", "read-status"]);
  });
});

// ── what the upstream receives ──────────────────────────────────────────────────────────────

describe("the upstream never sees the caller's token", () => {
  /** Calls a tool with a unique marker in `_meta` and returns the upstream request that carried it. */
  async function markedCall(client: Client): Promise<Seen> {
    const marker = `marker-${randomBytes(6).toString("hex")}`;
    await client.callTool({ name: "read-status", arguments: {}, _meta: { "test/marker": marker } });
    return waitFor(() => upstream.seen.find((s) => s.body.includes(marker)), "the marked call at the upstream");
  }

  it("gets the connection's credential and a gateway-signed identity JWT that verifies against /.well-known/jwks.json", async () => {
    const token = await idp.token("ci-deployer", resource("tools"));
    const { client } = await connect("tools", token);
    const seen = await markedCall(client);
    expect(seen.path).toBe("/tools");
    expect(seen.headers.authorization).toBe(UPSTREAM_CREDENTIAL);
    expect(JSON.stringify(seen.headers)).not.toContain(token.split(".")[2]);
    const identityJwt = seen.headers["x-countersign-identity"] as string;
    const jwks = createRemoteJWKSet(new URL(`${gw.config.publicUrl}/.well-known/jwks.json`));
    const { payload, protectedHeader } = await jwtVerify(identityJwt, jwks, { issuer: gw.config.publicUrl, audience: `${upstream.url}/tools` });
    expect(protectedHeader.alg).toBe("EdDSA");
    expect(payload.sub).toBe("ci-deployer");
    expect(payload.countersign).toMatchObject({ kind: "service", issuer: idp.issuer, groups: ["ci"], client_id: "ci-deployer" });
    expect(payload.exp! - payload.iat!).toBe(300);
    // Signed by the gateway's key, not something a caller could present as its own.
    await expect(jwtVerify(identityJwt, createRemoteJWKSet(new URL(`${idp.issuer}/jwks`)))).rejects.toThrow();

    // The account's groups change at the provider: its next token's groups are what the upstream
    // is told, not those of an identity JWT minted a moment ago.
    const original = ACCOUNTS["ci-deployer"]!.groups;
    ACCOUNTS["ci-deployer"]!.groups = ["ci", "release"];
    try {
      const next = await connect("tools", await idp.token("ci-deployer", resource("tools")));
      const again = await markedCall(next.client);
      const { payload: renewed } = await jwtVerify(again.headers["x-countersign-identity"] as string, jwks, { issuer: gw.config.publicUrl, audience: `${upstream.url}/tools` });
      expect(renewed.countersign).toMatchObject({ groups: ["ci", "release"] });
    } finally {
      ACCOUNTS["ci-deployer"]!.groups = original;
    }
  });

  it("with upstreamIdentity.headers, gets the identity as headers", async () => {
    const token = await idp.token("alice-agent", resource("reports"));
    const { client } = await connect("reports", token);
    const seen = await markedCall(client);
    expect(seen.path).toBe("/reports");
    expect(seen.headers.authorization).toBe(UPSTREAM_CREDENTIAL);
    expect(seen.headers).toMatchObject({
      "x-countersign-subject": "alice-agent",
      "x-countersign-email": "alice@example.com",
      "x-countersign-groups": "engineering",
      "x-countersign-issuer": idp.issuer,
    });
    expect(seen.headers).not.toHaveProperty("x-countersign-identity");
  });

  it("no request the upstream ever received carried a caller's token: only the configured credential", () => {
    expect(upstream.seen.length).toBeGreaterThan(10);
    expect(idp.issued.length).toBeGreaterThan(10);
    for (const s of upstream.seen) {
      expect(s.headers.authorization).toBe(UPSTREAM_CREDENTIAL);
      const text = JSON.stringify(s);
      // The signature part identifies a token; none appears in any header or body.
      for (const token of idp.issued) expect(text).not.toContain(token.split(".")[2]);
    }
  });

  it("an anonymous connection admits callers without a token and records them as anonymous with their address", async () => {
    // A bad token is refused there too, not downgraded to anonymous.
    expect((await post(gw.mcpUrl("public"), "Bearer not-a-jwt")).status).toBe(401);
    const { client, transport } = await connect("public", undefined);
    await client.callTool({ name: "read-status", arguments: {} });
    const session = await gw.db.session.findUniqueOrThrow({ where: { id: transport.sessionId! } });
    expect(session).toMatchObject({ subject: "anonymous", issuer: "anonymous", remoteAddress: "127.0.0.1", groups: [], email: null });
    const messages = await gw.db.message.findMany({ where: { sessionId: session.id } });
    expect(new Set(messages.map((m) => m.subject))).toEqual(new Set(["anonymous"]));
  });
});

// ── rate limit ──────────────────────────────────────────────────────────────────────────────

describe("failed authentications are rate-limited per address", () => {
  let limited: TestGateway;
  beforeAll(async () => {
    limited = await startOnKnownPort(db.url, {
      auth: { issuers: [{ issuer: idp.issuer }], failedAttemptsPerMinute: 5 },
      connections: [{ name: "limited", upstream: { type: "streamable_http", url: `${upstream.url}/limited` }, access: {} }],
    });
  });
  afterAll(async () => {
    await limited?.stop();
  });

  it("after failedAttemptsPerMinute failures: 429 with Retry-After, even for a valid token; counted, not one row per attempt", async () => {
    const url = limited.mcpUrl("limited");
    for (let i = 0; i < 5; i++) expect((await post(url, "Bearer not-a-jwt")).status).toBe(401);
    const blocked = await post(url, "Bearer not-a-jwt");
    expect(blocked.status).toBe(429);
    expect(blocked.body.error?.data?.code).toBe("CS_ERR_RATE_LIMITED");
    const retryAfter = Number(blocked.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // Verification is skipped while blocked: a valid token waits too.
    const valid = await post(url, `Bearer ${await idp.token("alice-agent", `${limited.config.publicUrl}/mcp/limited`)}`);
    expect(valid.status).toBe(429);
    const floodStart = Date.now();
    const flood: number[] = [];
    for (let i = 0; i < 300; i += 30) flood.push(...(await Promise.all(Array.from({ length: 30 }, () => post(url, "Bearer not-a-jwt")))).map((r) => r.status));
    expect(flood.every((s) => s === 429)).toBe(true);

    const elapsedMs = Date.now() - floodStart;
    const attempts = 5 + 1 + 1 + 300;
    const rows = await countedEvents(() => gw.db.event.findMany({ where: { type: "auth_failed", connection: "limited" } }), attempts);
    expect(rows.filter((r) => r.reason === "malformed_token")).toHaveLength(5);
    expect(rows.every((r) => ["malformed_token", "rate_limited"].includes(r.reason))).toBe(true);
    expectAggregated(rows.filter((r) => r.reason === "rate_limited"), attempts - 5, elapsedMs);
    console.log(`rate limit: ${attempts} failed attempts recorded as ${rows.length} event rows`);
  });
});

// ── the built-in dev issuer and the quick start ─────────────────────────────────────────────


describe("the built-in dev issuer with the quick-start configuration", () => {
  let dev: TestGateway;
  let configFile: string;
  beforeAll(async () => {
    // The bundled quick start, with its key file in a scratch directory and a fixed public URL.
    const quickstart = parseYaml(readFileSync(QUICKSTART_CONFIG, "utf8")) as { auth: { devIssuer: Record<string, unknown> }; approvals?: unknown; connections: Array<{ upstream: Record<string, unknown> }> };
    quickstart.auth.devIssuer.keyFile = join(scratch, "dev-issuer.jwk");
    for (const c of quickstart.connections) c.upstream.cwd = ROOT;
    // Its approvals too: its rules name their approver group.
    dev = await startOnKnownPort(db.url, { auth: quickstart.auth, approvals: quickstart.approvals, connections: quickstart.connections });
    configFile = join(scratch, "quickstart.yaml");
    writeFileSync(configFile, stringifyYaml({ ...quickstart, version: 1, publicUrl: dev.config.publicUrl, database: { url: { env: "TEST_DATABASE_URL" } } }));
  });
  afterAll(async () => {
    await dev?.stop();
  });

  it("`countersign token` prints a token the gateway accepts; without a token the quick start answers 401", async () => {
    expect(dev.logText()).toContain("THE BUILT-IN DEV ISSUER IS ON");
    const unauthenticated = await post(dev.mcpUrl("everything"), undefined);
    expect(unauthenticated.status).toBe(401);
    expect(unauthenticated.body.error?.data?.code).toBe("CS_ERR_UNAUTHENTICATED");

    const out = await runCli(["token", "--config", configFile, "--sub", "alice", "--email", "alice@example.com", "--groups", "dev,oncall", "--ttl", "1h"], { TEST_DATABASE_URL: db.url });
    expect(out.code, out.stderr).toBe(0);
    const token = out.stdout.trim();
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({ iss: `${dev.config.publicUrl}/dev-issuer`, sub: "alice", email: "alice@example.com", groups: ["dev", "oncall"], aud: [`${dev.config.publicUrl}/mcp/everything`] });
    expect(claims.exp! - claims.iat!).toBe(3600);

    const { client, transport } = await connect("everything", token, dev);
    const result = await client.callTool({ name: "echo", arguments: { message: "hi" } });
    expect(result.content).toEqual([{ type: "text", text: "Echo: hi" }]);
    const session = await dev.db.session.findUniqueOrThrow({ where: { id: transport.sessionId! } });
    expect(session).toMatchObject({ subject: "alice", email: "alice@example.com", groups: ["dev", "oncall"], issuer: `${dev.config.publicUrl}/dev-issuer` });

    // A dev token without the connection's group is refused with 403.
    const outsider = await runCli(["token", "--config", configFile, "--sub", "bob", "--groups", "sales"], { TEST_DATABASE_URL: db.url });
    const refused = await post(dev.mcpUrl("everything"), `Bearer ${outsider.stdout.trim()}`);
    expect(refused.status).toBe(403);
    expect(refused.body.error?.data?.code).toBe("CS_ERR_CONNECTION_FORBIDDEN");
  }, 120_000);
});

// ── `countersign sessions --who / --group` ──────────────────────────────────────────────────

describe("countersign sessions filters by identity", () => {
  it("--who takes an e-mail or a subject, --group a group; the WHO column shows the e-mail or the subject", async () => {
    const configFile = join(scratch, "evidence.yaml");
    writeFileSync(configFile, stringifyYaml({
      version: 1,
      database: { url: { env: "TEST_DATABASE_URL" } },
      connections: [{ name: "tools", upstream: { type: "streamable_http", url: `${upstream.url}/tools` }, access: { anonymous: true } }],
    }));
    // Every session in the database (the dev issuer's included).
    const all = await gw.db.session.findMany();
    const aliceIds = all.filter((s) => s.email === "alice@example.com").map((s) => s.id).sort();
    const ciIds = all.filter((s) => s.groups.includes("ci")).map((s) => s.id).sort();
    expect(aliceIds.length).toBeGreaterThan(0);
    expect(ciIds.length).toBeGreaterThan(0);

    // The CLI, as an auditor runs it (two processes: each start costs seconds on a busy machine)…
    const env = { TEST_DATABASE_URL: db.url };
    const cli = (...args: string[]) => runCli(["sessions", "--config", configFile, "--limit", "500", ...args], env);
    const [table, byGroup] = await Promise.all([cli("--who", "alice@example.com", "--connection", "tools"), cli("--group", "ci", "--json")]);
    for (const r of [table, byGroup]) expect(r.code, r.stderr).toBe(0);
    const lines = table.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/WHO$/);
    expect(lines.length - 1).toBe(all.filter((s) => s.email === "alice@example.com" && s.connection === "tools").length);
    for (const line of lines.slice(1)) expect(line).toMatch(/ alice@example\.com$/);
    const groupRows = JSON.parse(byGroup.stdout) as Array<{ id: string; groups: string[] }>;
    expect(groupRows.map((r) => r.id).sort()).toEqual(ciIds);
    expect(groupRows.every((r) => r.groups.includes("ci"))).toBe(true);

    // …and the same filters underneath: e-mail without case, subject exactly, nothing for a stranger.
    const ids = async (f: Parameters<typeof listSessions>[1]) => (await listSessions(gw.db, { limit: 500, ...f })).map((r) => r.id).sort();
    expect(await ids({ who: "Alice@Example.com" })).toEqual(aliceIds);
    expect(await ids({ who: "ci-deployer" })).toEqual(all.filter((s) => s.subject === "ci-deployer").map((s) => s.id).sort());
    expect(await ids({ who: "ci-deployer", group: "engineering" })).toEqual([]);
    expect(await ids({ who: "nobody@example.com" })).toEqual([]);
  }, 120_000);
});
