// restore: pseudonyms the caller was shown are put back to their originals right after admission,
// so policy, the approval's arguments hash and the forward all work on what the caller meant.
// Records keep the masked view (record(in) masks again) plus the fact of the restoration. Only
// content is restored (gateway/masking/restore/stage.ts); a map that cannot be read fails the call.
import { restoreRequest } from "../masking/restore/index.js";
import type { ExchangeContext } from "./context.js";
import type { Exchange } from "./exchange.js";
import { maskingScopeOf } from "./mask.js";

export async function restore(ctx: ExchangeContext, ex: Exchange): Promise<{ ex: Exchange; restored: number }> {
  const outcome = await restoreRequest(ctx.deps.restorer, ex.message, maskingScopeOf(ctx));
  if (outcome.error) throw outcome.error;
  return { ex: outcome.restored === 0 ? ex : { ...ex, message: outcome.message }, restored: outcome.restored };
}
