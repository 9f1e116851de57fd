// The authorization server's store on real PostgreSQL: a code or refresh token wins one exchange
// even under concurrent attempts, expired ones are refused, and the sweep empties each table of
// what has expired (the tables' time bound).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDb, type Db } from "../../gateway/store/client.js";
import type { Grant } from "../../gateway/oauth/grant.js";
import { hashOf, OAuthStore } from "../../gateway/store/oauth.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";

let db: TestDatabase;
let prisma: Db;
let store: OAuthStore;

const grant: Grant = { clientId: "cs-1", resource: "http://gw/mcp/ops", identity: { issuer: "https://idp.example", subject: "alice", email: "alice@example.com", groups: ["dev"] } };

beforeAll(async () => {
  db = await createTestDatabase();
  prisma = createDb(db.url);
  store = new OAuthStore(prisma);
});

afterAll(async () => {
  await prisma?.$disconnect();
  await db?.drop();
});

describe("single use", () => {
  it("gives a code to exactly one of many concurrent exchanges; the others see it reused", async () => {
    await store.addCode("code-race", grant, "http://127.0.0.1/cb", "challenge", 60_000);
    const results = await Promise.all(Array.from({ length: 8 }, () => store.consumeCode("code-race")));
    expect(results.filter((r) => r && "grant" in r)).toHaveLength(1);
    expect(results.filter((r) => r && "reused" in r)).toHaveLength(7);
    const won = results.find((r) => r && "grant" in r) as { grant: Grant };
    expect(won.grant).toEqual({ ...grant, scope: undefined, identity: { ...grant.identity, name: undefined } });
  });

  it("rotates a refresh token for exactly one of many concurrent refreshes", async () => {
    const token = await store.addRefreshToken(grant, "family-race", new Date(Date.now() + 60_000));
    const results = await Promise.all(Array.from({ length: 8 }, () => store.consumeRefreshToken(token)));
    expect(results.filter((r) => r && "grant" in r)).toHaveLength(1);
    expect(results.filter((r) => r && "reused" in r)).toHaveLength(7);
  });

  it("refuses an expired code and an expired refresh token", async () => {
    await store.addCode("code-old", grant, "http://127.0.0.1/cb", "challenge", 60_000);
    await prisma.oAuthCode.update({ where: { codeHash: hashOf("code-old") }, data: { expiresAt: new Date(Date.now() - 1000) } });
    expect(await store.consumeCode("code-old")).toBeUndefined();
    const token = await store.addRefreshToken(grant, "family-old", new Date(Date.now() - 1000));
    expect(await store.consumeRefreshToken(token)).toBeUndefined();
    expect(await store.consumeCode("never-issued")).toBeUndefined();
  });
});

describe("the TTL sweep", () => {
  it("deletes expired codes and refresh tokens and clients unused for too long, keeps the rest", async () => {
    await prisma.oAuthCode.deleteMany();
    await prisma.oAuthRefreshToken.deleteMany();
    await store.addCode("code-live", grant, "http://127.0.0.1/cb", "c", 60_000);
    await store.addCode("code-dead", grant, "http://127.0.0.1/cb", "c", 60_000);
    await prisma.oAuthCode.update({ where: { codeHash: hashOf("code-dead") }, data: { expiresAt: new Date(Date.now() - 1) } });
    await store.addRefreshToken(grant, "f-live", new Date(Date.now() + 60_000));
    await store.addRefreshToken(grant, "f-dead", new Date(Date.now() - 1));
    await store.addClient({ clientId: "cs-used", redirectUris: ["http://127.0.0.1/cb"] }, "127.0.0.1");
    await store.addClient({ clientId: "cs-unused", redirectUris: ["http://127.0.0.1/cb"] }, "127.0.0.1");
    await prisma.oAuthClient.update({ where: { clientId: "cs-unused" }, data: { lastUsedAt: new Date(Date.now() - 31 * 86_400_000) } });
    await store.sweep(30 * 86_400_000);
    expect((await prisma.oAuthCode.findMany()).map((c) => c.codeHash)).toEqual([hashOf("code-live")]);
    expect((await prisma.oAuthRefreshToken.findMany()).map((t) => t.family)).toEqual(["f-live"]);
    expect((await prisma.oAuthClient.findMany()).map((c) => c.clientId)).toEqual(["cs-used"]);
  });
});
