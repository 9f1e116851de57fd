// The keyring's rules, through the parts that use it: the configuration refuses a ring that
// cannot work; a CSRF token, a login's OIDC state cookie and a relayed request signed before a
// rotation still verify while the old key is verify-only and are refused once it is retired.
import { randomBytes } from "node:crypto";
import Fastify, { type FastifyInstance } from "fastify";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signRelay, verifyRelay } from "../../gateway/cluster/peer-auth.js";
import { parseConfigText } from "../../gateway/config/load.js";
import { ConsoleSessions } from "../../gateway/console/session.js";
import { buildKeyring } from "../../gateway/keys/keyring.js";
import { KeyRing, type KeyState } from "../../gateway/keys/ring.js";

const material = { k1: randomBytes(32).toString("base64url"), k2: randomBytes(32).toString("base64url") };
const ringOf = (_purpose: string, keys: Array<[keyof typeof material, KeyState]>) => keys.map(([id, state]) => ({ id, key: Buffer.from(material[id]), state }));

function parse(ring: unknown, env: Record<string, string> = { K1: material.k1, K2: material.k2 }) {
  return parseConfigText(stringify({ version: 1, keys: { ring }, connections: [{ name: "a", access: { anonymous: true }, upstream: { type: "stdio", command: "true" } }] }), "ring.yaml", env);
}

describe("keys.ring in the configuration", () => {
  it("needs exactly one active key, unique ids and secrets of at least 32 characters", () => {
    expect(() => parse({ console: [{ id: "k1", secret: { env: "K1" } }, { id: "k2", secret: { env: "K2" } }] })).toThrow(/exactly one key must be active \(found 2\)/);
    expect(() => parse({ console: [{ id: "k1", secret: { env: "K1" }, state: "retired" }] })).toThrow(/exactly one key must be active \(found 0\)/);
    expect(() => parse({ console: [{ id: "k1", secret: { env: "K1" } }, { id: "k1", secret: { env: "K2" }, state: "verify-only" }] })).toThrow(/duplicate key id 'k1'/);
    expect(() => parse({ relay: [{ id: "k1", secret: { env: "K1" } }] }, { K1: "short" })).toThrow(/keys\.ring\.relay\[0\]\.secret: too short/);
    expect(() => parse({ requestState: [{ id: "no.dots", secret: { env: "K1" } }] })).toThrow(/keys\.ring\.requestState/);
  });

  it("a configured ring keys its purpose; without one the single key of before is a ring of one", () => {
    const rotated = buildKeyring(parse({ requestState: [{ id: "k2", secret: { env: "K2" } }, { id: "k1", secret: { env: "K1" }, state: "verify-only" }] }));
    expect(rotated.requestState.active().id).toBe("k2");
    expect(rotated.requestState.lookup("k1").ok).toBe(true);
    const legacy = buildKeyring(parseConfigText(stringify({ version: 1, console: { sessionKey: { env: "K1" } }, cluster: { secret: { env: "K2" } }, connections: [{ name: "a", access: { anonymous: true }, upstream: { type: "stdio", command: "true" } }] }), "legacy.yaml", { K1: material.k1, K2: material.k2 }));
    expect(legacy.console.describe()).toEqual([{ id: "console-session-key", state: "active" }]);
    expect(legacy.relay.describe()).toEqual([{ id: "cluster-secret", state: "active" }]);
    // What the relay signed before the keyring (no key id) still verifies with cluster.secret.
    expect(verifyRelay(legacy.relay, signRelay(material.k2, "POST", "/mcp/a", "r1", "{}"), "POST", "/mcp/a", "r1").ok).toBe(true);
  });
});

describe("moving a single key into a ring", () => {
  it("listed under its ring-of-one id, it is the same key: what it signed before stays valid", () => {
    const connections = [{ name: "a", access: { anonymous: true }, upstream: { type: "stdio", command: "true" } }];
    const env = { K1: material.k1, K2: material.k2 };
    const single = buildKeyring(parseConfigText(stringify({ version: 1, keys: { maskingHmac: { env: "K1" } }, console: { sessionKey: { env: "K1" } }, cluster: { secret: { env: "K1" } }, approvals: { groups: { oncall: { emails: ["a@example.com"] } }, argumentsKey: { env: "K1" } }, connections }), "single.yaml", env));
    const old = (id: string) => ({ id, secret: { env: "K1" }, state: "verify-only" });
    const ring = buildKeyring(parseConfigText(stringify({ version: 1, keys: { ring: {
      requestState: [{ id: "rs-2", secret: { env: "K2" } }, old("legacy-arguments-key")],
      console: [{ id: "console-2", secret: { env: "K2" } }, old("console-session-key")],
      relay: [{ id: "relay-2", secret: { env: "K2" } }, old("cluster-secret")],
      masking: [{ id: "masking-2", secret: { env: "K2" } }, old("masking-hmac")],
    } }, connections }), "ring.yaml", env));
    for (const purpose of ["requestState", "console", "relay", "masking"] as const) {
      const before = single[purpose].active();
      const after = ring[purpose].lookup(before.id);
      expect(after, purpose).toEqual({ ok: true, key: before.key });
      expect(ring[purpose].active().id).not.toBe(before.id);
    }
  });
});

