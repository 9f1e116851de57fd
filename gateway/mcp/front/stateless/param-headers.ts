// Custom parameter headers (MCP 2026-07-28 Streamable HTTP, SEP-2243): a tool may mark arguments
// of its inputSchema with `x-mcp-header: <Name>`, and a caller of tools/call then mirrors each such
// argument into an `Mcp-Param-<Name>` header, so that intermediaries can route on it without
// reading the body. The gateway checks them as the server would: when the body carries a value,
// the header must be there and say the same (the `=?base64?…?=` form decoded, strictly); when the
// body has none (absent or null), the header is not looked at. The declarations come from the
// tools/list answers the caller's bridge session has carried (a tool the bridge has not listed is
// not checked: a caller that mirrors headers has listed the tools).
import { CountersignError } from "../../../errors.js";

/** One declared header parameter: where the argument sits in `arguments`, its header name and type. */
export interface HeaderParam {
  path: string[];
  header: string;
  type: string | undefined;
}

/** RFC 9110 token: what a header name may be. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Canonical base64 (padding required). */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const DECIMAL = /^-?\d+(\.\d+)?$/;
/** Bounds: declarations per tool, nesting depth walked, tools remembered per bridge session. */
const MAX_PER_TOOL = 32;
const MAX_DEPTH = 8;
export const MAX_TOOLS_REMEMBERED = 1024;

/** The header parameters a tool's inputSchema declares, reachable through `properties` only (as the spec allows). */
export function declaredHeaderParams(inputSchema: unknown): HeaderParam[] {
  const out: HeaderParam[] = [];
  const visit = (node: unknown, path: string[]): void => {
    if (node === null || typeof node !== "object" || path.length > MAX_DEPTH || out.length >= MAX_PER_TOOL) return;
    const schema = node as Record<string, unknown>;
    const name = schema["x-mcp-header"];
    if (path.length > 0 && typeof name === "string" && TOKEN.test(name)) out.push({ path, header: name, type: typeof schema.type === "string" ? schema.type : undefined });
    const props = schema.properties;
    if (props !== null && typeof props === "object") for (const [k, child] of Object.entries(props as Record<string, unknown>)) visit(child, [...path, k]);
  };
  visit(inputSchema, []);
  return out;
}

/** A header value as sent, or decoded from the `=?base64?…?=` form; undefined when that form's payload is not canonical base64 of UTF-8. */
export function decodeParamValue(value: string): string | undefined {
  if (!(value.startsWith("=?base64?") && value.endsWith("?=") && value.length >= 11)) return value;
  const b64 = value.slice(9, -2);
  if (!BASE64.test(b64)) return undefined;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(Buffer.from(b64, "base64"));
  } catch {
    return undefined;
  }
}

function asHeaderText(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "number" && Number.isFinite(v)) return String(v);
  return undefined;
}

/** Refuses (-32020, 400) a tools/call whose Mcp-Param-* headers do not mirror its arguments. */
export function checkParamHeaders(params: readonly HeaderParam[] | undefined, args: unknown, headers: Record<string, string | string[] | undefined>): void {
  for (const p of params ?? []) {
    let body: unknown = args;
    for (const k of p.path) body = body !== null && typeof body === "object" ? (body as Record<string, unknown>)[k] : undefined;
    const text = body === undefined || body === null ? undefined : asHeaderText(body);
    if (text === undefined) continue;
    const name = `Mcp-Param-${p.header}`;
    const raw = [headers[name.toLowerCase()]].flat()[0];
    if (raw === undefined) throw mismatch(`the ${name} header is missing (it mirrors arguments.${p.path.join(".")})`);
    const decoded = decodeParamValue(raw.trim());
    if (decoded === undefined) throw mismatch(`the ${name} header is not valid base64 in its =?base64?…?= form`);
    const same = (p.type === "integer" || p.type === "number") && typeof body === "number" && DECIMAL.test(decoded) ? Number(decoded) === body : decoded === text;
    if (!same) throw mismatch(`the ${name} header does not match arguments.${p.path.join(".")}`);
  }
}

function mismatch(detail: string): CountersignError {
  return new CountersignError("CS_ERR_HEADER_MISMATCH", detail);
}
