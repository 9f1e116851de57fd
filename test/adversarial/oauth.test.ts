// The authorization server is a new door: a hostile client, or a hostile web page in the
// person's browser, tries every way around it. Each refusal is asserted as recorded. A real
// gateway (dev issuer, console one-click login) on real Postgres; HTTP from fetch.
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signDevToken } from "../../gateway/auth/dev-issuer.js";
import { everythingStdio, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { freePort } from "../helpers/upstreams.js";
import { hashOf } from "../../gateway/store/oauth.js";
import { consentAs } from "../oauth/helpers.js";

let db: TestDatabase;
let gw: TestGateway;
let scratch: string;
const REDIRECT = "http://127.0.0.1:7777/callback";

beforeAll(async () => {
  db = await createTestDatabase();
  scratch = mkdtempSync(join(tmpdir(), "countersign-oauth-adv-"));
  const port = await freePort();
  gw = await startTestGateway(db.url, {
    server: { host: "127.0.0.1", port, trustProxy: true },
    auth: { devIssuer: { enabled: true, keyFile: join(scratch, "dev.jwk") } },
    console: { devUsers: [{ subject: "alice", email: "alice@example.com", groups: ["dev"] }, { subject: "mallory", email: "mallory@example.com", groups: [] }] },
    oauth: { registration: { perMinutePerAddress: 5 }, clientMetadataDocuments: { allowedHosts: ["127.0.0.1", "localhost", "clients.example.com"] } },
    connections: [
      { name: "ops", access: { groups: ["dev"] }, upstream: everythingStdio() },
      { name: "other", access: { groups: ["dev"] }, upstream: everythingStdio() },
    ],
  });
});

afterAll(async () => {
  await gw?.stop();
  await db?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

// Each test registers from its own address, so the per-address limit counts it alone.
let addressN = 0;
const newAddress = () => `203.0.113.${++addressN}`;

async function register(address: string, metadata: Record<string, unknown> = { client_name: "Hostile Agent", redirect_uris: [REDIRECT] }) {
  const res = await fetch(`${gw.address}/oauth/register`, { method: "POST", headers: { "content-type": "application/json", "x-forwarded-for": address }, body: JSON.stringify(metadata) });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}

function pkce() {
  const verifier = randomBytes(32).toString("base64url");
  return { verifier, challenge: createHash("sha256").update(verifier).digest("base64url") };
}

function authorizeUrl(p: Record<string, string | undefined>): string {
  const u = new URL("/oauth/authorize", gw.address);
  for (const [k, v] of Object.entries({ response_type: "code", code_challenge_method: "S256", redirect_uri: REDIRECT, resource: resource("ops"), state: "s1", ...p })) if (v !== undefined) u.searchParams.set(k, v);
  return u.pathname + u.search;
}

const resource = (c: string) => `${gw.config.publicUrl}/mcp/${c}`;

async function token(form: Record<string, string>) {
  const res = await fetch(`${gw.address}/oauth/token`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(form).toString() });
  return { status: res.status, body: (await res.json()) as Record<string, string | number> };
}

/** A registered client, alice's consent, and the code. */
async function codeFor(connection = "ops", redirectUri = REDIRECT) {
  const { body: client } = await register(newAddress(), { client_name: "Agent", redirect_uris: [redirectUri] });
  const { verifier, challenge } = pkce();
  const done = await consentAs(gw.address, "alice", authorizeUrl({ client_id: client.client_id, code_challenge: challenge, resource: resource(connection), redirect_uri: redirectUri }));
  expect(done.status).toBe(302);
  const code = new URL(done.location!).searchParams.get("code")!;
  expect(code).toBeTruthy();
  return { clientId: client.client_id!, verifier, code, redirectUri };
}

async function tokensFor(connection = "ops") {
  const c = await codeFor(connection);
  const t = await token({ grant_type: "authorization_code", code: c.code, client_id: c.clientId, redirect_uri: c.redirectUri, code_verifier: c.verifier, resource: resource(connection) });
  expect(t.status).toBe(200);
  return { ...c, access: String(t.body.access_token), refresh: String(t.body.refresh_token) };
}

/** Waits for an `oauth` event with this reason whose detail contains `detail`. */
async function recorded(reason: string, detail: Record<string, unknown>, type = "oauth") {
  await expect.poll(async () => {
    const rows = await gw.db.event.findMany({ where: { type, reason } });
    return rows.some((r) => Object.entries(detail).every(([k, v]) => JSON.stringify((r.detail as Record<string, unknown>)[k]) === JSON.stringify(v)));
  }, { timeout: 10_000 }).toBe(true);
}

async function callTool(connection: string, accessToken: string) {
  const res = await fetch(`${gw.address}/mcp/${connection}`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", authorization: `Bearer ${accessToken}` },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "adv", version: "1" } } }),
  });
  await res.body?.cancel();
  return res;
}

describe("redirect URIs", () => {
  it("refuses a redirect_uri the client did not register, showing the error instead of redirecting there", async () => {
    const { body: client } = await register(newAddress());
    const { challenge } = pkce();
    for (const evil of ["https://evil.example/callback", "http://127.0.0.1:7777/callback/../steal", "http://127.0.0.1:7777/callbackx", "http://127.0.0.1.evil.example:7777/callback"]) {
      const res = await fetch(`${gw.address}${authorizeUrl({ client_id: client.client_id, code_challenge: challenge, redirect_uri: evil })}`, { redirect: "manual" });
      expect(res.status).toBe(400);
      expect(res.headers.get("location")).toBeNull();
      await recorded("authorize_refused", { clientId: client.client_id, redirectUri: evil });
    }
  });

  it("lets a loopback redirect URI change its port (native apps), nothing else", async () => {
    const { body: client } = await register(newAddress());
    const { challenge } = pkce();
    const ok = await fetch(`${gw.address}${authorizeUrl({ client_id: client.client_id, code_challenge: challenge, redirect_uri: "http://127.0.0.1:49152/callback" })}`, { redirect: "manual" });
    expect(ok.status).toBe(302);
    expect(ok.headers.get("location")).toMatch(/^\/console\/oauth\/consent\?request=/);
    const otherHost = await fetch(`${gw.address}${authorizeUrl({ client_id: client.client_id, code_challenge: challenge, redirect_uri: "http://localhost:7777/callback" })}`, { redirect: "manual" });
    expect(otherHost.status).toBe(400);
  });

  it("refuses to register redirect URIs that are not https, loopback http or a private-use scheme", async () => {
    for (const uri of ["javascript:alert(1)", "http://evil.example/cb", "data:text/html,x", "https://ok.example/cb#frag", "file:///etc/passwd"]) {
      const res = await register(newAddress(), { redirect_uris: [uri] });
      expect(res.status).toBe(400);
      expect(res.body.error).toBe("invalid_redirect_uri");
    }
    await recorded("registration_refused", { error: "invalid_redirect_uri", remoteAddress: `203.0.113.${addressN}` });
  });

  it("refuses a code exchanged with another redirect_uri than the one authorized", async () => {
    const c = await codeFor("ops", "http://127.0.0.1:7777/callback");
    const t = await token({ grant_type: "authorization_code", code: c.code, client_id: c.clientId, redirect_uri: "http://127.0.0.1:7777/other", code_verifier: c.verifier });
    expect(t.status).toBe(400);
    expect(t.body.error).toBe("invalid_grant");
    await recorded("token_refused", { clientId: c.clientId, why: "redirect_uri differs from the authorization request's" });
  });
});

describe("PKCE", () => {
  it("refuses an authorization request without PKCE or with the plain method, answering at the redirect URI", async () => {
    const { body: client } = await register(newAddress());
    const missing = await fetch(`${gw.address}${authorizeUrl({ client_id: client.client_id })}`, { redirect: "manual" });
    expect(missing.status).toBe(302);
    const back = new URL(missing.headers.get("location")!);
    expect(`${back.origin}${back.pathname}`).toBe(REDIRECT);
    expect(back.searchParams.get("error")).toBe("invalid_request");
    expect(back.searchParams.get("state")).toBe("s1");
    const plain = await fetch(`${gw.address}${authorizeUrl({ client_id: client.client_id, code_challenge: "a".repeat(43), code_challenge_method: "plain" })}`, { redirect: "manual" });
    expect(new URL(plain.headers.get("location")!).searchParams.get("error")).toBe("invalid_request");
    await recorded("authorize_refused", { clientId: client.client_id, why: "PKCE is required: code_challenge (S256, 43 characters) is missing or malformed" });
    await recorded("authorize_refused", { clientId: client.client_id, why: "PKCE code_challenge_method must be S256" });
  });

  it("refuses a code exchanged with a wrong or missing code_verifier, and the code is spent", async () => {
    const c = await codeFor();
    const none = await token({ grant_type: "authorization_code", code: c.code, client_id: c.clientId, redirect_uri: c.redirectUri });
    expect(none.body.error).toBe("invalid_grant");
    const wrong = await token({ grant_type: "authorization_code", code: c.code, client_id: c.clientId, redirect_uri: c.redirectUri, code_verifier: pkce().verifier });
    expect(wrong.body.error).toBe("invalid_grant");
    await recorded("token_refused", { clientId: c.clientId, why: "PKCE verification failed: code_verifier does not match code_challenge" });
    // One try per code: the right verifier now finds it spent (and what it gave revoked).
    const late = await token({ grant_type: "authorization_code", code: c.code, client_id: c.clientId, redirect_uri: c.redirectUri, code_verifier: c.verifier });
    expect(late.body.error).toBe("invalid_grant");
  });
});

describe("codes and refresh tokens", () => {
  it("refuses a code exchanged by another client than the one it was issued to", async () => {
    const c = await codeFor();
    const { body: other } = await register(newAddress());
    const t = await token({ grant_type: "authorization_code", code: c.code, client_id: other.client_id!, redirect_uri: c.redirectUri, code_verifier: c.verifier });
    expect(t.body.error).toBe("invalid_grant");
    await recorded("token_refused", { clientId: other.client_id, why: "the code was issued to another client" });
  });

  it("sends a denial back to the client as access_denied, recorded", async () => {
    const { body: client } = await register(newAddress());
    const { challenge } = pkce();
    const res = await consentAs(gw.address, "alice", authorizeUrl({ client_id: client.client_id, code_challenge: challenge }), "deny");
    expect(res.status).toBe(302);
    const back = new URL(res.location!);
    expect(back.searchParams.get("error")).toBe("access_denied");
    expect(back.searchParams.get("code")).toBeNull();
    await recorded("consent_refused", { clientId: client.client_id, error: "access_denied" });
  });

  it("refuses a code used twice and revokes the tokens the first use gave", async () => {
    const t = await tokensFor();
    const again = await token({ grant_type: "authorization_code", code: t.code, client_id: t.clientId, redirect_uri: t.redirectUri, code_verifier: t.verifier });
    expect(again.status).toBe(400);
    expect(again.body.error).toBe("invalid_grant");
    await recorded("token_refused", { clientId: t.clientId, codeReused: true, revokedRefreshTokens: 1 });
    const refresh = await token({ grant_type: "refresh_token", refresh_token: t.refresh, client_id: t.clientId });
    expect(refresh.body.error).toBe("invalid_grant");
  });

  it("rotates refresh tokens; a used one presented again revokes the whole login", async () => {
    const t = await tokensFor();
    const first = await token({ grant_type: "refresh_token", refresh_token: t.refresh, client_id: t.clientId });
    expect(first.status).toBe(200);
    expect(first.body.refresh_token).not.toBe(t.refresh);
    // Later than the grace for a client's own concurrent refreshes (oauth.refreshReuseGraceSeconds).
    await gw.db.oAuthRefreshToken.update({ where: { tokenHash: hashOf(t.refresh) }, data: { usedAt: new Date(Date.now() - 60_000) } });
    const replay = await token({ grant_type: "refresh_token", refresh_token: t.refresh, client_id: t.clientId });
    expect(replay.body.error).toBe("invalid_grant");
    await recorded("refresh_reuse_detected", { clientId: t.clientId, revokedRefreshTokens: 2 });
    // The rightful newer token is revoked too: the thief and the owner both log in again.
    const newer = await token({ grant_type: "refresh_token", refresh_token: String(first.body.refresh_token), client_id: t.clientId });
    expect(newer.body.error).toBe("invalid_grant");
  });

  it("honours a client's own concurrent refreshes with one token (within the grace), recorded as such", async () => {
    const t = await tokensFor();
    const both = await Promise.all([0, 1].map(() => token({ grant_type: "refresh_token", refresh_token: t.refresh, client_id: t.clientId })));
    expect(both.map((r) => r.status)).toEqual([200, 200]);
    await recorded("token_issued", { clientId: t.clientId, grantType: "refresh_token", reuseWithinGrace: true });
    expect(await gw.db.event.count({ where: { type: "oauth", reason: "refresh_reuse_detected", detail: { path: ["clientId"], equals: t.clientId } } })).toBe(0);
  });

  it("refuses a refresh token presented by another client, and revokes it", async () => {
    const t = await tokensFor();
    const { body: other } = await register(newAddress());
    const stolen = await token({ grant_type: "refresh_token", refresh_token: t.refresh, client_id: other.client_id! });
    expect(stolen.body.error).toBe("invalid_grant");
    await recorded("token_refused", { clientId: other.client_id, why: "the refresh token was issued to another client; this login is revoked" });
    const owner = await token({ grant_type: "refresh_token", refresh_token: t.refresh, client_id: t.clientId });
    expect(owner.body.error).toBe("invalid_grant");
  });

  it("refuses a repeated parameter and an unknown grant type", async () => {
    const res = await fetch(`${gw.address}/oauth/token`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "grant_type=authorization_code&code=a&code=b" });
    expect(((await res.json()) as { error: string }).error).toBe("invalid_request");
    expect((await token({ grant_type: "password", username: "alice", password: "x" })).body.error).toBe("unsupported_grant_type");
    await recorded("token_refused", { error: "unsupported_grant_type", grantType: "password" });
  });
});