describe("a ring's lookups", () => {
  it("accept the active and verify-only keys; refuse a retired key and an unknown id, saying which", () => {
    const ring = new KeyRing("relay", ringOf("relay", [["k2", "active"], ["k1", "verify-only"]]), "test");
    expect(ring.lookup("k1").ok).toBe(true);
    ring.replace(ringOf("relay", [["k2", "active"], ["k1", "retired"]]), "test");
    expect(ring.lookup("k1")).toEqual({ ok: false, refused: "retired" });
    expect(ring.lookup("k9")).toEqual({ ok: false, refused: "unknown" });
    expect(ring.lookup(undefined)).toEqual({ ok: false, refused: "unknown" });
    expect(() => ring.replace(ringOf("relay", [["k2", "verify-only"]]), "test")).toThrow(/exactly one key must be active/);
    expect(ring.active().id).toBe("k2");
  });
});

describe("relayed requests across a rotation", () => {
  it("a peer still signing with the old key is accepted while it is verify-only, refused once it is retired", () => {
    const owner = new KeyRing("relay", ringOf("relay", [["k2", "active"], ["k1", "verify-only"]]), "test");
    const old = new KeyRing("relay", ringOf("relay", [["k1", "active"]]), "test").active();
    const header = signRelay(old.key, "POST", "/mcp/a", "r1", "{}", Date.now(), old.id);
    expect(header).toMatch(/ kid=k1$/);
    expect(verifyRelay(owner, header, "POST", "/mcp/a", "r1").ok).toBe(true);
    owner.replace(ringOf("relay", [["k2", "active"], ["k1", "retired"]]), "test");
    expect(verifyRelay(owner, header, "POST", "/mcp/a", "r1")).toEqual({ ok: false, problem: expect.stringContaining("retired relay key (k1)") });
    // The id is only a name: a header naming k2 with k1's signature does not verify.
    expect(verifyRelay(owner, header.replace("kid=k1", "kid=k2"), "POST", "/mcp/a", "r1")).toEqual({ ok: false, problem: expect.stringContaining("wrong signature") });
  });
});

describe("console CSRF tokens and login state across a rotation", () => {
  const ring = new KeyRing("console", ringOf("console", [["k1", "active"]]), "test");
  const sessions = new ConsoleSessions(ring, { secure: false, idleTimeoutMs: 60_000, absoluteTimeoutMs: 3_600_000 });
  let app: FastifyInstance;
  beforeAll(async () => {
    app = Fastify();
    app.get("/token", async (req, reply) => sessions.csrfToken(req, reply, undefined));
    app.get<{ Querystring: { token: string } }>("/check", async (req) => sessions.csrfValid(req, req.query.token, undefined));
    app.get("/seal", async (_req, reply) => {
      sessions.seal(reply, "cs_oidc", "/", { next: "/console/approvals" }, 600);
      return "ok";
    });
    app.get("/unseal", async (req, reply) => ({ value: sessions.unseal(req, reply, "cs_oidc", "/") ?? null }));
    await app.ready();
  });
  afterAll(() => app.close());
  const cookie = (setCookie: string | string[] | undefined, name: string) => (Array.isArray(setCookie) ? setCookie : [String(setCookie)]).find((c) => c.startsWith(`${name}=`))!.split(";")[0]!;

  it("a form token and a pending login issued under the old key work while it is verify-only, not once it is retired", async () => {
    const issued = await app.inject({ url: "/token" });
    const csrf = cookie(issued.headers["set-cookie"], "cs_csrf");
    const token = issued.body;
    expect(token.startsWith("k1.")).toBe(true);
    const oidc = cookie((await app.inject({ url: "/seal" })).headers["set-cookie"], "cs_oidc");
    const valid = async () => (await app.inject({ url: `/check?token=${encodeURIComponent(token)}`, headers: { cookie: csrf } })).json() as boolean;
    const unsealed = async () => ((await app.inject({ url: "/unseal", headers: { cookie: oidc } })).json() as { value: unknown }).value;

    ring.replace(ringOf("console", [["k2", "active"], ["k1", "verify-only"]]), "test");
    expect(await valid()).toBe(true);
    expect(await unsealed()).toEqual({ next: "/console/approvals" });
    expect((await app.inject({ url: "/token", headers: { cookie: csrf } })).body.startsWith("k2.")).toBe(true);

    ring.replace(ringOf("console", [["k2", "active"], ["k1", "retired"]]), "test");
    expect(await valid()).toBe(false);
    expect(await unsealed()).toBeNull();
  });
});
