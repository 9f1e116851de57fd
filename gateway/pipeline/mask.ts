// mask: the record always holds the fully masked view; a caller exempted by role (masking/
// exemptions.ts) receives the exempted types unmasked, and that delivery is recorded as evidence.
import { exemptTypesFor } from "../masking/exemptions.js";
import { rememberIssued, type IssuedView } from "../masking/restore/index.js";
import { maskingScope } from "../masking/scope.js";
import type { JsonRpcMessage } from "../mcp/jsonrpc.js";
import type { ExchangeContext } from "./context.js";
import type { CallerView } from "./exchange.js";

/** Whose pseudonyms (masking/scope.ts): this caller on this connection, the same on every replica. */
export function maskingScopeOf(ctx: ExchangeContext): string {
  return maskingScope(ctx.identity, ctx.connection.name);
}

/** The record's view (fully masked) and this caller's view (with its exemptions), with the pseudonyms that view shows. */
export function maskForCaller(ctx: ExchangeContext, msg: JsonRpcMessage, justification: string | undefined): CallerView & IssuedView {
  const masker = ctx.connection.masker;
  if (!masker) return { record: msg, deliver: msg, hits: null, exempted: undefined };
  const scope = maskingScopeOf(ctx);
  const full = masker.maskMessage(msg, { scope });
  const hits = full.changed ? full.hits : null;
  if (!full.changed) return { record: full.masked, deliver: full.masked, hits, exempted: undefined, issued: full.issued };
  const exempt = exemptTypesFor(ctx.connection.masking.exemptions, ctx.identity.groups, justification);
  if (exempt.size === 0) return { record: full.masked, deliver: full.masked, hits, exempted: undefined, issued: full.issued };
  const partial = masker.maskMessage(msg, { exempt, scope });
  const exempted = Object.keys(partial.exempted).length > 0 ? partial.exempted : undefined;
  return { record: full.masked, deliver: partial.masked, hits, exempted, issued: partial.issued };
}

/** The mask stage's second half: the pseudonyms a view shows are remembered before it is delivered. */
export function rememberIssuedFor(ctx: ExchangeContext, view: IssuedView): Promise<void> {
  return rememberIssued(ctx.deps.restorer, maskingScopeOf(ctx), view);
}

/** The record's view of a client message (a secret the caller pasted must not stay in the store). */
export function maskForRecord(ctx: ExchangeContext, msg: JsonRpcMessage): { masked: JsonRpcMessage; hits: Record<string, number> | null } {
  const m = ctx.connection.masker?.maskMessage(msg, { scope: maskingScopeOf(ctx) });
  return { masked: (m?.masked ?? msg) as JsonRpcMessage, hits: m?.changed ? m.hits : null };
}
