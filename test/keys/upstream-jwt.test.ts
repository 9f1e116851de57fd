// The upstream identity key (keys.ring.upstreamJwt) rotated by a reload: the new key signs the
// identity JWTs sent to upstreams, the old one stays in /.well-known/jwks.json while it is
// verify-only (an upstream still verifies a token signed before), and leaves it once retired.
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from "jose";
import { stringify } from "yaml";
import { afterAll, beforeAll, expect, it } from "vitest";
import { loadConfigFile } from "../../gateway/config/load.js";
import { startGateway, type Gateway } from "../../gateway/gateway.js";
import type { Identity } from "../../gateway/auth/identity.js";
import { createLogger } from "../../gateway/log.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { loggingServerStdio } from "../helpers/process.js";

let db: TestDatabase;
let gw: Gateway;
let scratch: string;
let file: string;

const key = (id: string, state?: "verify-only" | "retired") => ({ id, secret: { env: `KJ_${id.toUpperCase().replace("-", "_")}` }, ...(state ? { state } : {}) });
function writeConfig(upstreamJwt: unknown[]): void {
  writeFileSync(
    file,
    stringify({
      version: 1,
      server: { host: "127.0.0.1", port: 0 },
      database: { url: { env: "KJ_DATABASE_URL" }, migrateOnStart: false },
      keys: { ring: { upstreamJwt } },
      connections: [{ name: "tools", access: { anonymous: true }, upstream: loggingServerStdio(join(scratch, "received.log")), upstreamIdentity: { jwt: {} } }],
    }),
  );
}
async function rotate(upstreamJwt: unknown[]): Promise<void> {
  writeConfig(upstreamJwt);
  const r = await gw.reload({ kind: "signal" });
  expect(r.applied, JSON.stringify(r.problems.concat(r.restartRequired))).toBe(true);
}
const jwks = async () => (await (await fetch(`${gw.address}/.well-known/jwks.json`)).json()) as JSONWebKeySet;
const caller: Identity = { kind: "user", subject: "alice", issuer: "https://idp.example.com", groups: ["dev"] } as Identity;
const verifies = async (token: string) => jwtVerify(token, createLocalJWKSet(await jwks()), { audience: "tools" }).then(() => true, () => false);

beforeAll(async () => {
  db = await createTestDatabase();
  scratch = mkdtempSync(join(tmpdir(), "countersign-upstream-jwt-"));
  file = join(scratch, "countersign.yaml");
  for (const id of ["JWT_1", "JWT_2"]) process.env[`KJ_${id}`] = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  process.env.KJ_DATABASE_URL = db.url;
  writeConfig([key("jwt-1")]);
  gw = await startGateway(loadConfigFile(file), { log: createLogger("silent", new Writable({ write: (_c, _e, cb) => cb() })), progress: () => {} });
});
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

it("signs with the new key after a rotation; the old key's tokens verify until it is retired", async () => {
  const signer = gw.identity.signer!;
  const before = signer.token(caller, "tools", 300);
  expect(decodeProtectedHeader(before).kid).toBe("jwt-1");
  expect(await verifies(before)).toBe(true);

  await rotate([key("jwt-2"), key("jwt-1", "verify-only")]);
  expect((await jwks()).keys.map((k) => k.kid)).toEqual(["jwt-2", "jwt-1"]);
  const after = signer.token(caller, "tools", 300);
  expect(decodeProtectedHeader(after).kid).toBe("jwt-2");
  expect(await verifies(after)).toBe(true);
  expect(await verifies(before)).toBe(true);

  await rotate([key("jwt-2"), key("jwt-1", "retired")]);
  expect((await jwks()).keys.map((k) => k.kid)).toEqual(["jwt-2"]);
  expect(await verifies(before)).toBe(false);
  expect(await verifies(after)).toBe(true);
});