describe("resources and audiences", () => {
  it("refuses a resource that is not one of the gateway's connections", async () => {
    const { body: client } = await register(newAddress());
    const { challenge } = pkce();
    for (const r of ["https://evil.example/mcp/ops", `${gw.config.publicUrl}/mcp/nope`, `${gw.config.publicUrl}/admin`, `${gw.config.publicUrl}/approvals`]) {
      const res = await fetch(`${gw.address}${authorizeUrl({ client_id: client.client_id, code_challenge: challenge, resource: r })}`, { redirect: "manual" });
      expect(new URL(res.headers.get("location")!).searchParams.get("error")).toBe("invalid_target");
      await recorded("authorize_refused", { clientId: client.client_id, resource: r });
    }
    const missing = await fetch(`${gw.address}${authorizeUrl({ client_id: client.client_id, code_challenge: challenge, resource: undefined })}`, { redirect: "manual" });
    expect(new URL(missing.headers.get("location")!).searchParams.get("error")).toBe("invalid_target");
  });

  it("refuses a code exchanged for another resource than the one authorized", async () => {
    const c = await codeFor("ops");
    const t = await token({ grant_type: "authorization_code", code: c.code, client_id: c.clientId, redirect_uri: c.redirectUri, code_verifier: c.verifier, resource: resource("other") });
    expect(t.body.error).toBe("invalid_target");
    await recorded("token_refused", { clientId: c.clientId, error: "invalid_target" });
  });

  it("a token for one connection is refused by another; the IdP's own tokens keep working", async () => {
    const t = await tokensFor("ops");
    expect((await callTool("ops", t.access)).status).toBe(200);
    const elsewhere = await callTool("other", t.access);
    expect(elsewhere.status).toBe(401);
    expect(elsewhere.headers.get("www-authenticate")).toContain('error="invalid_token"');
    await recorded("wrong_audience", { address: "127.0.0.1" }, "auth_failed");
    const d = gw.identity.devIssuer!;
    const idpToken = await signDevToken(d.key, d.url, { subject: "alice", groups: ["dev"], audience: [resource("other")], ttlSeconds: 300 });
    expect((await callTool("other", idpToken)).status).toBe(200);
  });

  it("gives no code to a person whose groups do not grant the connection", async () => {
    const { body: client } = await register(newAddress());
    const { challenge } = pkce();
    const res = await consentAs(gw.address, "mallory", authorizeUrl({ client_id: client.client_id, code_challenge: challenge }));
    expect(res.status).toBe(403);
    expect(res.location).toBeUndefined();
    await recorded("consent_refused", { clientId: client.client_id, groups: [] });
  });

  it("refuses a consent form altered on the way, or posted without the console's CSRF token", async () => {
    const { body: client } = await register(newAddress());
    const { challenge } = pkce();
    const url = authorizeUrl({ client_id: client.client_id, code_challenge: challenge });
    const start = await fetch(`${gw.address}${url}`, { redirect: "manual" });
    const sealed = new URL(start.headers.get("location")!, gw.address).searchParams.get("request")!;
    // The same request with its resource swapped keeps the old signature: refused.
    const [body, mac] = sealed.split(".");
    const swapped = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(body!, "base64url").toString()), resource: resource("other") })).toString("base64url");
    const altered = await consentAs(gw.address, "alice", `/console/oauth/consent?request=${swapped}.${mac}`);
    expect(altered.status).toBe(400);
    await recorded("consent_refused", { why: "the signed authorization request is missing, altered or older than 10 minutes" });
    const forged = await fetch(`${gw.address}/console/oauth/consent`, { method: "POST", redirect: "manual", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ request: sealed, decision: "allow" }).toString() });
    expect(forged.status).toBe(401);
    expect(forged.headers.get("location")).toBeNull();
  });
});

