// Sessions close when idle for their connection's idleTimeoutSeconds, and a caller at its session
// quota gets a slot by evicting its own session idle for sessions.evictIdleAfterSeconds
// (gateway/mcp/sessions.ts), both timed by the gateway's clock: with a manual clock, a 15-minute
// idle timeout and a one-minute eviction age are tested without waiting.
import { afterAll, beforeAll, expect, it } from "vitest";
import { ManualClock } from "../../gateway/clock.js";
import { startTestGateway, type TestGateway } from "../helpers/gateway.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { rawInitialize, rawPost, waitFor } from "../helpers/upstreams.js";

const FIXTURE = new URL("../fixtures/misbehaving-server.mjs", import.meta.url).pathname;
const IDLE_SECONDS = 900;
const EVICT_AFTER_SECONDS = 60;

let db: TestDatabase;
let gw: TestGateway;
const clock = new ManualClock(Date.now());

beforeAll(async () => {
  db = await createTestDatabase();
  const upstream = { type: "stdio", command: process.execPath, args: [FIXTURE, "ok"] };
  gw = await startTestGateway(
    db.url,
    {
      sessions: { evictIdleAfterSeconds: EVICT_AFTER_SECONDS },
      connections: [
        { name: "ok", upstream, idleTimeoutSeconds: IDLE_SECONDS },
        // Anonymous callers share one quota per address: every session here is the same caller's.
        { name: "quota", upstream, maxSessionsPerIdentity: 1 },
      ],
    },
    {},
    { clock },
  );
});

afterAll(async () => {
  await gw?.stop();
  await db?.drop();
});

const ping = (headers: Record<string, string>) => rawPost(gw.mcpUrl("ok"), JSON.stringify({ jsonrpc: "2.0", id: 2, method: "ping" }), headers);

it("closes a session idle for longer than idleTimeoutSeconds, records why, and refuses its id after", async () => {
  const { sessionId, headers } = await rawInitialize(gw.mcpUrl("ok"), "2025-11-25");
  await clock.advance((IDLE_SECONDS - 10) * 1000);
  // Still open just before the timeout: a call goes through (and counts as activity).
  expect((await ping(headers)).messages).toEqual([{ jsonrpc: "2.0", id: 2, result: {} }]);
  await clock.advance((IDLE_SECONDS - 1) * 1000);
  expect((await ping(headers)).status).toBe(200);
  // Then idle past the timeout: the next sweep (every 5 s of the clock) closes it.
  await clock.advance((IDLE_SECONDS + 5) * 1000);
  const row = await waitFor(() => gw.db.session.findFirst({ where: { id: sessionId, closedAt: { not: null } } }), "session row closed");
  expect(row.closeReason).toBe("idle_timeout");
  const event = await waitFor(() => gw.db.event.findFirst({ where: { type: "session_closed", reason: "idle_timeout", sessionId } }), "session_closed event");
  expect(event.connection).toBe("ok");
  const after = await ping(headers);
  expect(after.status).toBe(404);
  expect(JSON.stringify(after.messages)).toContain("CS_ERR_UNKNOWN_SESSION");
});

it("at its quota, a caller's new session evicts its own session once idle for evictIdleAfterSeconds, not before", async () => {
  const first = await rawInitialize(gw.mcpUrl("quota"), "2025-11-25");
  const init = () => rawPost(gw.mcpUrl("quota"), JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "second", version: "1" } } }));
  await clock.advance((EVICT_AFTER_SECONDS - 1) * 1000);
  const refused = await init();
  expect(refused.status).toBe(503);
  expect(JSON.stringify(refused.messages)).toContain("CS_ERR_SESSION_QUOTA");
  await clock.advance(1000);
  const second = await init();
  expect(second.status).toBe(200);
  expect(second.headers.get("mcp-session-id")).toBeTruthy();
  const row = await waitFor(() => gw.db.session.findFirst({ where: { id: first.sessionId, closedAt: { not: null } } }), "first session closed");
  expect(row.closeReason).toBe("evicted_idle");
});
