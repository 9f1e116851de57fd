// The NOTIFY listener the approvals and tool-pin services share: it hears notifications, and
// comes back by itself (catching up) after PostgreSQL drops its connection.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { ChannelListener } from "../../gateway/store/listener.js";
import { createLogger } from "../../gateway/log.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

async function query(sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    return await c.query(sql, params);
  } finally {
    await c.end();
  }
}

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("ChannelListener", () => {
  it("hears NOTIFY, and after its connection is killed listens again and catches up", async () => {
    const heard: string[] = [];
    let catchUps = 0;
    const listener = new ChannelListener({
      databaseUrl: db.url,
      channel: "countersign_test_channel",
      log: createLogger("silent"),
      name: "test",
      retryMs: 50,
      onNotify: (payload) => heard.push(payload),
      onRelisten: async () => void catchUps++,
    });
    await listener.start();
    try {
      expect(listener.listening).toBe(true);
      expect(catchUps).toBe(0); // the service loads its own state at start
      await query("SELECT pg_notify('countersign_test_channel', 'first')");
      await until("the first notification", () => heard.includes("first"));

      const killed = await query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'LISTEN %'", [db.name]);
      expect(killed.rowCount).toBe(1);
      await until("the listener to notice the loss", () => !listener.listening);
      await until("the listener to come back and catch up", () => listener.listening && catchUps === 1);

      await query("SELECT pg_notify('countersign_test_channel', 'second')");
      await until("the notification after reconnecting", () => heard.includes("second"));
      await query("SELECT pg_notify('other_channel', 'not mine')");
      expect(heard).toEqual(["first", "second"]);
    } finally {
      await listener.stop();
    }
    expect(listener.listening).toBe(false);
  });

  it("refuses a channel name that is not a plain identifier", () => {
    expect(() => new ChannelListener({ databaseUrl: db.url, channel: "x; DROP TABLE y", log: createLogger("silent"), name: "t", onNotify: () => {} })).toThrow(/channel name/);
  });
});
