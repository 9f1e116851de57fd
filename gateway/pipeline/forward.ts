// forward: the message goes to the upstream. The upstream timeout is armed here, on entering
// `forwarding`, and only here: a held call is judged by the approver's clock, not the upstream's.
import { asCountersignError, CountersignError } from "../errors.js";
import type { JsonRpcMessage } from "../mcp/jsonrpc.js";
import { fail } from "./answer.js";
import type { ExchangeContext } from "./context.js";
import type { PendingRequest } from "./exchange.js";

/** The request goes to the upstream now: from here on the upstream timeout runs. */
export function startForwarding(ctx: ExchangeContext, p: PendingRequest): void {
  p.lifecycle.move("forwarding");
  p.forwardedAt = performance.now();
  clearTimeout(p.timer);
  const timeoutMs = ctx.deps.upstreamTimeoutMs;
  p.timer = setTimeout(() => {
    // The upstream has taken too long: answer the client, and tell the upstream to stop.
    void fail(ctx, p.id, new CountersignError("CS_ERR_UPSTREAM_TIMEOUT", `${p.method} took longer than ${timeoutMs} ms`, { connection: ctx.connection.name, keyPath: "limits.upstreamTimeoutMs" }));
    void ctx.sendUpstream({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: p.id, reason: "timed out at the gateway" } }).catch(() => {});
  }, timeoutMs);
  p.timer.unref();
}

/**
 * Sends a request upstream and moves it to `forwarded` once the send resolved. Resolves true when
 * it went out; on a failed send the caller has its error and this resolves false.
 */
export async function forwardRequest(ctx: ExchangeContext, msg: JsonRpcMessage, p: PendingRequest): Promise<boolean> {
  startForwarding(ctx, p);
  try {
    await ctx.sendUpstream(msg);
  } catch (err) {
    await fail(ctx, p.id, err);
    return false;
  }
  p.lifecycle.move("forwarded");
  return true;
}

/** Sends a notification or a client's answer upstream; a failure is the front's to report. */
export async function forwardMessage(ctx: ExchangeContext, msg: JsonRpcMessage): Promise<void> {
  try {
    await ctx.sendUpstream(msg);
  } catch (err) {
    throw asCountersignError(err, "CS_ERR_UPSTREAM_UNAVAILABLE");
  }
}
