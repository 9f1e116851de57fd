// The gateway process meets an error nothing caught (the CLI's handlers, gateway/process-handlers.ts),
// in a real `countersign start` child: an unhandled rejection is logged with its stack and counted,
// and the gateway keeps serving; an uncaught exception is logged, the gateway stops gracefully
// (the stop recorded, the instance marked stopped) and the process exits 1.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createDb, type Db } from "../gateway/store/client.js";
import { createTestDatabase, type TestDatabase } from "./helpers/postgres.js";
import { killGateway, loggingConnection, startGatewayProcess, writeGatewayConfig, type GatewayProcess } from "./helpers/process.js";

const FAULT = new URL("./fixtures/fault-on-signal.mjs", import.meta.url).pathname;

let db: TestDatabase;
let prisma: Db;
let dir: string;
const gateways: GatewayProcess[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  prisma = createDb(db.url, { poolSize: 2 });
  dir = mkdtempSync(join(tmpdir(), "countersign-faults-"));
});

afterAll(async () => {
  for (const g of gateways) await killGateway(g);
  await prisma?.$disconnect();
  await db?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function start(fault: "rejection" | "exception"): Promise<GatewayProcess> {
  const config = writeGatewayConfig(join(dir, `${fault}.yaml`), {
    log: { level: "info", format: "json" },
    connections: [loggingConnection("echo", join(dir, `${fault}.jsonl`))],
  });
  process.env.COUNTERSIGN_TEST_FAULT = fault;
  try {
    const gw = await startGatewayProcess(config, db.url, { nodeArgs: ["--import", FAULT] });
    gateways.push(gw);
    return gw;
  } finally {
    delete process.env.COUNTERSIGN_TEST_FAULT;
  }
}

/** The JSON log records the process wrote to stdout. */
function records(gw: GatewayProcess): Array<Record<string, unknown>> {
  return gw.output().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function rejectionsCounted(gw: GatewayProcess): Promise<number> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("countersign_unhandled_rejections_total "));
  return line ? Number(line.split(" ")[1]) : Number.NaN;
}

it("an unhandled rejection is logged with its stack and counted, and the gateway keeps serving", async () => {
  const gw = await start("rejection");
  expect(await rejectionsCounted(gw)).toBe(0);
  gw.child.kill("SIGUSR2");
  await expect.poll(() => records(gw).find((r) => r.msg?.toString().startsWith("unhandled promise rejection")), { timeout: 10_000 }).toBeDefined();
  const rec = records(gw).find((r) => r.msg?.toString().startsWith("unhandled promise rejection"))!;
  expect(rec.level).toBe(50);
  expect((rec.err as { message?: string; stack?: string }).message).toBe("a rejection nothing handles");
  expect((rec.err as { stack?: string }).stack).toMatch(/fault-on-signal\.mjs/);
  expect(await rejectionsCounted(gw)).toBe(1);
  expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
  expect(gw.child.exitCode).toBeNull();
}, 60_000);

it("an uncaught exception stops the gateway gracefully (the stop recorded) and exits 1", async () => {
  const gw = await start("exception");
  const instance = await prisma.instance.findFirst({ where: { pid: gw.pid }, orderBy: { startedAt: "desc" } });
  expect(instance?.stoppedAt).toBeNull();
  gw.child.kill("SIGUSR2");
  const { code, signal } = await gw.exited;
  expect({ code, signal }).toEqual({ code: 1, signal: null });
  const fatal = records(gw).find((r) => r.level === 60);
  expect(fatal?.msg).toBe("uncaught exception: stopping the gateway, then exiting 1");
  expect((fatal?.err as { stack?: string }).stack).toContain("an exception nothing catches");
  // Graceful: the recorder drained the stop, and the instance row says it stopped.
  const after = await prisma.instance.findUnique({ where: { id: instance!.id } });
  expect(after?.stoppedAt).toBeInstanceOf(Date);
  const stopped = await prisma.event.findMany({ where: { type: "gateway", reason: "stopped" } });
  expect(stopped.some((e) => (e.detail as { instanceId?: string }).instanceId === instance!.id)).toBe(true);
}, 60_000);
