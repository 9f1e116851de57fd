// metrics.port: /metrics on a listener of its own (the chart's internal metrics port, which a
// NetworkPolicy opens to the monitoring namespace only), never on the public port.
import { afterAll, beforeAll, expect, it } from "vitest";
import { startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "./helpers/postgres.js";
import { freePort } from "./helpers/process.js";

let db: TestDatabase;
let gw: TestGateway;
let metricsPort: number;

beforeAll(async () => {
  db = await createTestDatabase();
  metricsPort = await freePort();
  gw = await startTestGateway(db.url, {
    metrics: { token: { env: "METRICS_TOKEN" }, port: metricsPort },
    connections: [{ name: "tools", access: { anonymous: true }, upstream: { type: "stdio", command: process.execPath, args: ["-e", "setInterval(() => {}, 1000)"] } }],
  }, { METRICS_TOKEN: "scrape-me" });
});
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
});

it("serves /metrics on the metrics port, with its token, and not on the public port", async () => {
  const scrape = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { headers: { authorization: "Bearer scrape-me" } });
  expect(scrape.status).toBe(200);
  expect(await scrape.text()).toContain("countersign_");
  const noToken = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  expect(noToken.status).toBe(401);

  const publicScrape = await fetch(`${gw.address}/metrics`, { headers: { authorization: "Bearer scrape-me" } });
  expect(publicScrape.status).toBe(404);
  expect(JSON.stringify(await publicScrape.json())).toContain("CS_ERR_NOT_FOUND");
});

it("serves nothing else on the metrics port", async () => {
  for (const path of ["/healthz", "/mcp/tools", "/admin/reload", "/metrics/../mcp/tools"]) {
    const res = await fetch(`http://127.0.0.1:${metricsPort}${path}`, { method: path.startsWith("/admin") ? "POST" : "GET", headers: { authorization: "Bearer scrape-me" } });
    expect(res.status, path).toBe(404);
  }
});
