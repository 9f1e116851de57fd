// Text PostgreSQL cannot store, made storable without loss. A JSON string (or object key) holding
// NUL (jsonb refuses \u0000, text refuses the byte) or a lone UTF-16 surrogate (jsonb refuses a
// lone \udXXX) is stored as ESCAPED_PREFIX followed by its JSON escape in plain ASCII
// ("\u0000", "\ud800", "\\" for a backslash); `restoreStored` turns it back. A string that already
// starts with the prefix is escaped too, so every stored value reads back as exactly what was sent.
export const ESCAPED_PREFIX = "\u2063cs-escaped:";

// NUL, a high surrogate not followed by a low one, a low surrogate not preceded by a high one.
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
// In serialised JSON: an escaped NUL or surrogate (JSON.stringify escapes lone surrogates; a
// client's raw text may escape anything), a raw NUL or lone surrogate, or the prefix itself.
const MAYBE_UNSTORABLE_JSON = /\\u0000|\\u[dD][89a-fA-F]|\u0000|[\ud800-\udfff]|\u2063cs-escaped:/;

function needsEscape(s: string): boolean {
  return UNSTORABLE.test(s) || s.startsWith(ESCAPED_PREFIX);
}

/** The storable form of one text value (a column such as method or jsonrpcId, or a JSON string). */
export function storableText(s: string): string {
  if (!needsEscape(s)) return s;
  // JSON.stringify escapes NUL, lone surrogates, quotes and backslashes into ASCII: reversible by JSON.parse.
  return ESCAPED_PREFIX + JSON.stringify(s).slice(1, -1);
}

export function storableNullableText(s: string | null | undefined): string | null {
  return s === null || s === undefined ? null : storableText(s);
}

/**
 * The storable form of a serialised JSON value. The common case costs one regular-expression scan;
 * only text that may hold an unstorable string is parsed and rewritten. Depth is bounded by the
 * walk's explicit stack (no recursion).
 */
export function storableJson(text: string): string {
  if (!MAYBE_UNSTORABLE_JSON.test(text)) return text;
  return JSON.stringify(mapStrings(JSON.parse(text) as unknown, storableText));
}

/** The value as it was sent: every escaped string (and key) restored. */
export function restoreStored<T>(value: T): T {
  return mapStrings(value, (s) => (s.startsWith(ESCAPED_PREFIX) ? (JSON.parse(`"${s.slice(ESCAPED_PREFIX.length)}"`) as string) : s)) as T;
}

/** A copy of a JSON value with every string and object key passed through `fn` (iterative). */
function mapStrings(root: unknown, fn: (s: string) => string): unknown {
  if (typeof root === "string") return fn(root);
  if (root === null || typeof root !== "object") return root;
  const out: unknown = Array.isArray(root) ? [] : {};
  const stack: Array<[unknown, Record<string, unknown> | unknown[]]> = [[root, out as Record<string, unknown>]];
  while (stack.length > 0) {
    const [src, dst] = stack.pop()!;
    const entries = Array.isArray(src) ? src.map((v, i) => [i, v] as const) : Object.entries(src as Record<string, unknown>);
    for (const [k, v] of entries) {
      const key = typeof k === "string" ? fn(k) : k;
      let copy: unknown = v;
      if (typeof v === "string") copy = fn(v);
      else if (v !== null && typeof v === "object") {
        copy = Array.isArray(v) ? [] : {};
        stack.push([v, copy as Record<string, unknown>]);
      }
      if (Array.isArray(dst)) dst[key as number] = copy;
      else Object.defineProperty(dst, key as string, { value: copy, enumerable: true, writable: true, configurable: true });
    }
  }
  return out;
}
