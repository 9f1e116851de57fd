// The official MCP Python SDK's client accepts a masked typed result: a tool whose outputSchema
// declares an e-mail and an IPv4 pattern answers through the gateway with pseudonyms, and the
// Python client validates that structured content against the schema (it raises otherwise), as the
// TypeScript SDK's client does (hostile-upstream.test.ts).
//
// The client comes from a venv with `mcp` installed (pip, from the machine's package mirror):
// COUNTERSIGN_PYTHON names its interpreter, default /tmp/pyvenv/bin/python (.ci/run creates it).
// Without it the test is skipped, saying why.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { PYTHON, pythonMcpMissing } from "../helpers/python.js";

const CLIENT = new URL("./fixtures/python_client.py", import.meta.url).pathname;
/** Its `contact` tool declares an outputSchema with an e-mail and an IPv4 pattern. */
const TYPED_SERVER = new URL("./fixtures/hostile-server.mjs", import.meta.url).pathname;

const missing = pythonMcpMissing();
if (missing) console.warn(`python-client.test.ts skipped: ${missing}`);

let db: TestDatabase;
let gw: TestGateway;

beforeAll(async () => {
  if (missing) return;
  db = await createTestDatabase();
  gw = await startTestGateway(db.url, {
    connections: [
      { name: "typed", upstream: { type: "stdio", command: process.execPath, args: [TYPED_SERVER] } },
      { name: "placeholders", upstream: { type: "stdio", command: process.execPath, args: [TYPED_SERVER] }, masking: { personalData: "placeholder" } },
    ],
  });
});
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
});

const EMAIL = ["tomas.lindqvist", "harbour-freight.net"].join("@");
const IP = ["172", "20", "14", "9"].join(".");
const callContact = (connection: string) =>
  promisify(execFile)(PYTHON, [CLIENT, gw.mcpUrl(connection).href, "contact", JSON.stringify({ email: EMAIL, ip: IP })], { timeout: 60_000 });

describe.skipIf(missing !== undefined)("the official Python client through the gateway", () => {
  it("validates a masked result against the tool's outputSchema (an e-mail and an IPv4 pattern)", async () => {
    const { stdout } = await callContact("typed");
    const structured = JSON.parse(stdout.trim().split("\n").pop()!) as { email: string; ip: string };
    expect(structured.email).toMatch(/^p-[a-z2-7]{10}@masked\.example$/);
    expect(structured.ip).toMatch(/^(192\.0\.2|198\.51\.100|203\.0\.113)\.\d{1,3}$/);
    expect(stdout).not.toContain(EMAIL);
    expect(stdout).not.toContain(IP);
  });

  it("rejects the same result masked with placeholders: the reason personal data gets pseudonyms", async () => {
    await expect(callContact("placeholders")).rejects.toMatchObject({ stderr: expect.stringContaining("Invalid structured content returned by tool contact") });
  });
});
