// Shutdown runs its steps in the reverse order of start, each isolated: a part whose stop throws
// is logged, and the rest still runs: the in-flight call finishes and its answer is recorded,
// the recorder drains (gateway/stopped is committed), the instance is marked stopped, the
// listener closes and the upstream child ends.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDb, type Db } from "../gateway/store/client.js";
import { CloseSteps, ShutdownError } from "../gateway/lifecycle.js";
import { createLogger } from "../gateway/log.js";
import { everythingStdio, startTestGateway, type TestGateway } from "./helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "./helpers/postgres.js";

let db: TestDatabase;
let prisma: Db;
let gw: TestGateway | undefined;

beforeAll(async () => {
  db = await createTestDatabase();
  prisma = createDb(db.url, { poolSize: 2 });
});

afterAll(async () => {
  await gw?.stop().catch(() => {});
  await prisma?.$disconnect();
  await db?.drop();
});

function memoryLog() {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...String(chunk).split("\n").filter(Boolean));
      cb();
    },
  });
  return { log: createLogger("info", sink), records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe("CloseSteps", () => {
  it("runs the steps last-registered first; a throwing or hanging step is logged and the next ones still run", async () => {
    const ran: string[] = [];
    const steps = new CloseSteps();
    steps.onClose("database", () => void ran.push("database"));
    steps.onClose("recorder drain", async () => void ran.push("recorder drain"));
    steps.onClose("hangs", () => new Promise(() => ran.push("hangs")), 50);
    steps.onClose("throws", () => {
      ran.push("throws");
      throw new Error("stop failed");
    });
    steps.onClose("http", () => void ran.push("http"));
    const { log, records } = memoryLog();
    const report = await steps.close(log);
    expect(ran).toEqual(["http", "throws", "hangs", "recorder drain", "database"]);
    expect(report.failed.map((f) => f.step)).toEqual(["throws", "hangs"]);
    const logged = records().filter((r) => r.msg === "shutdown step failed; the next steps still run");
    expect(logged.map((r) => r.step)).toEqual(["throws", "hangs"]);
    // The error object itself, with its stack, not its text alone.
    expect((logged[0]!.err as { stack?: string }).stack).toMatch(/stop failed\n\s+at /);
    // Once: a second close is the same run.
    expect(await steps.close(log)).toBe(report);
    expect(ran).toHaveLength(5);
  });
});

describe("a gateway whose one part fails to stop", () => {
  it("still finishes the in-flight call, records it and the stop, marks the instance stopped and closes the listener", async () => {
    gw = await startTestGateway(db.url, { connections: [{ name: "everything", upstream: everythingStdio() }] });
    const client = new Client({ name: "shutdown-steps", version: "1" });
    const transport = new StreamableHTTPClientTransport(gw.mcpUrl("everything"));
    await client.connect(transport);
    const sessionId = transport.sessionId!;

    // A call in flight when the stop begins (it takes ~1 s at the upstream).
    let progressSeen = 0;
    const call = client.callTool({ name: "trigger-long-running-operation", arguments: { duration: 1, steps: 5 } }, undefined, { onprogress: () => void progressSeen++ });
    await expect.poll(() => progressSeen, { timeout: 10_000 }).toBeGreaterThan(0);

    // One part's stop throws (a real component of this gateway, made to fail).
    const identity = gw.identity;
    identity.stop = () => {
      throw new Error("identity layer refused to stop");
    };
    const stopped = gw.stop(5_000);
    const result = await call;
    expect(result.isError).not.toBe(true);
    const err = await stopped.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ShutdownError);
    expect((err as ShutdownError).failed.map((f) => f.step)).toEqual(["identity"]);

    // The recorder drained after the failure: the call's answer and the stop are committed.
    const answers = await prisma.message.findMany({ where: { sessionId, direction: "out", method: "tools/call", kind: "response" } });
    expect(answers).toHaveLength(1);
    const stopEvent = await prisma.event.findMany({ where: { type: "gateway", reason: "stopped" } });
    expect(stopEvent).toHaveLength(1);
    expect(stopEvent[0]!.detail).toMatchObject({ instanceId: gw.instanceId });
    // The steps after it ran too: the instance row is marked stopped, the listener is closed.
    const instance = await prisma.instance.findUnique({ where: { id: gw.instanceId } });
    expect(instance?.stoppedAt).toBeInstanceOf(Date);
    const refused = await fetch(`${gw.address}/healthz`).then(() => "answered", (e: { cause?: { code?: string } }) => e.cause?.code ?? "failed");
    expect(refused).toMatch(/ECONNREFUSED|ECONNRESET/);
    // The failure is in the log with its error object.
    const failure = gw.logText().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).find((r) => r.step === "identity");
    expect(failure?.msg).toBe("shutdown step failed; the next steps still run");
    expect((failure?.err as { message?: string; stack?: string }).stack).toContain("identity layer refused to stop");
    await client.close().catch(() => {});
  }, 60_000);
});