describe("registration", () => {
  it("rate-limits a flood of registrations from one address and records it", async () => {
    const address = newAddress();
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await register(address)).status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(5);
    expect(statuses.slice(5).every((s) => s === 429)).toBe(true);
    await recorded("registration_rate_limited", { remoteAddress: address, error: "slow_down" });
    // Another address is not affected.
    expect((await register(newAddress())).status).toBe(201);
  });

  it("refuses malformed client metadata", async () => {
    const address = newAddress();
    const res = await fetch(`${gw.address}/oauth/register`, { method: "POST", headers: { "content-type": "application/json", "x-forwarded-for": address }, body: "[1,2" });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe("invalid_client_metadata");
    expect((await register(address, { redirect_uris: [REDIRECT], grant_types: ["client_credentials"] })).body.error).toBe("invalid_client_metadata");
    await recorded("registration_refused", { remoteAddress: address, why: "grant_types may hold only authorization_code and refresh_token" });
  });
});

describe("client ID metadata documents (no SSRF)", () => {
  const attempt = async (clientId: string) => {
    const { challenge } = pkce();
    const res = await fetch(`${gw.address}${authorizeUrl({ client_id: clientId, code_challenge: challenge })}`, { redirect: "manual" });
    expect(res.status).toBe(400);
    expect(res.headers.get("location")).toBeNull();
    expect(await res.text()).toContain("invalid_client: client metadata document refused");
  };

  it("never fetches over plain http", async () => {
    await attempt("http://127.0.0.1:9/client.json");
    await recorded("client_metadata_refused", { clientId: "http://127.0.0.1:9/client.json", why: "client metadata document refused: only https URLs are fetched" });
  });

  it("never fetches from a host that is not allowed", async () => {
    await attempt("https://attacker.example/client.json");
    await recorded("client_metadata_refused", { clientId: "https://attacker.example/client.json", why: "client metadata document refused: host attacker.example is not in oauth.clientMetadataDocuments.allowedHosts" });
  });

  it("never fetches from a loopback, private or link-local address, even on an allowed host", async () => {
    await attempt("https://127.0.0.1/client.json");
    await recorded("client_metadata_refused", { clientId: "https://127.0.0.1/client.json", why: "client metadata document refused: 127.0.0.1 is a private or reserved address" });
    await attempt("https://localhost/client.json");
    await recorded("client_metadata_refused", { clientId: "https://localhost/client.json", why: "client metadata document refused: localhost resolves to a private or reserved address" });
  });
});
