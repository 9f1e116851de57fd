/**
 * One spelling per target, so a rule cannot be passed by spelling a name or URI another way.
 * The policy engine runs every request's tool/prompt name and resource URI through here before
 * any matcher or condition sees it, and every rule's globs through the same functions when the
 * policy is compiled: both sides of a match are always in the same form.
 *
 * Resource URIs (RFC 3986 section 6.2.2, syntax-based normalisation):
 * - surrounding whitespace removed;
 * - percent-encoding: escapes of unreserved characters (`%64` → `d`, `%2E` → `.`) decoded,
 *   every other escape's hex digits in upper case (`%2f` → `%2F`); decoded once, never twice
 *   (`%252E` stays `%252E`); a `%` not followed by two hex digits is left alone;
 * - scheme and host in lower case (user info, path and query keep their case);
 * - dot segments of the path resolved (`/a/./b/../c` → `/a/c`), after decoding, so `%2e%2e` is a
 *   dot segment too;
 * - Unicode NFC.
 * Tool and prompt names: surrounding whitespace removed, Unicode NFC. Case is kept: MCP names are
 * case-sensitive, and an upstream that folded case would be the one to answer for it.
 *
 * Normalising toward what the upstream resolves errs on the safe side for both rule kinds: a
 * block rule catches every spelling of its target, and an allow rule for `x://safe/*` does not
 * admit `x://safe/../secret` (which normalises to `x://secret`).
 */

const UNRESERVED = /[A-Za-z0-9\-._~]/;

/** Decodes escapes of unreserved characters and upper-cases the rest, in one pass (never twice). */
function normalisePercent(text: string): string {
  if (!text.includes("%")) return text;
  return text.replace(/%([0-9A-Fa-f]{2})/g, (_m, hex: string) => {
    const ch = String.fromCharCode(parseInt(hex, 16));
    return UNRESERVED.test(ch) ? ch : `%${hex.toUpperCase()}`;
  });
}

/** RFC 3986 section 5.2.4, remove_dot_segments. */
export function removeDotSegments(path: string): string {
  if (!path.includes(".")) return path;
  const input = path.split("/");
  const absolute = path.startsWith("/");
  const out: string[] = [];
  for (let i = absolute ? 1 : 0; i < input.length; i++) {
    const seg = input[i]!;
    const last = i === input.length - 1;
    if (seg === ".") {
      if (last) out.push("");
    } else if (seg === "..") {
      if (out.length > 0) out.pop();
      if (last) out.push("");
    } else out.push(seg);
  }
  return (absolute ? "/" : "") + out.join("/");
}

const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/;

/** The one spelling of a resource URI that policy matches against (see the module comment). */
export function normaliseResourceUri(uri: string): string {
  // Every step is linear in the text's length; nothing is cut (a cut could hide a `..` past it).
  const text = normalisePercent(uri.trim()).normalize("NFC");
  const scheme = SCHEME.exec(text);
  let prefix = "";
  let rest = text;
  if (scheme) {
    prefix = `${scheme[1]!.toLowerCase()}:`;
    rest = text.slice(scheme[0].length);
    if (rest.startsWith("//")) {
      const end = rest.slice(2).search(/[/?#]/);
      const authority = end < 0 ? rest.slice(2) : rest.slice(2, 2 + end);
      rest = end < 0 ? "" : rest.slice(2 + end);
      const at = authority.lastIndexOf("@");
      prefix += `//${at < 0 ? authority.toLowerCase() : authority.slice(0, at + 1) + authority.slice(at + 1).toLowerCase()}`;
    }
  }
  const tailAt = rest.search(/[?#]/);
  const path = tailAt < 0 ? rest : rest.slice(0, tailAt);
  const tail = tailAt < 0 ? "" : rest.slice(tailAt);
  return prefix + removeDotSegments(path) + tail;
}

/** The one spelling of a tool or prompt name that policy matches against. */
export function normaliseName(name: string): string {
  return name.trim().normalize("NFC");
}

/** Which normaliser applies to the target of a governed method (undefined: the method has no named target). */
export function targetNormaliser(method: string): { key: "name" | "uri"; normalise: (s: string) => string } | undefined {
  if (method === "resources/read") return { key: "uri", normalise: normaliseResourceUri };
  if (method === "tools/call" || method === "prompts/get") return { key: "name", normalise: normaliseName };
  return undefined;
}

/**
 * The params with their target (name or uri) in normal form; the same object when nothing
 * changes. Other fields (arguments) are left as sent.
 */
export function normaliseParams(method: string, params: unknown): unknown {
  const t = targetNormaliser(method);
  if (!t || params === null || typeof params !== "object" || Array.isArray(params)) return params;
  const value = (params as Record<string, unknown>)[t.key];
  if (typeof value !== "string") return params;
  const normal = t.normalise(value);
  return normal === value ? params : { ...(params as Record<string, unknown>), [t.key]: normal };
}
