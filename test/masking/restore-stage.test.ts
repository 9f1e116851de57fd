// The data path's two calls into the pseudonym map (gateway/masking/restore/stage.ts), against the
// real database: the restore stage puts back content only (never the envelope, protocol members of
// params or _meta), hands back the message itself when nothing was restored, and fails closed with
// CS_ERR_AUDIT_UNAVAILABLE when the map cannot be read or written; the recorded fact holds the
// count, not the values.
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMasker, maskingScope } from "../../gateway/masking/index.js";
import { PgRestorer, rememberIssued, restoredEvent, restoreRequest } from "../../gateway/masking/restore/index.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";

const KEY = "masking key material for the restore stage tests";
const EMAIL = ["noor.haddad", "example-corp.com"].join("@");
const SCOPE = maskingScope({ issuer: "https://idp.example", subject: "noor" }, "crm");

let db: TestDatabase;
let pool: pg.Pool;
let restorer: PgRestorer;
let shown: string;
const masker = createMasker({ tokenKey: KEY });

beforeAll(async () => {
  db = await createTestDatabase();
  pool = new pg.Pool({ connectionString: db.url, max: 2 });
  restorer = new PgRestorer({ pool, keyMaterial: KEY });
  const view = masker.maskMessage({ jsonrpc: "2.0", id: 1, result: { content: [{ type: "text", text: `owner ${EMAIL}` }] } }, { scope: SCOPE });
  await rememberIssued(restorer, SCOPE, view);
  shown = /p-[a-z2-7]{10}@masked\.example/.exec(JSON.stringify(view.masked))![0];
});
afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

describe("the restore stage", () => {
  it("restores content in params and leaves the envelope, protocol members and _meta as sent", async () => {
    const message = {
      jsonrpc: "2.0",
      id: shown,
      method: "tools/call",
      params: { name: "send", arguments: { to: shown, [shown]: "key too" }, cursor: shown, _meta: { progressToken: shown, note: shown } },
    };
    const out = await restoreRequest(restorer, message, SCOPE);
    expect(out.error).toBeUndefined();
    expect(out.restored).toBe(2);
    expect(out.message).toEqual({ ...message, params: { ...message.params, arguments: { to: EMAIL, [EMAIL]: "key too" } } });
    expect(message.params.arguments.to).toBe(shown); // the input is not modified
  });

  it("hands back the same message when there is nothing to restore, and touches no result", async () => {
    const request = { jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "send", arguments: { to: "someone else" } } };
    expect((await restoreRequest(restorer, request, SCOPE)).message).toBe(request);
    const response = { jsonrpc: "2.0", id: 3, result: { content: [{ type: "text", text: shown }] } };
    expect((await restoreRequest(restorer, response, SCOPE)).message).toBe(response);
    const otherScope = maskingScope({ issuer: "https://idp.example", subject: "noor" }, "billing");
    expect((await restoreRequest(restorer, { params: { arguments: { to: shown } } }, otherScope)).restored).toBe(0);
  });

  it("records the count and the method, never a value", () => {
    const event = restoredEvent({ sessionId: "s1", connection: "crm", subject: "noor", requestId: null }, 2, "tools/call");
    expect(event).toMatchObject({ type: "pseudonyms_restored", reason: "request", detail: { count: 2, method: "tools/call" } });
    expect(JSON.stringify(event)).not.toContain(EMAIL);
  });

  it("fails closed when the map cannot be read or written", async () => {
    const downPool = new pg.Pool({ connectionString: db.url, max: 1 });
    await downPool.end();
    const down = new PgRestorer({ pool: downPool, keyMaterial: KEY });
    const out = await restoreRequest(down, { params: { arguments: { to: shown } } }, SCOPE);
    expect(out.error?.code).toBe("CS_ERR_AUDIT_UNAVAILABLE");
    expect(out.restored).toBe(0);
    const view = masker.maskMessage({ result: { content: [{ type: "text", text: EMAIL }] } }, { scope: SCOPE });
    await expect(rememberIssued(down, SCOPE, view)).rejects.toMatchObject({ code: "CS_ERR_AUDIT_UNAVAILABLE" });
  });
});
