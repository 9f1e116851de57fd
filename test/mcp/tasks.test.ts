// The gateway's MCP tasks expire on their ttl (gateway/mcp/tasks.ts): with the manual clock, a
// task of a one-hour ttl is found up to its last millisecond and dropped after, without waiting.
import { afterEach, expect, it } from "vitest";
import { ManualClock } from "../../gateway/clock.js";
import { TaskRegistry } from "../../gateway/mcp/tasks.js";

const registries: TaskRegistry[] = [];
afterEach(() => registries.splice(0).forEach((r) => r.stop()));

function registry(clock: ManualClock): TaskRegistry {
  const r = new TaskRegistry({ clock, sweepEveryMs: 30_000 });
  registries.push(r);
  return r;
}

const HOUR = 3_600_000;
const create = (r: TaskRegistry, owner: string, ttlMs = HOUR) => r.create({ owner, connection: "c", sessionId: "s", ttlMs, pollIntervalMs: 1000, justification: undefined });

it("a task is found until its ttl has passed, then it is gone for its owner", async () => {
  const clock = new ManualClock();
  const r = registry(clock);
  const task = create(r, "alice");
  expect(task.createdAt.getTime()).toBe(clock.now());
  await clock.advance(HOUR);
  expect(r.find(task.taskId, "alice", "c")?.taskId).toBe(task.taskId);
  await clock.advance(1);
  expect(r.find(task.taskId, "alice", "c")).toBeUndefined();
  expect(r.size).toBe(0);
});

it("the periodic sweep drops expired tasks nobody asks for, and stops one still running", async () => {
  const clock = new ManualClock();
  const r = registry(clock);
  const stopped: string[] = [];
  const running = create(r, "alice", 60_000);
  running.stop = (why) => stopped.push(why);
  const kept = create(r, "bob", HOUR);
  await clock.advance(60_000);
  expect(r.size).toBe(2); // at its ttl, not past it: the sweep at 60 s keeps it
  await clock.advance(30_000); // the next sweep
  expect(r.size).toBe(1);
  expect(stopped).toEqual(["expired"]);
  expect(r.list("bob", "c").map((t) => t.taskId)).toEqual([kept.taskId]);
});

it("a task's lastUpdatedAt is the clock's time of the change", async () => {
  const clock = new ManualClock();
  const r = registry(clock);
  const task = create(r, "alice");
  await clock.advance(12_345);
  r.update(task, "completed", undefined, { result: { content: [] } });
  expect(task.lastUpdatedAt.getTime() - task.createdAt.getTime()).toBe(12_345);
});
