// restore: pseudonyms the caller was shown are put back to their originals right after admission,
// so policy, the approval's arguments hash and the forward all work on what the caller meant.
// Records keep the masked view (record(in) masks again). Only requests and notifications carry
// arguments to restore.
import type { ExchangeContext } from "./context.js";
import type { Exchange } from "./exchange.js";

export function restore(ctx: ExchangeContext, ex: Exchange): Exchange {
  const restorer = ctx.deps.restorer;
  if (!restorer || (ex.c.kind !== "request" && ex.c.kind !== "notification")) return ex;
  const message = restorer.restore({ message: ex.message, connection: ctx.connection.name, subject: ctx.identity.subject });
  return message === ex.message ? ex : { ...ex, message };
}
