// The LISTEN hub the approvals and tool-pin services share: one connection for every channel; it
// hears notifications, and comes back by itself (catching up) after PostgreSQL drops its connection.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { ListenHub } from "../../gateway/store/listener.js";
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

describe("ListenHub", () => {
  it("hears NOTIFY, and after its connection is killed listens again and catches up", async () => {
    const heard: string[] = [];
    let catchUps = 0;
    const hub = new ListenHub({ databaseUrl: db.url, log: createLogger("silent"), retryMs: 50 });
    const listener = hub.channel({
      channel: "countersign_test_channel",
      name: "test",
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
    const hub = new ListenHub({ databaseUrl: db.url, log: createLogger("silent") });
    expect(() => hub.channel({ channel: "x; DROP TABLE y", name: "t", onNotify: () => {} })).toThrow(/channel name/);
  });

  it("carries two services' channels on one connection, and brings both back after a loss", async () => {
    const hub = new ListenHub({ databaseUrl: db.url, log: createLogger("silent"), retryMs: 50 });
    const heard: string[] = [];
    const catchUps: string[] = [];
    const a = hub.channel({ channel: "countersign_test_a", name: "a", onNotify: (p) => heard.push(`a:${p}`), onRelisten: async () => void catchUps.push("a") });
    const b = hub.channel({ channel: "countersign_test_b", name: "b", onNotify: (p) => heard.push(`b:${p}`), onRelisten: async () => void catchUps.push("b") });
    // Started together: the second joins the connection the first is making.
    await Promise.all([a.start(), b.start()]);
    try {
      expect(a.listening && b.listening).toBe(true);
      const listeners = await query("SELECT count(DISTINCT pid)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'countersign-listen'", [db.name]);
      expect(listeners.rows[0].n).toBe(1);
      await query("SELECT pg_notify('countersign_test_a', '1'), pg_notify('countersign_test_b', '2')");
      await until("both notifications", () => heard.length === 2);
      expect(heard.sort()).toEqual(["a:1", "b:2"]);

      await query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'countersign-listen'", [db.name]);
      await until("both channels back and caught up", () => a.listening && b.listening && catchUps.length === 2);
      expect(catchUps.sort()).toEqual(["a", "b"]);

      // One service stops: the other keeps listening on the same connection.
      await a.stop();
      expect(a.listening).toBe(false);
      await query("SELECT pg_notify('countersign_test_a', '3'), pg_notify('countersign_test_b', '4')");
      await until("the remaining channel's notification", () => heard.includes("b:4"));
      expect(heard).not.toContain("a:3");
    } finally {
      await a.stop();
      await b.stop();
    }
    await until("the hub's connection to close with its last channel", () => false === (a.listening || b.listening));
    await expect.poll(async () => (await query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'countersign-listen'", [db.name])).rows[0].n).toBe(0);
  });
});
