/**
 * The caller's stated reason for a call, which approval rules may require and approvers see.
 * It travels in the request's `params._meta["countersign/justification"]` (per call; wins) or in
 * the HTTP header `X-Countersign-Justification` (per request; percent-encoded UTF-8 is decoded,
 * since header values are ASCII).
 */
export const JUSTIFICATION_META_KEY = "countersign/justification";
export const JUSTIFICATION_HEADER = "x-countersign-justification";
/** Longer justifications are cut: they end up in records and approval messages. */
export const MAX_JUSTIFICATION_CHARS = 2000;

type HeaderBag = Headers | Record<string, string | string[] | undefined> | undefined;

function headerValue(headers: HeaderBag): string | undefined {
  if (!headers) return undefined;
  if (typeof (headers as Headers).get === "function") return (headers as Headers).get(JUSTIFICATION_HEADER) ?? undefined;
  for (const [name, value] of Object.entries(headers as Record<string, string | string[] | undefined>)) {
    if (name.toLowerCase() !== JUSTIFICATION_HEADER) continue;
    return Array.isArray(value) ? value.join(", ") : value;
  }
  return undefined;
}

function decodeHeader(value: string): string {
  if (!/%[0-9A-Fa-f]{2}/.test(value)) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value; // a literal "100%" and the like
  }
}

const clean = (text: string | undefined): string | undefined => {
  const t = text?.trim();
  return t ? t.slice(0, MAX_JUSTIFICATION_CHARS) : undefined;
};

/** The justification of a JSON-RPC request, or undefined when the caller gave none. */
export function justificationOf(message: unknown, headers?: HeaderBag): string | undefined {
  const params = message !== null && typeof message === "object" ? (message as { params?: unknown }).params : undefined;
  const meta = params !== null && typeof params === "object" ? (params as { _meta?: unknown })._meta : undefined;
  const fromMeta = meta !== null && typeof meta === "object" ? (meta as Record<string, unknown>)[JUSTIFICATION_META_KEY] : undefined;
  const viaMeta = typeof fromMeta === "string" ? clean(fromMeta) : undefined;
  if (viaMeta) return viaMeta;
  const viaHeader = headerValue(headers);
  return viaHeader === undefined ? undefined : clean(decodeHeader(viaHeader));
}
