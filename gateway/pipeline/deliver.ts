// deliver: a committed message goes to the client's stream. When there is none to take it, that
// is on record too (best effort: the message itself is already recorded).
import type { JsonRpcMessage } from "../mcp/jsonrpc.js";
import type { ExchangeContext, Route } from "./context.js";

export function deliver(ctx: ExchangeContext, msg: JsonRpcMessage, route: Route): void {
  if (ctx.toClient(msg, route)) return;
  ctx.deps.recorder.eventBestEffort({
    type: "message_undeliverable",
    reason: ctx.hasClientStream ? "client_stream_closed" : "no_stream",
    sessionId: ctx.sessionId,
    connection: ctx.connection.name,
    detail: { responseTo: route.responseTo ?? null, method: (msg.method as string | undefined) ?? null },
  });
}
