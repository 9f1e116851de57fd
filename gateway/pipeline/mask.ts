// mask: the record always holds the fully masked view; a caller exempted by role (masking/
// exemptions.ts) receives the exempted types unmasked, and that delivery is recorded as evidence.
import { exemptTypesFor } from "../masking/exemptions.js";
import type { JsonRpcMessage } from "../mcp/jsonrpc.js";
import type { ExchangeContext } from "./context.js";
import type { CallerView } from "./exchange.js";

/** The record's view (fully masked) and this caller's view (with its exemptions). */
export function maskForCaller(ctx: ExchangeContext, msg: JsonRpcMessage, justification: string | undefined): CallerView {
  const masker = ctx.connection.masker;
  if (!masker) return { record: msg, deliver: msg, hits: null, exempted: undefined };
  const full = masker.maskMessage(msg);
  const hits = full.changed ? full.hits : null;
  if (!full.changed) return { record: full.masked, deliver: full.masked, hits, exempted: undefined };
  const exempt = exemptTypesFor(ctx.connection.masking.exemptions, ctx.identity.groups, justification);
  if (exempt.size === 0) return { record: full.masked, deliver: full.masked, hits, exempted: undefined };
  const partial = masker.maskMessage(msg, { exempt });
  const exempted = Object.keys(partial.exempted).length > 0 ? partial.exempted : undefined;
  return { record: full.masked, deliver: partial.masked, hits, exempted };
}

/** The record's view of a client message (a secret the caller pasted must not stay in the store). */
export function maskForRecord(ctx: ExchangeContext, msg: JsonRpcMessage): { masked: JsonRpcMessage; hits: Record<string, number> | null } {
  const m = ctx.connection.masker?.maskMessage(msg);
  return { masked: (m?.masked ?? msg) as JsonRpcMessage, hits: m?.changed ? m.hits : null };
}
