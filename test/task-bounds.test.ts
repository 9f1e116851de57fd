// The gateway's MCP tasks are kept in memory for tasks/result: their number and the bytes of
// their kept results are bounded for all callers together, with a clear error at each bound.
import { afterEach, describe, expect, it } from "vitest";
import { CountersignError } from "../gateway/errors.js";
import { TaskRegistry } from "../gateway/mcp/tasks.js";

const registries: TaskRegistry[] = [];
afterEach(() => registries.splice(0).forEach((r) => r.stop()));

function registry(opts: { maxTasks?: number; maxResultBytes?: number }): TaskRegistry {
  const r = new TaskRegistry(opts);
  registries.push(r);
  return r;
}

const create = (r: TaskRegistry, owner: string) => r.create({ owner, connection: "c", sessionId: "s", ttlMs: 60_000, pollIntervalMs: 1000, justification: undefined });

describe("task bounds", () => {
  it("refuses a task beyond the global cap, whoever asks, with CS_ERR_TASK_LIMIT", () => {
    const r = registry({ maxTasks: 3 });
    for (const owner of ["a", "b", "c"]) create(r, owner);
    let refused: unknown;
    try {
      create(r, "d");
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(CountersignError);
    expect((refused as CountersignError).code).toBe("CS_ERR_TASK_LIMIT");
    expect(r.size).toBe(3);
  });

  it("keeps results within the byte budget; a result over it fails its task with CS_ERR_TASK_RESULT_NOT_KEPT", () => {
    const r = registry({ maxResultBytes: 10_000 });
    const small = create(r, "a");
    r.update(small, "completed", undefined, { result: { content: [{ type: "text", text: "x".repeat(1000) }] } });
    const big = create(r, "b");
    r.update(big, "completed", undefined, { result: { content: [{ type: "text", text: "y".repeat(20_000) }] } });
    expect(small.status).toBe("completed");
    expect(big.status).toBe("failed");
    expect(big.outcome).toMatchObject({ error: { data: { code: "CS_ERR_TASK_RESULT_NOT_KEPT" } } });
    expect(r.resultBytes).toBeLessThanOrEqual(10_000);
  });
});
