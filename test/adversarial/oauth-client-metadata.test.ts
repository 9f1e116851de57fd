// Client ID metadata documents from a server that misbehaves: too big (declared or streamed),
// too slow, redirecting elsewhere, or naming another client. The gateway is configured for a lab
// (private addresses allowed, a private CA) so that a loopback https server can play the
// client's host; each refusal is recorded. Also: a good document starts a login, and the
// registered-client store refuses registrations beyond its bound.
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { everythingStdio, startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { freePort } from "../helpers/upstreams.js";

let db: TestDatabase;
let gw: TestGateway;
let scratch: string;
let host: Server;
let hostUrl: string;
const REDIRECT = "http://127.0.0.1:7777/callback";

beforeAll(async () => {
  db = await createTestDatabase();
  scratch = mkdtempSync(join(tmpdir(), "countersign-cimd-"));
  const key = join(scratch, "key.pem");
  const cert = join(scratch, "cert.pem");
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1", "-keyout", key, "-out", cert], { stdio: "ignore" });
  host = createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
    const self = `${hostUrl}${req.url}`;
    const doc = (extra: Record<string, unknown> = {}) => JSON.stringify({ client_id: self, client_name: "Hosted Agent", redirect_uris: [REDIRECT], ...extra });
    switch (req.url) {
      case "/ok.json": return res.writeHead(200, { "content-type": "application/json" }).end(doc());
      case "/big.json": return res.writeHead(200, { "content-type": "application/json" }).end(doc({ padding: "x".repeat(10_000) }));
      case "/big-streamed.json": {
        res.writeHead(200, { "content-type": "application/json" });
        // No content-length: the limit must count the bytes as they come.
        for (let i = 0; i < 20; i++) res.write(" ".repeat(1000));
        return res.end(doc());
      }
      case "/slow.json": return res.writeHead(200, { "content-type": "application/json" }).write("{"); // and nothing more
      case "/redirect.json": return res.writeHead(302, { location: "https://169.254.169.254/latest/meta-data" }).end();
      case "/other-id.json": return res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ client_id: "https://elsewhere.example/agent.json", redirect_uris: [REDIRECT] }));
      default: return res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => host.listen(0, "127.0.0.1", r));
  const addr = host.address();
  hostUrl = `https://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
  const port = await freePort();
  gw = await startTestGateway(db.url, {
    server: { host: "127.0.0.1", port },
    auth: { devIssuer: { enabled: true, keyFile: join(scratch, "dev.jwk") } },
    oauth: {
      registration: { maxClients: 2 },
      clientMetadataDocuments: { allowedHosts: ["127.0.0.1"], allowPrivateAddresses: true, ca: { env: "CIMD_CA" }, maxBytes: 2048, timeoutMs: 500 },
    },
    connections: [{ name: "ops", access: { groups: ["dev"] }, upstream: everythingStdio() }],
  }, { CIMD_CA: readFileSync(cert, "utf8") });
});

afterAll(async () => {
  await gw?.stop();
  host?.closeAllConnections();
  await new Promise((r) => (host ? host.close(r) : r(undefined)));
  await db?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

async function authorize(clientId: string) {
  const verifier = randomBytes(32).toString("base64url");
  const u = new URL("/oauth/authorize", gw.address);
  const params = { response_type: "code", client_id: clientId, redirect_uri: REDIRECT, code_challenge: createHash("sha256").update(verifier).digest("base64url"), code_challenge_method: "S256", resource: `${gw.config.publicUrl}/mcp/ops` };
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  const res = await fetch(u, { redirect: "manual" });
  return { status: res.status, location: res.headers.get("location"), body: await res.text() };
}

async function refusedWith(clientId: string, why: string) {
  const res = await authorize(clientId);
  expect(res.status).toBe(400);
  expect(res.location).toBeNull();
  await expect.poll(async () => {
    const rows = await gw.db.event.findMany({ where: { type: "oauth", reason: "client_metadata_refused" } });
    return rows.some((r) => (r.detail as { clientId?: string; why?: string }).clientId === clientId && (r.detail as { why: string }).why === `client metadata document refused: ${why}`);
  }, { timeout: 10_000 }).toBe(true);
}

describe("client ID metadata documents from a hostile host", () => {
  it("accepts a good document: the login goes on to the consent page", async () => {
    const res = await authorize(`${hostUrl}/ok.json`);
    expect(res.status).toBe(302);
    expect(res.location).toMatch(/^\/console\/oauth\/consent\?request=/);
  });

  it("refuses a document over the size limit, declared or streamed", async () => {
    await refusedWith(`${hostUrl}/big.json`, "larger than 2048 bytes");
    await refusedWith(`${hostUrl}/big-streamed.json`, "larger than 2048 bytes");
  });

  it("refuses a document that does not arrive within the time limit", async () => {
    await refusedWith(`${hostUrl}/slow.json`, "not received within 500 ms");
  });

  it("follows no redirect (here towards a cloud metadata address)", async () => {
    await refusedWith(`${hostUrl}/redirect.json`, "HTTP 302: redirects are not followed");
  });

  it("refuses a document that names another client id", async () => {
    await refusedWith(`${hostUrl}/other-id.json`, "its client_id is not the URL it was fetched from");
  });
});

describe("the registered-client store", () => {
  it("refuses registrations beyond oauth.registration.maxClients, recorded", async () => {
    const register = () => fetch(`${gw.address}/oauth/register`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ redirect_uris: [REDIRECT] }) });
    expect((await register()).status).toBe(201);
    expect((await register()).status).toBe(201);
    const full = await register();
    expect(full.status).toBe(503);
    expect(((await full.json()) as { error: string }).error).toBe("temporarily_unavailable");
    expect(await gw.db.oAuthClient.count()).toBe(2);
    await expect.poll(() => gw.db.event.count({ where: { type: "oauth", reason: "registration_refused", detail: { path: ["error"], equals: "temporarily_unavailable" } } }), { timeout: 10_000 }).toBe(1);
  });
});
