// The pending table is the per-session bound on client requests in flight: at the bound a new
// request is refused with a catalogue error (that caller only), and an answered request frees its slot.
import { describe, expect, it } from "vitest";
import { CountersignError } from "../../gateway/errors.js";
import { MAX_PENDING_REQUESTS, PendingRequests } from "../../gateway/pipeline/pending.js";

const call = (id: number) => ({ jsonrpc: "2.0" as const, id, method: "tools/call", params: { name: "echo", _meta: { progressToken: `p${id}` } } });

describe("PendingRequests", () => {
  it(`refuses request ${MAX_PENDING_REQUESTS + 1} with CS_ERR_TOO_MANY_IN_FLIGHT, and admits again once one is answered`, () => {
    const table = new PendingRequests();
    for (let i = 0; i < MAX_PENDING_REQUESTS; i++) table.track(call(i), i, "tools/call", {});
    expect(table.size).toBe(MAX_PENDING_REQUESTS);
    let refused: unknown;
    try {
      table.track(call(MAX_PENDING_REQUESTS), MAX_PENDING_REQUESTS, "tools/call", {});
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(CountersignError);
    expect((refused as CountersignError).code).toBe("CS_ERR_TOO_MANY_IN_FLIGHT");
    expect(table.has(MAX_PENDING_REQUESTS)).toBe(false);

    expect(table.untrack(7)?.method).toBe("tools/call");
    expect(table.ownerOf("p7")).toBeUndefined(); // its progress token is forgotten with it
    table.track(call(MAX_PENDING_REQUESTS), MAX_PENDING_REQUESTS, "tools/call", {});
    expect(table.ownerOf(`p${MAX_PENDING_REQUESTS}`)).toBe(MAX_PENDING_REQUESTS);
  });

  it("keeps 1 and \"1\" apart, as JSON-RPC does", () => {
    const table = new PendingRequests();
    table.track({ jsonrpc: "2.0", id: 1, method: "ping" }, 1, "ping", {});
    expect(table.has("1")).toBe(false);
    table.track({ jsonrpc: "2.0", id: "1", method: "tools/list" }, "1", "tools/list", {});
    expect(table.get(1)?.method).toBe("ping");
    expect(table.get("1")?.method).toBe("tools/list");
  });
});
