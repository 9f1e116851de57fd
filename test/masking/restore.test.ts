// The restorer against the real database: a caller's pseudonyms come back as the originals in
// that caller's later arguments (read, edit, write back: exactly the original with the edit),
// never in another scope's; the map holds no original in clear, is bounded per scope, expires,
// and refuses rows moved between scopes or given to two originals.
import { execFileSync } from "node:child_process";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMasker, maskingScope } from "../../gateway/masking/index.js";
import { PgRestorer } from "../../gateway/masking/restore/index.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";

const KEY = "masking key material for the restore tests";
const EMAIL = ["dana.kowalski", "example-corp.com"].join("@");
const OTHER = ["lee.ostrowski", "example-corp.com"].join("@");
const ALICE = maskingScope({ issuer: "https://idp.example", subject: "alice" }, "files");
const BOB = maskingScope({ issuer: "https://idp.example", subject: "bob" }, "files");

let db: TestDatabase;
let pool: pg.Pool;
let restorer: PgRestorer;
const masker = createMasker({ tokenKey: KEY });

/** What the gateway does on the way out: mask for the caller, remember what it issued. */
async function showTo(scope: string, text: string): Promise<string> {
  const r = masker.maskText(text, { scope });
  if (r.issued) await restorer.remember(scope, r.issued);
  return r.masked;
}

beforeAll(async () => {
  db = await createTestDatabase();
  pool = new pg.Pool({ connectionString: db.url, max: 2 });
  restorer = new PgRestorer({ pool, keyMaterial: KEY });
});
afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

describe("restoring pseudonyms", () => {
  it("gives back exactly the original file with the caller's edit", async () => {
    const file = `owner: ${EMAIL}\nhost: 10.12.0.7\nport: 8080\nbackup_owner: ${OTHER}\n`;
    const shown = await showTo(ALICE, file);
    expect(shown).not.toContain(EMAIL);
    expect(shown).not.toContain("10.12.0.7");
    // The agent changes one line of what it read and writes the whole text back.
    const edited = shown.replace("port: 8080", "port: 9090");
    const { params, restored, unresolved } = await restorer.restore(ALICE, { name: "write_file", arguments: { path: "/srv/app.yaml", content: edited } });
    expect(params.arguments.content).toBe(file.replace("port: 8080", "port: 9090"));
    expect(restored).toBe(3);
    expect(unresolved).toBe(0);
  });

  it("restores inside nested arguments and keys, and leaves the input untouched", async () => {
    const shown = await showTo(ALICE, EMAIL);
    const args = { filter: { [shown]: true, any: [`to ${shown}`] } };
    const before = structuredClone(args);
    const { params, restored } = await restorer.restore(ALICE, args);
    expect(params).toEqual({ filter: { [EMAIL]: true, any: [`to ${EMAIL}`] } });
    expect(restored).toBe(2);
    expect(args).toEqual(before);
  });

  it("does not restore another scope's pseudonym", async () => {
    const shownToAlice = await showTo(ALICE, EMAIL);
    const { params, restored, unresolved } = await restorer.restore(BOB, { to: shownToAlice });
    expect(params).toEqual({ to: shownToAlice });
    expect(restored).toBe(0);
    expect(unresolved).toBe(1);
  });

  it("keeps no original in clear and no scope in the database", async () => {
    await showTo(ALICE, `mail ${EMAIL} from 10.12.0.7`);
    const dump = execFileSync("pg_dump", ["--data-only", "--no-owner", "--table=masking_pseudonyms", db.url], { encoding: "utf8" });
    expect(dump).toContain("masked.example"); // the rows are there
    for (const clear of [EMAIL, "10.12.0.7", "alice", "idp.example"]) expect(dump).not.toContain(clear);
    const { rows } = await pool.query(`SELECT "keyId" FROM masking_pseudonyms LIMIT 1`);
    expect(rows[0].keyId).toMatch(/^k1-[0-9a-f]{16}$/);
  });

  it("refuses a row moved to another scope (the seal binds it)", async () => {
    const mallory = "https://idp.example|mallory|files";
    const shown = await showTo(mallory, "mallory-probe@nowhere-corp.com");
    const shownToAlice = await showTo(ALICE, EMAIL);
    // Someone with database access copies Alice's sealed value under Mallory's own pseudonym.
    await pool.query(
      `UPDATE masking_pseudonyms SET sealed = (SELECT sealed FROM masking_pseudonyms WHERE pseudonym = $1 LIMIT 1) WHERE pseudonym = $2`,
      [shownToAlice, shown],
    );
    const { restored } = await restorer.restore(mallory, { to: shown });
    expect(restored).toBe(0);
  });

  it("forgets expired pseudonyms and keeps at most maxPerScope per scope, oldest out first", async () => {
    const small = new PgRestorer({ pool, keyMaterial: KEY, maxPerScope: 2 });
    const scope = "https://idp.example|carol|files";
    const shown: string[] = [];
    for (const n of [1, 2, 3]) {
      const r = masker.maskText(`user${n}@carol-corp.com`, { scope });
      await small.remember(scope, r.issued!);
      shown.push(r.masked);
    }
    const back = await small.restore(scope, { a: shown[0], b: shown[1], c: shown[2] });
    expect(back.params).toEqual({ a: shown[0], b: "user2@carol-corp.com", c: "user3@carol-corp.com" });
    await pool.query(`UPDATE masking_pseudonyms SET "expiresAt" = now() - interval '1 second' WHERE pseudonym = $1`, [shown[2]]);
    expect((await small.restore(scope, { c: shown[2] })).restored).toBe(0);
    expect(await small.sweep()).toBeGreaterThanOrEqual(1);
  });

  it("never restores a pseudonym that two originals were given", async () => {
    const scope = "https://idp.example|dave|files";
    const first = masker.maskText(EMAIL, { scope });
    await restorer.remember(scope, first.issued!);
    await restorer.remember(scope, [{ type: "email", pseudonym: first.masked, original: OTHER }]);
    expect((await restorer.restore(scope, { to: first.masked })).restored).toBe(0);
  });

  it("restores nothing under another key (another deployment, or a rotated key)", async () => {
    const shown = await showTo(ALICE, EMAIL);
    const other = new PgRestorer({ pool, keyMaterial: "a different masking key material" });
    const unkeyed = new PgRestorer({ pool, keyMaterial: undefined });
    expect((await other.restore(ALICE, { to: shown })).restored).toBe(0);
    expect((await unkeyed.restore(ALICE, { to: shown })).restored).toBe(0);
    expect((await restorer.restore(ALICE, { to: shown })).restored).toBe(1);
  });

  it("refuses arguments nested too deep to walk", async () => {
    let deep: unknown = "x";
    for (let i = 0; i < 5000; i++) deep = [deep];
    await expect(restorer.restore(ALICE, deep)).rejects.toMatchObject({ code: "CS_ERR_MESSAGE_TOO_COMPLEX" });
  });
});
